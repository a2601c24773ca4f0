"""Guard: the public entry point tying a model and a policy together."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, AsyncIterable, Iterable

from guardkit.audit.sinks import Auditor, auditor_for
from guardkit.batching import BatchScheduler
from guardkit.errors import GuardConfigError
from guardkit.model import StreamModel
from guardkit.policy import Policy, load_policy
from guardkit.session import StreamSession
from guardkit.stepper import Stepper, stepper_for
from guardkit.streams import AsyncGuardedStream, GuardedStream, OnBlockMode
from guardkit.verdict import Verdict

__all__ = ["Guard"]

_ON_BLOCK = ("replace", "raise")


class Guard:
    """A streaming safety guard.

    Args:
        model: path to a model bundle, a loaded :class:`StreamModel` (to share
            one ONNX Runtime session between guards with different policies),
            a :class:`guardkit.serve.RemoteModel` (a model served on Ray Serve),
            or ``None`` for the shipped default (guardkit-mini).
        policy: a built-in policy name (``"default"``, ``"strict"``, ...), a path
            to a YAML policy file, or a :class:`Policy`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"tensorrt"``; explicit
            devices fail loudly when unavailable.
        threads: intra-op threads for ONNX Runtime per call (default: one, and
            never spinning: fastest for a lone stream, and concurrent streams or
            the batcher's two cohorts use the other cores; see ``guardkit bench``).
        max_sessions: cap on live sessions (``SessionLimitError`` past it).
        batching: run the steps of concurrent sessions (threads, asyncio
            tasks) together in one ONNX Runtime call; verdicts are unchanged.
            Two cohorts alternate on two workers, so the sessions' Python and
            the model calls overlap (see :class:`~guardkit.batching.BatchScheduler`).
        batch_workers: batches that may run at once (default: 2 on a machine with
            two or more cores, else 1). Two pay when a second core is free; on
            a host whose other work leaves about one core, 1 (one cohort, bigger
            batches) gives more tokens/s.
        max_wait_ms, max_batch, max_delay_ms: the batcher's wait (a batch runs
            once no step arrived for ``max_wait_ms``, at most ``max_delay_ms``
            after its first: default 20 ms or ``max_wait_ms`` if longer) and batch size.
        audit: where decision records go (see :mod:`guardkit.audit`): a sink
            (an object with ``emit(record)``), a callable, a JSON-lines file
            path, or a list of them. Every prompt check and every stream then
            ends with one record; a failing sink is logged once and skipped.
        otel: OpenTelemetry spans and metrics. ``None`` (default): on when
            ``opentelemetry-api`` is installed (a no-op until the application
            configures the SDK); ``True``: required; ``False``: off.
        coalesce: opt-in, for lone streams where a few tokens of delay do not
            matter: judge once this many guard tokens are pending, in one call
            (about half the CPU per token at 4); verdicts and released text are
            the same, released up to ``coalesce - 1`` tokens later (see
            :class:`StreamSession`).

    One Guard may be used from many threads and tasks at once; each response
    gets its own :class:`StreamSession`. With a loaded :class:`StreamModel`,
    ``device``, ``threads`` and ``max_sessions`` belong to that model (pass them
    to ``StreamModel``); giving them here raises :class:`GuardConfigError`.
    """

    def __init__(
        self,
        model: str | Path | StreamModel | Any | None = None,
        policy: str | Path | Policy = "default",
        device: str = "auto",
        *,
        threads: int | None = None,
        max_sessions: int | None = None,
        batching: bool = False,
        max_wait_ms: float = 2.0,
        max_batch: int = 64,
        max_delay_ms: float | None = None,
        audit: Any = None,
        otel: bool | None = None,
        coalesce: int = 1,
        batch_workers: int | None = None,
    ) -> None:
        self.policy: Policy = load_policy(policy)
        if not isinstance(coalesce, int) or isinstance(coalesce, bool) or coalesce < 1:
            raise GuardConfigError(f"coalesce must be an int >= 1 (tokens per model call), got {coalesce!r}")
        self.coalesce = coalesce  # its upper bound (the model's chunk) is checked by every session
        if model is not None and not isinstance(model, (str, os.PathLike)):  # a loaded model (StreamModel, RemoteModel, ...)
            if not callable(getattr(model, "step", None)) or not callable(getattr(model, "empty_state", None)):
                raise TypeError(f"model must be a bundle path, a StreamModel or a served model (RemoteModel), got {type(model).__name__}")
            given = {"device": device != "auto", "threads": threads is not None, "max_sessions": max_sessions is not None}
            if any(given.values()):
                names = ", ".join(name for name, set_ in given.items() if set_)
                raise GuardConfigError(f"{names}: set on the StreamModel, not on a Guard given a loaded model (it would be ignored)")
            self.model = model
        else:
            self.model = StreamModel(model, device=device, threads=threads, max_sessions=max_sessions)
        self.scheduler: BatchScheduler | None = None
        self._owns_scheduler = batching  # a with_policy() child shares its parent's scheduler, never closes it
        if batching:
            # async streams await the batcher directly: no worker thread per stream
            self.scheduler = BatchScheduler(self.model, max_wait_ms=max_wait_ms, max_batch=max_batch, max_delay_ms=max_delay_ms,
                                            workers=batch_workers)
        self.auditor: Auditor | None = auditor_for(audit, otel)
        self._owns_auditor = True
        if self.auditor is not None:
            self.auditor.watch(self.model, self.scheduler)

    def close(self) -> None:
        """Stop the batcher's worker thread (no-op without batching, or for a :meth:`with_policy` child).

        Also closes the JSON-lines sinks this Guard made from paths given as ``audit=``
        (a sink object you passed stays yours to close).
        """
        if self.scheduler is not None and self._owns_scheduler:
            self.scheduler.close()
        if self.auditor is not None and self._owns_auditor:
            self.auditor.close_owned()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def with_policy(self, policy: str | Path | Policy) -> Guard:
        """A Guard sharing this one's loaded model (and batcher), with another policy.

        The child shares resources it does not own: closing it leaves this
        Guard's batcher running; closing this Guard stops the child's batching too.
        """
        guard = Guard(self.model, policy, otel=False)
        guard.scheduler = self.scheduler
        guard._owns_scheduler = False
        guard.coalesce = self.coalesce
        guard.auditor = self.auditor  # its records go where this Guard's go
        guard._owns_auditor = False
        return guard

    # -- one-shot checks -------------------------------------------------
    def check_prompt(self, prompt: str, *, request_id: str | None = None, conversation_id: str | None = None) -> Verdict:
        """Judge a user prompt: with the bundle's prompt classifier when it has one, else the stream model's prompt head."""
        with self._prompt_session(prompt, request_id, conversation_id) as session:
            session.start()
            return _prompt_outcome(session)

    def check_response(
        self, response: str, prompt: str | None = None, *, request_id: str | None = None, conversation_id: str | None = None
    ) -> Verdict:
        """Judge a whole response with the streaming rule, so it agrees with :meth:`stream`.

        The prompt, when given, is only context here: its own verdict is
        :meth:`check_prompt`'s job.
        """
        with self._response_session(response, prompt, request_id, conversation_id) as session:
            session.feed(response)
            session.finish()
            return session.verdict

    async def acheck_prompt(self, prompt: str, *, request_id: str | None = None, conversation_id: str | None = None) -> Verdict:
        """:meth:`check_prompt` for asyncio (the model step is awaited off the event loop)."""
        with self._prompt_session(prompt, request_id, conversation_id) as session:
            await session.astart()
            return _prompt_outcome(session)

    async def acheck_response(
        self, response: str, prompt: str | None = None, *, request_id: str | None = None, conversation_id: str | None = None
    ) -> Verdict:
        """:meth:`check_response` for asyncio."""
        with self._response_session(response, prompt, request_id, conversation_id) as session:
            await session.afeed(response)
            await session.afinish()
            return session.verdict

    def _prompt_session(self, prompt: str, request_id: str | None, conversation_id: str | None) -> StreamSession:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be str, got {type(prompt).__name__}")
        return StreamSession(self.model, self.policy, prompt, stepper=self._stepper(), auditor=self.auditor,
                             request_id=request_id, conversation_id=conversation_id, prompt_only=True)

    def _response_session(self, response: str, prompt: str | None, request_id: str | None, conversation_id: str | None) -> StreamSession:
        if not isinstance(response, str):
            raise TypeError(f"response must be str, got {type(response).__name__}")
        return StreamSession(self.model, self._response_only_policy(), prompt, stepper=self._stepper(), auditor=self.auditor,
                             request_id=request_id, conversation_id=conversation_id, coalesce=self.coalesce)

    def _response_only_policy(self) -> Policy:
        if self.policy.prompt.action == "allow":
            return self.policy
        return self.policy.model_copy(update={"prompt": self.policy.prompt.model_copy(update={"action": "allow"})})

    # -- streaming -------------------------------------------------------
    def session(self, prompt: str | None = None, *, request_id: str | None = None, conversation_id: str | None = None) -> StreamSession:
        """A sans-I/O session for one response: ``feed(delta)`` / ``finish()`` return events.

        ``request_id`` / ``conversation_id`` tag its decision records (default:
        those set with :func:`guardkit.audit.ids`).
        """
        return StreamSession(self.model, self.policy, prompt, stepper=self._stepper(), auditor=self.auditor,
                             request_id=request_id, conversation_id=conversation_id, coalesce=self.coalesce)

    def _stepper(self) -> Stepper:
        """One session's stepper: it runs the steps (batched or direct) and owns the session's slot."""
        return stepper_for(self.model, self.scheduler)

    def stream(
        self, chunks: Iterable[str], prompt: str | None = None, on_block: OnBlockMode | None = None, *,
        request_id: str | None = None, conversation_id: str | None = None,
    ) -> GuardedStream:
        """Guard an iterable of text deltas; iterate the result to get released text."""
        session = self.session(prompt, request_id=request_id, conversation_id=conversation_id)
        return GuardedStream(session, chunks, on_block=self._on_block(on_block), message=self.policy.on_block.message)

    def astream(
        self, chunks: AsyncIterable[str] | Iterable[str], prompt: str | None = None, on_block: OnBlockMode | None = None, *,
        request_id: str | None = None, conversation_id: str | None = None,
    ) -> AsyncGuardedStream:
        """Async twin of :meth:`stream`: judging on the event loop, model steps awaited off it."""
        session = self.session(prompt, request_id=request_id, conversation_id=conversation_id)
        return AsyncGuardedStream(session, chunks, on_block=self._on_block(on_block), message=self.policy.on_block.message)

    def _on_block(self, on_block: Any) -> OnBlockMode:
        mode = on_block if on_block is not None else self.policy.on_block.mode
        if mode not in _ON_BLOCK:
            raise GuardConfigError(f"on_block must be 'replace' or 'raise', got {mode!r}")
        return mode  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Guard(model={self.model.manifest.name!r}, policy={self.policy.name!r}, providers={self.model.providers})"


def _prompt_outcome(session: StreamSession) -> Verdict:
    """The prompt check's verdict (the session's own for a model without a prompt head or a model failure)."""
    return session.prompt_verdict if session.prompt_verdict is not None else session.verdict
