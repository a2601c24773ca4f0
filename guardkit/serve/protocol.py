"""The narrow model interface a Guard and its sessions use: what a served model must provide.

:class:`~guardkit.StreamModel` (in-process) and :class:`~guardkit.serve.RemoteModel`
(a model served on Ray Serve) both satisfy it. A state is opaque to the
session: it only reads its ``length`` and hands it back to ``step``.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from tokenizers import Tokenizer

from guardkit.manifest import Manifest
from guardkit.model import StepOutput

__all__ = ["GuardModel"]


@runtime_checkable
class GuardModel(Protocol):
    manifest: Manifest
    tokenizer: Tokenizer
    categories: tuple[str, ...]
    prompt_categories: tuple[str, ...]
    has_prompt_head: bool

    @property
    def max_positions(self) -> int: ...

    @property
    def providers(self) -> list[str]: ...

    def empty_state(self) -> Any: ...

    def step(self, state: Any, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput: ...

    def step_many(self, states: Sequence[Any], token_lists: Sequence[Sequence[int]], *, prompt_head: bool = False) -> list[StepOutput]: ...

    def prompt_token_ids(self, prompt: str | None) -> list[int]: ...

    def response_prefix_ids(self) -> list[int]: ...

    def acquire_slot(self) -> None: ...

    def release_slot(self) -> None: ...
