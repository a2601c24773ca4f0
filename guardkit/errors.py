"""The exceptions guardkit raises.

Everything guardkit raises on purpose derives from :class:`GuardkitError`, so one
``except guardkit.GuardkitError`` catches all of it. Errors about bad input also
derive from the matching built-in (``ValueError``, ``LookupError``) so code that
already handles those keeps working.

::

    GuardkitError
    ├── PolicyError (ValueError)           a policy file or object is invalid
    ├── ModelLoadError                     a model bundle is missing, corrupt or breaks the contract
    ├── ProviderUnavailableError           an explicitly requested execution provider is missing
    ├── SessionLimitError                  too many live sessions for a model
    │   └── SessionStoreFullError          a served replica's KV memory cap refuses a new session
    ├── SessionClosedError                 feed() after finish()/close()
    ├── SchedulerClosedError (RuntimeError) a step was sent to a closed batch scheduler
    ├── RemoteModelError                   a served model (guardkit.serve) failed or timed out on a step
    ├── GuardConfigError (ValueError)      invalid or contradictory arguments (max_sessions with a loaded model, max_sessions=0, ...)
    └── StreamBlocked                      a guarded stream was blocked (on_block="raise")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.verdict import Verdict

__all__ = [
    "GuardConfigError",
    "GuardkitError",
    "ModelLoadError",
    "PolicyError",
    "ProviderUnavailableError",
    "RemoteModelError",
    "SchedulerClosedError",
    "SessionClosedError",
    "SessionLimitError",
    "SessionStoreFullError",
    "StreamBlocked",
]


class GuardkitError(Exception):
    """Base class of every error guardkit raises on purpose."""


class PolicyError(GuardkitError, ValueError):
    """A policy could not be loaded or is invalid.

    ``source`` names the file (or ``"<object>"``), ``field`` the offending field
    as a dotted path (``None`` when the whole document is at fault).
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.reason = message
        prefix = ""
        if source:
            prefix += f"{source}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class ModelLoadError(GuardkitError):
    """A model bundle is missing, fails its checksum, or breaks the model contract."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ProviderUnavailableError(GuardkitError):
    """An execution provider asked for explicitly (``device="cuda"``) is not available."""


class SessionLimitError(GuardkitError):
    """The model already serves its configured maximum of live sessions."""


class SessionStoreFullError(SessionLimitError):
    """A guard-model replica (``guardkit serve``) refused a new session: its KV store is at its memory cap.

    Sessions it already holds keep being served; the refused one may be retried later.
    """


class RemoteModelError(GuardkitError):
    """A served guard model (``guardkit.serve.RemoteModel``) could not run a step: every retry failed or timed out."""


class SessionClosedError(GuardkitError):
    """The session was finished or closed and accepts no more text."""


class SchedulerClosedError(GuardkitError, RuntimeError):
    """The batch scheduler was closed (its Guard closed) before or while this step ran."""


class GuardConfigError(GuardkitError, ValueError):
    """Invalid or contradictory arguments, e.g. ``max_sessions`` given to a Guard with an already loaded model."""


class StreamBlocked(GuardkitError):
    """Raised by a guarded stream with ``on_block="raise"`` once the policy blocks it.

    It is raised after every piece of released text has been handed out, so
    ``released_text`` is exactly what the consumer received.
    """

    def __init__(self, verdict: Verdict, released_text: str) -> None:
        self.verdict = verdict
        self.released_text = released_text
        where = f" at character {verdict.char_offset}" if verdict.char_offset is not None else ""
        category = f" ({verdict.category})" if verdict.category else ""
        super().__init__(f"stream blocked: {verdict.source} judged {verdict.level}{category}{where}")
