"""StreamSession: the sans-I/O core that follows one response.

No threads, no asyncio, no I/O: ``feed(delta)`` and ``finish()`` return the
events to act on. Every driver (``Guard.stream``, ``Guard.astream``, the
LangChain handlers, the CLI) is a thin loop around this class.

The session's logic is written once, as generators that *yield* the model steps
they need and get the results sent back. ``feed``/``finish`` drive them with
blocking steps; ``afeed``/``afinish`` await each step instead (on the batch
scheduler, or in a worker thread), so an asyncio server judges tokens on its
event loop and only the model call leaves it. Long deltas are judged in slices
with a pause point between them, where ``afeed`` lets the event loop run.

The session only judges and releases: how steps run and what it holds (its
model slot, its batch registration) belong to its :class:`~guardkit.stepper.Stepper`;
what goes into the model's positions (prompt windows, re-prefills) is
:mod:`guardkit.kvwindow`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import weakref
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Callable, Generator

import numpy as np

from guardkit.decision import Debouncer, TokenJudgement, judge, judge_prompt, unblocked_reason
from guardkit.errors import GuardConfigError, SchedulerClosedError, SessionClosedError, SessionLimitError
from guardkit.kvwindow import KVWindow, StepRequest, chunk_size, prompt_windows
from guardkit.model import KVState, StepOutput
from guardkit.policy import Policy
from guardkit.reply_check import ReplyCheckPoints
from guardkit.retokenizer import GuardToken, IncrementalRetokenizer
from guardkit.stepper import DirectStepper, Stepper, stepper_for
from guardkit.verdict import RISK_LEVELS, Blocked, Event, Flagged, Released, Retracted, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.audit.recorder import SessionAudit
    from guardkit.audit.sinks import Auditor
    from guardkit.batching import BatchScheduler
    from guardkit.model import StreamModel

__all__ = ["StreamSession"]

logger = logging.getLogger("guardkit")

SLICE_CHARS = 2048  # a longer delta is judged in slices of this many characters, with a pause point between


_OFFLOAD_PROMPT_CHARS = 16_384  # a longer prompt is tokenized off the event loop by async drivers


class _Offload:
    """A blocking call (tokenizing a long prompt) an async driver runs in a worker thread."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call


# what the session's generators yield: a model step to run (state, token ids, prompt head?),
# None: a pause point where an async driver lets the event loop run, or an _Offload
_Steps = Generator["StepRequest | _Offload | None", Any, list[Event]]

_SEVERITY = {"allow": 0, "flag": 1, "halt": 2}


def _capture(call: Callable[..., Any], *args: Any) -> tuple[Any, Exception | None]:
    """``call(*args)`` as (result, None), or (None, the exception): an offloaded call's failure is the generator's to judge."""
    try:
        return call(*args), None
    except Exception as exc:  # noqa: BLE001 - returned, not swallowed
        return None, exc


def _worse(a: TokenJudgement | None, b: TokenJudgement) -> TokenJudgement:
    """The more severe prompt judgement (action, then level, then unsafe score); ``a`` on ties."""
    if a is None:
        return b
    key = lambda j: (_SEVERITY[j.action], RISK_LEVELS.index(j.level), j.scores[2])
    return b if key(b) > key(a) else a


def _scores(p: tuple[float, float, float]) -> dict[str, float]:
    return {level: round(value, 6) for level, value in zip(RISK_LEVELS, p)}


def _monitored(verdict: Verdict) -> Verdict:
    """Monitor mode: a would-be block, reported as a flag (nothing is withheld or halted)."""
    note = "monitor mode: enforcement would have blocked here"
    return dataclasses.replace(verdict, action="flag", reason=f"{note}; {verdict.reason}" if verdict.reason else note)


class StreamSession:
    """Guards one response (one conversation turn).

    Create it with :meth:`guardkit.Guard.session`. Call :meth:`start` to check
    the prompt (``feed`` does it on first use), then :meth:`feed` each text
    delta and :meth:`finish` at the end (or ``astart``/``afeed``/``afinish`` from
    asyncio: same events). Released text is only what has been judged safe;
    once blocked the session stays blocked.

    ``stepper`` runs the model steps and owns the session's slot (``Guard``
    builds it); without one, the session builds its own from ``model``,
    ``scheduler`` (batches its steps with other sessions') and ``executor``
    (where async steps run without a scheduler; asyncio's default pool when ``None``).
    A session dropped without :meth:`close` gives its slot back when it becomes
    unreachable (no garbage-collection pass needed).

    ``auditor`` (``Guard(audit=...)`` builds it) receives one decision record
    when the prompt has been judged and one when the response ends (finished,
    blocked or closed early), from here, whatever drives the session. In the
    policy's ``monitor`` enforcement mode nothing is withheld or halted: text
    is released as it arrives, a would-be block is reported as a flag (and in
    the record as ``decision: block``) and judging stops there.

    ``coalesce`` (opt-in, default 1): judge the response once this many guard
    tokens are pending, in one model call, instead of one call per token as they
    arrive. On the CPU a 4-token call costs about half a single step per token
    (``guardkit bench``), and verdicts, halt points and released text are the
    same (scoring is chunking-invariant); the price is latency: text is released
    up to ``coalesce - 1`` tokens later, and if the upstream pauses, the pending
    tokens wait for its next delta (or :meth:`finish`). For lone streams on a
    busy CPU where a few tokens of delay do not matter.
    """

    def __init__(
        self,
        model: StreamModel,
        policy: Policy,
        prompt: str | None = None,
        *,
        scheduler: BatchScheduler | None = None,
        executor: Executor | None = None,
        stepper: Stepper | None = None,
        auditor: Auditor | None = None,
        request_id: str | None = None,
        conversation_id: str | None = None,
        coalesce: int = 1,
        prompt_only: bool = False,
    ) -> None:
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be str or None, got {type(prompt).__name__}")
        most = chunk_size(model.max_positions)
        if not isinstance(coalesce, int) or isinstance(coalesce, bool) or not 1 <= coalesce <= most:
            raise GuardConfigError(f"coalesce must be an int from 1 to {most} (tokens per model call), got {coalesce!r}")
        if stepper is None:
            stepper = stepper_for(model, scheduler, executor)
        elif stepper.model is not model:
            raise GuardConfigError("the stepper serves another model")
        self.model = model
        self.policy = policy
        self.prompt = prompt
        # a prompt check (Guard.check_prompt): no response follows, so a bundle's prompt
        # classifier alone gives the verdict and the stream model never reads the prompt
        self._prompt_only = prompt_only
        self._stepper = stepper
        # the slot goes back when the session becomes unreachable, even without a GC pass:
        # the finalizer holds the stepper, never the session
        self._finalizer = weakref.finalize(self, stepper.release)
        self._finalizer.atexit = False
        self._retok = IncrementalRetokenizer(model.tokenizer)
        self._debounce = Debouncer(policy.debounce.rule, policy.debounce.count)
        self._tokens: list[GuardToken] = []
        self._kv = KVWindow(model, policy.long_stream.window_tokens)  # the model positions: state, context, re-prefills
        self._released = 0
        self._started = False
        self._finished = False
        self._closed = False
        self._blocked: Verdict | None = None
        self._flags: list[Verdict] = []
        self._flagged_categories: set[str | None] = set()
        self._peak: TokenJudgement | None = None
        self.prompt_verdict: Verdict | None = None
        self.prompt_risk: np.ndarray | None = None  # the judged (worst) prompt window's (safe, controversial, unsafe)
        self.prompt_category_index = -1  # that window's most likely prompt category (-1: none)
        self.unjudged_tokens = 0  # tokens that passed unjudged because their step failed under failure_mode "open"
        self._chunk = chunk_size(model.max_positions)
        self._coalesce = coalesce
        self._pending: list[GuardToken] = []  # stable tokens waiting for coalesce - 1 others before they are judged
        # the reply check (the bundle's classifier judging the reply so far), when the bundle and the policy have one
        self._reply_points: ReplyCheckPoints | None = None
        self._reply_policy = policy
        check = policy.reply_check
        window = model.reply_window
        if window and check.action != "allow" and not prompt_only:
            self._reply_points = ReplyCheckPoints(min(check.max_hold_tokens, window))
            if check.thresholds is not None:
                self._reply_policy = policy.model_copy(update={"thresholds": check.thresholds})
        # text after the last passed check waits for the next one (nothing a check refuses is released)
        self._reply_holds = self._reply_points is not None and check.action == "block"
        self.reply_checks = 0  # reply checks run so far
        #: the kind of text this session guards (``answer``, ``reasoning``, ``tool_arguments`` ...), for its records
        self.channel = "answer"
        #: False when another session of the same response records the (same) prompt check (provider adapters)
        self.record_prompt = True
        self.guard_seconds = 0.0  # time spent in start/feed/finish calls (the guard's latency)
        self.model_errors = 0
        self.failure: str | None = None  # "open" / "closed" once a model error made the guard fail that way
        self._call_t0: float | None = None
        self._monitor = policy.enforcement == "monitor"
        self._would_block: Verdict | None = None  # monitor mode: the response verdict enforcement would have blocked with
        self._passing = False  # monitor mode, after a would-be block: the rest passes unjudged
        self._response_begun = False
        self._answer_recorded = False
        self._audit: SessionAudit | None = None
        if auditor is not None:
            from guardkit.audit.recorder import SessionAudit

            self._audit = SessionAudit(auditor, request_id, conversation_id)

    @property
    def stepper(self) -> Stepper:
        return self._stepper

    @property
    def model_calls(self) -> int:
        """Model steps run so far (prompt windows, response chunks, re-prefills)."""
        return self._kv.model_calls

    @property
    def reprefills(self) -> int:
        """Times the state was rebuilt from the prompt and recent response (long outputs)."""
        return self._kv.reprefills

    @property
    def _state(self) -> KVState | None:
        return self._kv.state

    @property
    def executor(self) -> Executor | None:
        """Where async steps run without a batch scheduler (``None``: asyncio's default pool)."""
        return self._stepper.executor if isinstance(self._stepper, DirectStepper) else None

    @executor.setter
    def executor(self, executor: Executor | None) -> None:
        if isinstance(self._stepper, DirectStepper):
            self._stepper.executor = executor

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
        if self._would_block is not None:
            return _monitored(self._would_block)
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
        step = self._stepper.step
        self._call_t0 = time.perf_counter()
        try:
            request = next(steps)
            while True:
                if request is None:  # a pause point: nothing to wait for here
                    request = steps.send(None)
                    continue
                if isinstance(request, _Offload):
                    request = steps.send(request.call())
                    continue
                state, ids, prompt_head = request
                try:
                    out = step(state, ids, prompt_head=prompt_head)
                except Exception as exc:  # noqa: BLE001 - raised inside the generator, which decides
                    request = steps.throw(exc)
                else:
                    request = steps.send(out)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            self._stop_clock()

    async def _adrive(self, steps: _Steps) -> list[Event]:
        """Await each requested step (on the scheduler's batches, else in a worker thread); let the loop run at pauses."""
        astep = self._stepper.astep
        self._call_t0 = time.perf_counter()
        try:
            request = next(steps)
            while True:
                if request is None:  # between slices of a long delta: other tasks get to run
                    await asyncio.sleep(0)
                    request = steps.send(None)
                    continue
                if isinstance(request, _Offload):
                    request = steps.send(await asyncio.get_running_loop().run_in_executor(self.executor, request.call))
                    continue
                state, ids, prompt_head = request
                try:
                    out = await astep(state, ids, prompt_head=prompt_head)
                except Exception as exc:  # noqa: BLE001 - raised inside the generator, which decides
                    request = steps.throw(exc)
                else:
                    request = steps.send(out)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            self._stop_clock()

    def _stop_clock(self) -> None:
        if self._call_t0 is not None:
            self.guard_seconds += time.perf_counter() - self._call_t0
            self._call_t0 = None

    def _elapsed(self) -> float:
        """Guard time so far, the current call included."""
        return self.guard_seconds + (time.perf_counter() - self._call_t0 if self._call_t0 is not None else 0.0)

    # -- the session's logic, as step generators --------------------------
    def _judge_prompt(self, worst: TokenJudgement | None, risk: np.ndarray, category: np.ndarray | None,
                      categories: tuple[str, ...]) -> TokenJudgement:
        """Judge one prompt window's scores; keep the worst window's scores as the session's prompt scores."""
        j = judge_prompt(self.policy, risk, category, categories)
        if worst is None or _worse(worst, j) is j:
            self.prompt_risk = np.asarray(risk, dtype=np.float64)
            has_categories = category is not None and len(category) > 0
            self.prompt_category_index = int(np.argmax(category)) if has_categories else -1
        return _worse(worst, j)

    def _start(self) -> _Steps:
        if self._started:
            return []
        if self._closed:
            raise SessionClosedError("this session is closed; start a new one for a new response")
        # the slot first: a refused session (SessionLimitError) stays unstarted and may simply be retried
        self._stepper.acquire()
        self._started = True
        prefix_ids = self.model.response_prefix_ids()
        plan_prompt = functools.partial(prompt_windows, self.model, self.prompt, reserved=len(prefix_ids))
        if self.prompt is not None and len(self.prompt) > _OFFLOAD_PROMPT_CHARS:
            plan = yield _Offload(plan_prompt)  # a 1 MB prompt takes ~0.5 s to tokenize: not on the event loop
        else:
            plan = plan_prompt()
        self._kv.context_ids = plan.context + prefix_ids
        worst: TokenJudgement | None = None
        judged = self.prompt is not None and self.policy.prompt.action != "allow"
        classifier = self.model.prompt_classifier if self.prompt is not None else None
        if classifier is not None and not judged:  # the prompt is only context: nothing to classify
            stream_windows: tuple[tuple[int, ...], ...] = plan.windows[-1:]
        elif classifier is not None:  # the bundle's prompt classifier judges the prompt; the stream model reads it as context
            scored, error = yield _Offload(functools.partial(_capture, self.model.classify_prompt, plan.windows))
            if error is not None:
                return self._model_failed(error, prompt_phase=True)
            for risk, category in scored:
                worst = self._judge_prompt(worst, risk, category, self.model.prompt_categories)
                if worst.action == "halt":
                    break
            if self._prompt_only or (worst is not None and worst.action == "halt" and not self._monitor):
                stream_windows = ()  # no response follows, so no context to read
            else:
                stream_windows = plan.windows[-1:]
        else:  # a prompt that is only context (its check allows everything) needs no window but the last
            stream_windows = plan.windows if judged else plan.windows[-1:]
        for n, window in enumerate(stream_windows):
            last = n == len(stream_windows) - 1  # the prompt's end: the response's context
            try:
                out = yield from self._kv.prefill(list(window) + (prefix_ids if last else []), prompt_head=classifier is None)
            except SchedulerClosedError:  # the Guard was closed: not a model failure (fail-open must not pass text)
                raise
            except SessionLimitError:  # a served model's replica refused a new session: unstarted, may be retried
                self._started = False
                self._stepper.release()
                raise
            except Exception as exc:  # noqa: BLE001 - the policy decides what a model failure means
                return self._model_failed(exc, prompt_phase=True)
            if last:
                self._kv.state = out.state
            if classifier is None and self.prompt is not None and out.prompt_risk is not None:
                row = len(window) - 1
                category = out.prompt_category[row] if out.prompt_category is not None else None
                worst = self._judge_prompt(worst, out.prompt_risk[row], category, self.model.prompt_categories)
                if worst.action == "halt":  # blocked: the later windows cannot change that
                    break
        if worst is None:
            return []
        j = worst
        action = {"halt": "block", "flag": "flag", "allow": "allow"}[j.action]
        self.prompt_verdict = Verdict(
            level=j.level, category=j.category, scores=_scores(j.scores), action=action,  # type: ignore[arg-type]
            policy=self.policy.name, source="prompt", char_offset=0 if action == "block" else None,
        )
        decided = self.prompt_verdict  # what enforcement does (the record's decision, in monitor mode too)
        if action == "block" and self._monitor:  # shadow mode: report it, let the response go on
            self.prompt_verdict = _monitored(decided)
            self._record_prompt(decided, "checked")
            return [Flagged(self.prompt_verdict)]
        if action == "block":
            self._blocked = self.prompt_verdict
            self._drop_state()
            self._record_prompt(decided, "blocked")
            return [Blocked(self.prompt_verdict)]
        self._record_prompt(decided, "checked")
        if action == "flag":
            return [Flagged(self.prompt_verdict)]
        return []

    def _feed(self, delta: str) -> _Steps:
        if not isinstance(delta, str):
            raise TypeError(f"text deltas must be str, got {type(delta).__name__}")
        if self._closed or self._finished:
            raise SessionClosedError("this session is finished; start a new one for a new response")
        if self._prompt_only:
            raise SessionClosedError("this session only checks its prompt; use Guard.session() for a response")
        self._response_begun = True
        events = yield from self._start()
        # a long delta is judged slice by slice (same tokens and verdicts: the split never matters),
        # with a pause point between slices where an async driver lets the event loop run
        for begin in range(0, max(1, len(delta)), SLICE_CHARS):
            if self._blocked is not None:
                break
            if begin:
                yield None
            piece = delta[begin : begin + SLICE_CHARS]
            start = len(self._retok.text)
            tokens = self._retok.push(piece)
            if (self._monitor or self.policy.release == "passthrough") and piece:  # released as it arrives
                events.append(Released(piece, start))
                self._released = len(self._retok.text)
            if not self._passing:
                events += yield from self._judge(self._due(tokens))
            events += self._release()
        return events

    def _due(self, tokens: list[GuardToken]) -> list[GuardToken]:
        """The tokens to judge now: all pending ones once ``coalesce`` are pending, else none."""
        self._pending += tokens
        if len(self._pending) < self._coalesce:
            return []
        due, self._pending = self._pending, []
        return due

    def _finish(self) -> _Steps:
        if self._closed or self._finished:
            return []
        self._response_begun = True
        events = yield from self._start()
        if self._blocked is None:
            tokens = self._pending + self._retok.flush()
            self._pending = []
            if not self._passing:
                events += yield from self._judge(tokens)
            if self._reply_points is not None and self._blocked is None and not self._passing:
                events += yield from self._check_reply(len(self._tokens))  # the reply's last sentence
            events += self._release(final=self._blocked is None)
        self._finished = True
        self._drop_state()
        self._record_answer("finished")
        return events

    def close(self) -> None:
        """Free the model state and the slot without judging the rest (e.g. the consumer went away)."""
        self._closed = True
        self._drop_state()
        self._record_answer("closed")

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------
    def _drop_state(self) -> None:
        self._kv.drop()
        self._finalizer()  # the stepper gives the slot (and batch registration) back, once

    def _judge(self, tokens: list[GuardToken]) -> _Steps:
        events: list[Event] = []
        for begin in range(0, len(tokens), self._chunk):
            if self._blocked is not None or self._passing:
                break
            chunk = tokens[begin : begin + self._chunk]
            try:
                out = yield from self._kv.score([t.id for t in chunk])
            except SchedulerClosedError:
                raise
            except Exception as exc:  # noqa: BLE001
                events += self._model_failed(exc, first_unjudged=chunk[0])
                if self._blocked is None:  # failed open: this step's tokens pass unjudged, the next step is judged again
                    self._pass_unjudged(chunk)
                continue
            events += yield from self._apply(chunk, out)
        return events

    def _pass_unjudged(self, chunk: list[GuardToken]) -> None:
        for token in chunk:
            index = len(self._tokens)
            self._tokens.append(token)
            self._debounce.push(index, False)
        self.unjudged_tokens += len(chunk)

    def _apply(self, chunk: list[GuardToken], out: StepOutput) -> _Steps:
        """Judge each token of a scored chunk in order, with the reply checks due around it."""
        events: list[Event] = []
        categories = self.model.categories
        points = self._reply_points
        for row, token in enumerate(chunk):
            index = len(self._tokens)
            if points is not None and index and points.due_before(index, self._retok.text[self._tokens[-1].end : token.start]):
                events += yield from self._check_reply(index)
                if self._blocked is not None or self._passing:
                    break
            self._tokens.append(token)
            j = judge(self.policy, out.risk[row], out.category[row], categories)
            if self._peak is None or j.scores[2] > self._peak.scores[2]:
                self._peak = j
            if j.action == "flag" and j.category not in self._flagged_categories:
                self._flagged_categories.add(j.category)
                verdict = self._verdict(j, "flag", index)
                self._flags.append(verdict)
                if self._audit is not None:
                    self._audit.flagged()
                events.append(Flagged(verdict))
            onset = self._debounce.push(index, j.halts)
            if onset is not None:
                if self._reply_holds and points is not None:  # text no reply check has passed stays withheld
                    onset = min(onset, points.checked)
                events += self._block(self._verdict(j, "block", onset))
                break
            if points is not None and points.due_after(index, self._retok.text[token.start : token.end]):
                events += yield from self._check_reply(index + 1)
                if self._blocked is not None or self._passing:
                    break
        return events

    def _check_reply(self, end: int) -> _Steps:
        """The reply check of guard tokens ``[.., end)``: the classifier reads the last of them at once.

        A refusing check blocks from the first unchecked token (held back until
        now when the check's action is ``block``); a flag or a pass marks the
        tokens checked.
        """
        points = self._reply_points
        assert points is not None
        start = points.checked
        if end <= start:
            return []
        ids = [t.id for t in self._tokens[max(0, end - self.model.reply_window) : end]]
        self.reply_checks += 1
        result, error = yield _Offload(functools.partial(_capture, self.model.classify_reply, ids))
        if error is not None:
            events = self._model_failed(error, first_unjudged=self._tokens[start])
            if self._blocked is None:  # failed open: these tokens pass unchecked
                points.passed(end)
            return events
        risk, category = result
        j = judge(self._reply_policy, risk, category, self.model.prompt_categories)
        reason = f"reply check: the classifier read the reply up to character {self._tokens[end - 1].end} at once"
        if j.halts and self._reply_holds:  # the check blocks (and so held this text back)
            return self._block(dataclasses.replace(self._verdict(j, "block", start), reason=reason))
        points.passed(end)
        if j.action != "allow" and j.category not in self._flagged_categories:  # a flag, or a block the policy only flags
            self._flagged_categories.add(j.category)
            verdict = dataclasses.replace(self._verdict(j, "flag", start), reason=reason)
            self._flags.append(verdict)
            if self._audit is not None:
                self._audit.flagged()
            return [Flagged(verdict)]
        return []

    def _verdict(self, j: TokenJudgement, action: str, onset_index: int) -> Verdict:
        return Verdict(
            level=j.level, category=j.category, scores=_scores(j.scores), action=action,  # type: ignore[arg-type]
            token_index=onset_index, char_offset=self._tokens[onset_index].start, policy=self.policy.name, source="response",
        )

    def _block(self, verdict: Verdict) -> list[Event]:
        if self._monitor:
            return self._would(verdict)
        self._blocked = verdict
        events: list[Event] = []
        onset = verdict.char_offset if verdict.char_offset is not None else self._released
        if self.policy.release == "passthrough" and onset < self._released:
            events.append(Retracted(onset, verdict))
        else:
            events += self._release()
        events.append(Blocked(verdict))
        self._drop_state()
        if verdict.source == "prompt" and self._prompt_checked:  # a model failure while checking the prompt
            self._record_prompt(verdict, "blocked")
        else:
            self._response_begun = True  # the stream ended here, before or during its response
            self._record_answer("blocked")
        return events

    def _would(self, verdict: Verdict) -> list[Event]:
        """Monitor mode: enforcement would block here. Report it; the rest passes unjudged."""
        self._passing = True
        self._drop_state()
        if verdict.source == "prompt" and self._prompt_checked:  # a model failure while checking the prompt
            self._record_prompt(verdict, "checked")
            return [Flagged(_monitored(verdict))]
        self._would_block = verdict
        return [Flagged(_monitored(verdict))]

    def _model_failed(self, exc: Exception, first_unjudged: GuardToken | None = None, *, prompt_phase: bool = False) -> list[Event]:
        self.model_errors += 1
        self.failure = self.policy.failure_mode
        if self.policy.failure_mode == "open":
            # this step's text passes unjudged; the next step is judged again
            logger.warning("guardkit model error, failing open (this step's text passes unguarded): %s", exc)
            if prompt_phase and self._prompt_checked:
                self._record_prompt(Verdict(level="safe", action="allow", policy=self.policy.name, source="prompt",
                                            reason=f"model error, failed open: {exc}"), "checked")
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

    # -- decision records ----------------------------------------------------
    @property
    def _prompt_checked(self) -> bool:
        """The prompt gets its own check (and record); with ``prompt.action: allow`` it is only context."""
        return self.prompt is not None and self.policy.prompt.action != "allow"

    def _record_prompt(self, verdict: Verdict, end: str) -> None:
        """One record for the prompt check (none when the prompt is only context: ``prompt.action: allow``)."""
        if end == "blocked":
            self._answer_recorded = True  # the prompt's record ends this session
        if self._audit is None or not self._prompt_checked or not self.record_prompt:
            return
        self._audit.record(
            channel="prompt", verdict=verdict, end=end, policy=self.policy, model=self.model, text=self.prompt, chars_released=0,
            tokens_judged=0, flags=[], guard_seconds=self._elapsed(), model_calls=self.model_calls, reprefills=0,
            failure=self.failure, model_errors=self.model_errors, unjudged_tokens=0,
        )

    def _record_answer(self, end: str) -> None:
        """One record when the response ends (once; none for a session that never saw a response, e.g. a prompt check)."""
        if self._answer_recorded or not self._response_begun:
            return
        self._answer_recorded = True
        if self._audit is None:
            return
        verdict = self._would_block if self._would_block is not None else self.verdict
        self._audit.record(
            channel=self.channel, verdict=verdict, end=end, policy=self.policy, model=self.model, text=self._retok.text,
            chars_released=self._released, tokens_judged=len(self._tokens), flags=self._flags, guard_seconds=self._elapsed(),
            model_calls=self.model_calls, reprefills=self.reprefills, failure=self.failure, model_errors=self.model_errors,
            unjudged_tokens=self.unjudged_tokens,
        )

    def _release_limit(self, *, final: bool) -> int:
        if self._blocked is not None:
            onset = self._blocked.char_offset
            return self._released if onset is None else max(self._released, onset)
        if final:
            return len(self._retok.text)
        limit = self._retok.committed_chars
        hold = self._debounce.hold_from
        if hold is not None:  # a run of halting tokens that may still block
            limit = self._tokens[hold].start
        if self._pending:  # coalesced tokens are not judged yet: nor released
            limit = min(limit, self._pending[0].start)
        if self._reply_holds and self._reply_points is not None and self._reply_points.checked < len(self._tokens):
            limit = min(limit, self._tokens[self._reply_points.checked].start)  # not yet read by a reply check
        return limit

    def _release(self, *, final: bool = False) -> list[Event]:
        limit = self._release_limit(final=final)
        if limit <= self._released:
            return []
        start = self._released
        self._released = limit
        return [Released(self._retok.text[start:limit], start)]
