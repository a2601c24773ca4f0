"""StreamSession: the sans-I/O core that follows one response.

No threads, no asyncio, no I/O: ``feed(delta)`` and ``finish()`` return the
events to act on. Every driver (``Guard.stream``, ``Guard.astream``, the
LangChain handlers, the CLI) is a thin loop around this class.

The session's logic is written once, as generators that *yield* the model steps
they need and get the results sent back. ``feed``/``finish`` drive them with
blocking steps; ``afeed``/``afinish`` await each step instead (on the batch
scheduler, or in a worker thread), so an asyncio server judges tokens on its
event loop and only the model call leaves it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Generator, Sequence

import numpy as np

from guardkit.decision import Debouncer, TokenJudgement, judge, judge_prompt, unblocked_reason
from guardkit.errors import SessionClosedError
from guardkit.model import KVState, StepOutput
from guardkit.policy import Policy
from guardkit.retokenizer import GuardToken, IncrementalRetokenizer
from guardkit.verdict import RISK_LEVELS, Blocked, Event, Flagged, Released, Retracted, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.batching import BatchScheduler
    from guardkit.model import StreamModel

__all__ = ["StreamSession"]

logger = logging.getLogger("guardkit")

_MAX_CHUNK = 64  # guard tokens scored per model call


# what the session's generators yield: a model step to run (state, token ids, prompt head?)
_StepRequest = tuple[KVState, Sequence[int], bool]
_Steps = Generator[_StepRequest, StepOutput, list[Event]]


def _scores(p: tuple[float, float, float]) -> dict[str, float]:
    return {level: round(value, 6) for level, value in zip(RISK_LEVELS, p)}


class StreamSession:
    """Guards one response (one conversation turn).

    Create it with :meth:`guardkit.Guard.session`. Call :meth:`start` to check
    the prompt (``feed`` does it on first use), then :meth:`feed` each text
    delta and :meth:`finish` at the end (or ``astart``/``afeed``/``afinish`` from
    asyncio: same events). Released text is only what has been judged safe;
    once blocked the session stays blocked.

    ``scheduler`` batches the session's steps with other sessions'; without one,
    async steps run in ``executor`` (asyncio's default pool when ``None``).
    """

    def __init__(
        self,
        model: StreamModel,
        policy: Policy,
        prompt: str | None = None,
        *,
        scheduler: BatchScheduler | None = None,
        executor: Executor | None = None,
    ) -> None:
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be str or None, got {type(prompt).__name__}")
        self.model = model
        self.policy = policy
        self.prompt = prompt
        self._scheduler = scheduler
        self._step = scheduler.step if scheduler is not None else model.step
        self.executor = executor  # where async steps run without a scheduler (None: asyncio's default pool)
        self._retok = IncrementalRetokenizer(model.tokenizer)
        self._debounce = Debouncer(policy.debounce.rule, policy.debounce.count)
        self._tokens: list[GuardToken] = []
        self._state: KVState | None = None
        self._context_ids: list[int] = []  # rendered prompt + response prefix
        self._recent_ids: deque[int] = deque(maxlen=policy.long_stream.window_tokens)  # for re-prefills
        self._released = 0
        self._started = False
        self._finished = False
        self._closed = False
        self._unguarded = False
        self._has_slot = False
        self._blocked: Verdict | None = None
        self._flags: list[Verdict] = []
        self._flagged_categories: set[str | None] = set()
        self._peak: TokenJudgement | None = None
        self.prompt_verdict: Verdict | None = None
        self.model_calls = 0
        self.reprefills = 0
        self._chunk = max(1, min(_MAX_CHUNK, model.max_positions // 4))

    # -- public state ----------------------------------------------------
    @property
    def blocked(self) -> bool:
        return self._blocked is not None

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def text(self) -> str:
        """All response text fed so far."""
        return self._retok.text

    @property
    def released_text(self) -> str:
        """The response text released to the consumer so far."""
        return self._retok.text[: self._released]

    @property
    def tokens(self) -> list[GuardToken]:
        """Guard tokens judged so far."""
        return list(self._tokens)

    @property
    def verdict(self) -> Verdict:
        """The blocking verdict, else the most severe flag, else a safe verdict (so far)."""
        if self._blocked is not None:
            return self._blocked
        if self._flags:
            return max(self._flags, key=lambda v: (RISK_LEVELS.index(v.level), v.scores.get("unsafe", 0.0)))
        peak = self._peak
        return Verdict(level="safe", scores=_scores(peak.scores) if peak else {}, action="allow", policy=self.policy.name,
                       reason=unblocked_reason(self.policy, peak, self._debounce.halting_tokens))

    # -- lifecycle -------------------------------------------------------
    def start(self) -> list[Event]:
        """Prefill the prompt and check it. Idempotent; ``feed`` calls it if needed."""
        return self._drive(self._start())

    def feed(self, delta: str) -> list[Event]:
        """Add a text delta of the response; return the events it causes."""
        return self._drive(self._feed(delta))

    def finish(self) -> list[Event]:
        """End of the response: judge the rest and release it if safe. Idempotent."""
        return self._drive(self._finish())

    async def astart(self) -> list[Event]:
        """:meth:`start` for asyncio: the model step is awaited, the event loop stays free."""
        return await self._adrive(self._start())

    async def afeed(self, delta: str) -> list[Event]:
        """:meth:`feed` for asyncio: judging runs here, the model steps are awaited."""
        return await self._adrive(self._feed(delta))

    async def afinish(self) -> list[Event]:
        """:meth:`finish` for asyncio."""
        return await self._adrive(self._finish())

    # -- drivers: run the session's step generators -----------------------
    def _drive(self, steps: _Steps) -> list[Event]:
        """Run each requested step here, blocking (through the scheduler when batching)."""
        try:
            request = next(steps)
            while True:
                state, ids, prompt_head = request
                try:
                    out = self._step(state, ids, prompt_head=prompt_head)
                except Exception as exc:  # noqa: BLE001 - raised inside the generator, which decides
                    request = steps.throw(exc)
                else:
                    request = steps.send(out)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _adrive(self, steps: _Steps) -> list[Event]:
        """Await each requested step: on the scheduler's batches, else in a worker thread."""
        try:
            request = next(steps)
            while True:
                state, ids, prompt_head = request
                try:
                    out = await self._astep(state, ids, prompt_head)
                except Exception as exc:  # noqa: BLE001 - raised inside the generator, which decides
                    request = steps.throw(exc)
                else:
                    request = steps.send(out)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _astep(self, state: KVState, ids: Sequence[int], prompt_head: bool) -> StepOutput:
        if self._scheduler is not None:
            return await self._scheduler.astep(state, ids, prompt_head=prompt_head)
        call = functools.partial(self.model.step, state, ids, prompt_head=prompt_head)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    # -- the session's logic, as step generators --------------------------
    def _start(self) -> _Steps:
        if self._started:
            return []
        self._started = True
        self.model.acquire_slot()
        self._has_slot = True
        if self._scheduler is not None:
            self._scheduler.register()
        prefix_ids = self.model.response_prefix_ids()
        prompt_ids = self._fit_prompt(self.model.prompt_token_ids(self.prompt), reserved=len(prefix_ids))
        self._context_ids = prompt_ids + prefix_ids
        try:
            out = yield self.model.empty_state(), self._context_ids, True
        except Exception as exc:  # noqa: BLE001 - the policy decides what a model failure means
            return self._model_failed(exc)
        self.model_calls += 1
        self._state = out.state
        if self.prompt is None or out.prompt_risk is None:
            return []
        last = len(prompt_ids) - 1
        category = out.prompt_category[last] if out.prompt_category is not None else None
        j = judge_prompt(self.policy, out.prompt_risk[last], category, self.model.prompt_categories)
        action = {"halt": "block", "flag": "flag", "allow": "allow"}[j.action]
        self.prompt_verdict = Verdict(
            level=j.level, category=j.category, scores=_scores(j.scores), action=action,  # type: ignore[arg-type]
            policy=self.policy.name, source="prompt", char_offset=0 if action == "block" else None,
        )
        if action == "block":
            self._blocked = self.prompt_verdict
            self._drop_state()
            return [Blocked(self.prompt_verdict)]
        if action == "flag":
            return [Flagged(self.prompt_verdict)]
        return []

    def _feed(self, delta: str) -> _Steps:
        if not isinstance(delta, str):
            raise TypeError(f"text deltas must be str, got {type(delta).__name__}")
        if self._closed or self._finished:
            raise SessionClosedError("this session is finished; start a new one for a new response")
        events = yield from self._start()
        if self._blocked is not None:
            return events
        start = len(self._retok.text)
        tokens = self._retok.push(delta)
        if self.policy.release == "passthrough" and delta:
            events.append(Released(delta, start))
            self._released = len(self._retok.text)
        events += yield from self._judge(tokens)
        events += self._release()
        return events

    def _finish(self) -> _Steps:
        if self._closed or self._finished:
            return []
        events = yield from self._start()
        if self._blocked is None:
            events += yield from self._judge(self._retok.flush())
            events += self._release(final=self._blocked is None)
        self._finished = True
        self._drop_state()
        return events

    def close(self) -> None:
        """Free the model state without judging the rest (e.g. the consumer went away)."""
        self._closed = True
        self._drop_state()

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten session must not leak its slot
        try:
            self._drop_state()
        except Exception:  # noqa: BLE001 pragma: no cover
            pass

    # -- internals -------------------------------------------------------
    def _drop_state(self) -> None:
        self._state = None
        if self._has_slot:
            self._has_slot = False
            self.model.release_slot()
            if self._scheduler is not None:
                self._scheduler.unregister()

    def _fit_prompt(self, ids: list[int], reserved: int) -> list[int]:
        """Keep prompt + response prefix within half the positions: the prompt's first token and its end."""
        limit = max(2, self.model.max_positions // 2 - reserved)
        if len(ids) <= limit:
            return ids
        return ids[:1] + ids[len(ids) - (limit - 1):]

    def _judge(self, tokens: list[GuardToken]) -> _Steps:
        events: list[Event] = []
        for begin in range(0, len(tokens), self._chunk):
            if self._blocked is not None:
                break
            chunk = tokens[begin : begin + self._chunk]
            if self._unguarded:
                self._tokens.extend(chunk)
                continue
            try:
                out = yield from self._score(chunk)
            except Exception as exc:  # noqa: BLE001
                events += self._model_failed(exc, first_unjudged=chunk[0])
                if self._unguarded:
                    self._tokens.extend(chunk)
                continue
            events += self._apply(chunk, out)
        return events

    def _score(self, chunk: list[GuardToken]) -> Generator[_StepRequest, StepOutput, StepOutput]:
        """Score a chunk, re-prefilling exactly when the state is full.

        The re-prefill points depend only on how many tokens were scored, never
        on how the text arrived, so long streams stay chunking-invariant.
        """
        assert self._state is not None
        ids = [t.id for t in chunk]
        parts: list[StepOutput] = []
        begin = 0
        while begin < len(ids):
            if self._state.length >= self.model.max_positions:
                yield from self._reprefill()
            part = ids[begin : begin + self.model.max_positions - self._state.length]
            out = yield self._state, part, False
            self.model_calls += 1
            self._state = out.state
            self._recent_ids.extend(part)
            parts.append(out)
            begin += len(part)
        if len(parts) == 1:
            return parts[0]
        return StepOutput(
            risk=np.concatenate([p.risk for p in parts]), category=np.concatenate([p.category for p in parts]),
            prompt_risk=None, prompt_category=None, state=self._state,
        )

    def _reprefill(self) -> Generator[_StepRequest, StepOutput, None]:
        """Long outputs: restart the state from the prompt plus a recent window of the response.

        A quarter of the positions stays free, so re-prefills are amortised.
        """
        room = self.model.max_positions - len(self._context_ids) - self.model.max_positions // 4
        window = max(0, min(self.policy.long_stream.window_tokens, room))
        recent = list(self._recent_ids)[len(self._recent_ids) - window :] if window else []
        out = yield self.model.empty_state(), self._context_ids + recent, False
        self.model_calls += 1
        self.reprefills += 1
        self._state = out.state

    def _apply(self, chunk: list[GuardToken], out: StepOutput) -> list[Event]:
        events: list[Event] = []
        categories = self.model.categories
        for row, token in enumerate(chunk):
            index = len(self._tokens)
            self._tokens.append(token)
            j = judge(self.policy, out.risk[row], out.category[row], categories)
            if self._peak is None or j.scores[2] > self._peak.scores[2]:
                self._peak = j
            if j.action == "flag" and j.category not in self._flagged_categories:
                self._flagged_categories.add(j.category)
                verdict = self._verdict(j, "flag", index)
                self._flags.append(verdict)
                events.append(Flagged(verdict))
            onset = self._debounce.push(index, j.halts)
            if onset is not None:
                events += self._block(self._verdict(j, "block", onset))
                break
        return events

    def _verdict(self, j: TokenJudgement, action: str, onset_index: int) -> Verdict:
        return Verdict(
            level=j.level, category=j.category, scores=_scores(j.scores), action=action,  # type: ignore[arg-type]
            token_index=onset_index, char_offset=self._tokens[onset_index].start, policy=self.policy.name, source="response",
        )

    def _block(self, verdict: Verdict) -> list[Event]:
        self._blocked = verdict
        events: list[Event] = []
        onset = verdict.char_offset if verdict.char_offset is not None else self._released
        if self.policy.release == "passthrough" and onset < self._released:
            events.append(Retracted(onset, verdict))
        else:
            events += self._release()
        events.append(Blocked(verdict))
        self._drop_state()
        return events

    def _model_failed(self, exc: Exception, first_unjudged: GuardToken | None = None) -> list[Event]:
        if self.policy.failure_mode == "open":
            logger.warning("guardkit model error, failing open (text passes unguarded): %s", exc)
            self._unguarded = True
            return []
        logger.error("guardkit model error, failing closed (stream blocked): %s", exc)
        onset = self._release_limit(final=False)
        if first_unjudged is not None:
            onset = min(onset, first_unjudged.start)
        verdict = Verdict(
            level="unsafe", action="block", char_offset=onset, policy=self.policy.name,
            source="response" if self._tokens or first_unjudged else "prompt", reason=f"model error: {exc}",
        )
        return self._block(verdict)

    def _release_limit(self, *, final: bool) -> int:
        if self._blocked is not None:
            onset = self._blocked.char_offset
            return self._released if onset is None else max(self._released, onset)
        if final or self._unguarded:
            return len(self._retok.text)
        hold = self._debounce.hold_from
        if hold is not None:
            return self._tokens[hold].start
        return self._retok.committed_chars

    def _release(self, *, final: bool = False) -> list[Event]:
        limit = self._release_limit(final=final)
        if limit <= self._released:
            return []
        start = self._released
        self._released = limit
        return [Released(self._retok.text[start:limit], start)]
