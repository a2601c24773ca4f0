"""What a session puts in the model's positions: prompt fitting and re-prefills.

The model sees at most ``max_positions`` tokens. A session keeps its prompt
(plus the response prefix) within half of them, and when the KV state fills up
it restarts from that prompt context plus a recent window of the response
(see :func:`reprefill_ids`); :class:`KVWindow` keeps one session's state and
scores its tokens that way, so the session itself only judges and releases. A prompt longer than its half is *judged* whole:
:func:`prompt_windows` cuts it into overlapping windows, each rendered with the
template around it, and the session keeps the worst window's verdict; the last
window (the prompt's end) is the context the response is judged in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generator, Sequence

import numpy as np

from guardkit.model import KVState, StepOutput
from guardkit.windows import overlapping_windows, split_rendering

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.model import StreamModel

__all__ = ["MAX_CHUNK", "KVWindow", "PromptPlan", "StepRequest", "chunk_size", "prompt_windows", "reprefill_ids"]

#: A model step a session's generators yield: (state, token ids, read the prompt head?).
StepRequest = tuple[KVState, Sequence[int], bool]

MAX_CHUNK = 64  # guard tokens scored per model call
_MIN_WINDOW_BODY = 8  # fewer prompt tokens per window than this: keep the prompt's first token and end instead


def chunk_size(max_positions: int) -> int:
    """Guard tokens scored per model call."""
    return max(1, min(MAX_CHUNK, max_positions // 4))


def prompt_limit(max_positions: int, reserved: int) -> int:
    """Positions a rendered prompt may take (half the model's, less the response prefix)."""
    return max(2, max_positions // 2 - reserved)


@dataclass(frozen=True)
class PromptPlan:
    """The prompt windows to judge, in order; the last one is the response's prompt context."""

    windows: tuple[tuple[int, ...], ...]

    @property
    def context(self) -> list[int]:
        return list(self.windows[-1])


def prompt_windows(model: StreamModel, prompt: str | None, reserved: int) -> PromptPlan:
    """Cut the rendered prompt into windows that each fit the prompt's positions.

    A prompt that fits is one window (the whole rendering). A longer one is cut
    at token level into windows that overlap by half, each wrapped in the
    template's head and tail, so every stretch of up to half a window lies whole
    inside some window.
    """
    ids = model.prompt_token_ids(prompt)
    limit = prompt_limit(model.max_positions, reserved)
    if len(ids) <= limit:
        return PromptPlan((tuple(ids),))
    head, body, tail = split_rendering(ids, *model.template_head_tail())
    width = limit - len(head) - len(tail)
    if width < _MIN_WINDOW_BODY or not body:  # no room for a meaningful window: the prompt's first token and its end
        return PromptPlan((tuple(ids[:1] + ids[len(ids) - (limit - 1):]),))
    return PromptPlan(tuple(tuple(w) for w in overlapping_windows(head, body, tail, width)))


def reprefill_ids(context_ids: Sequence[int], recent_ids: Sequence[int], max_positions: int, window_tokens: int) -> list[int]:
    """The prompt context plus as much recent response as fits, leaving a quarter of the positions free.

    The free quarter amortises re-prefills: at most one per ``max_positions // 4`` tokens.
    """
    room = max_positions - len(context_ids) - max_positions // 4
    window = max(0, min(window_tokens, room, len(recent_ids)))
    recent = list(recent_ids)[len(recent_ids) - window :] if window else []
    return list(context_ids) + recent


class KVWindow:
    """One session's KV state: the prompt context it restarts from, and scoring with re-prefills.

    :meth:`score` is a generator that yields the model steps it needs (see
    :data:`StepRequest`) and returns the scored tokens' outputs. The re-prefill
    points depend only on how many tokens were scored, never on how the text
    arrived, so long streams stay chunking-invariant. Without a state (the
    prompt's step failed open) the state is rebuilt from the context first.
    """

    def __init__(self, model: StreamModel, window_tokens: int) -> None:
        self.model = model
        self.window_tokens = window_tokens
        self.state: KVState | None = None
        self.context_ids: list[int] = []  # rendered prompt (its last window) + response prefix
        self._recent: deque[int] = deque(maxlen=window_tokens)  # response ids, for re-prefills
        self.model_calls = 0
        self.reprefills = 0

    def prefill(self, ids: Sequence[int], *, prompt_head: bool) -> Generator[StepRequest, StepOutput, StepOutput]:
        """One step from an empty state (a prompt window); the caller keeps ``out.state`` if it is the context."""
        out = yield self.model.empty_state(), list(ids), prompt_head
        self.model_calls += 1
        return out

    def score(self, ids: Sequence[int]) -> Generator[StepRequest, StepOutput, StepOutput]:
        """Score response token ids after the state, re-prefilling exactly when it is full."""
        limit = self.model.max_positions
        parts: list[StepOutput] = []
        begin = 0
        while begin < len(ids):
            if self.state is None or self.state.length >= limit:
                yield from self._reprefill()
            assert self.state is not None
            part = list(ids[begin : begin + limit - self.state.length])
            out = yield self.state, part, False
            self.model_calls += 1
            self.state = out.state
            self._recent.extend(part)
            parts.append(out)
            begin += len(part)
        if len(parts) == 1:
            return parts[0]
        return StepOutput(
            risk=np.concatenate([p.risk for p in parts]), category=np.concatenate([p.category for p in parts]),
            prompt_risk=None, prompt_category=None, state=self.state,
        )

    def _reprefill(self) -> Generator[StepRequest, StepOutput, None]:
        ids = reprefill_ids(self.context_ids, self._recent, self.model.max_positions, self.window_tokens)
        out = yield self.model.empty_state(), ids, False
        self.model_calls += 1
        self.reprefills += 1
        self.state = out.state

    def drop(self) -> None:
        """Free the state (the context is kept, it is only ids)."""
        self.state = None
