"""Issue 14, streams and sessions: nothing outlives its consumer, fail-open is per step, resources have one owner."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import numpy as np
import pytest
from gk_helpers import same_verdict
from hypothesis import given
from hypothesis import strategies as st

from guardkit import Guard, GuardConfigError, GuardkitError, SchedulerClosedError, SessionLimitError, StreamModel
from guardkit.policy import policy_from_dict
from guardkit.session import SLICE_CHARS, StreamSession
from guardkit.testing import SAFE_WORDS

HARMFUL = "sure here is how to build a bomb detonator and then more"
BENIGN = "sure here is a recipe for bread: mix flour with water and salt, then bake it."


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


class Upstreams:
    """LLM-like upstreams that count how many are open (started and not yet closed)."""

    def __init__(self) -> None:
        self.open = 0
        self.started = 0

    def sync(self, pieces: list[str]) -> Iterator[str]:
        self.open += 1
        self.started += 1
        try:
            yield from pieces
        finally:
            self.open -= 1

    async def asyn(self, pieces: list[str]) -> AsyncIterator[str]:
        self.open += 1
        self.started += 1
        try:
            for piece in pieces:
                yield piece
        finally:
            self.open -= 1


# -- 1: a stream dropped without close() frees its slot and upstream at once (no GC pass) -----

def _drop_sync(guard: Guard, upstreams: Upstreams, i: int, sessions: list[weakref.ref[StreamSession]]) -> None:
    stream = guard.stream(upstreams.sync(words(BENIGN)), prompt="please help me")
    sessions.append(weakref.ref(stream.session))
    if i % 2:
        for _ in stream:
            break  # the consumer stops without closing
    else:
        try:
            for _ in stream:
                raise ConnectionError("client disconnected")  # send() raised
        except ConnectionError:
            pass


@pytest.mark.parametrize("batching", [False, True])
def test_dropped_sync_streams_leave_no_session_and_no_open_upstream_without_gc(tiny_bundle: Path, batching: bool) -> None:
    guard = Guard(tiny_bundle, max_sessions=4, batching=batching)
    upstreams = Upstreams()
    sessions: list[weakref.ref[StreamSession]] = []
    gc.disable()
    try:
        for i in range(1000):
            _drop_sync(guard, upstreams, i, sessions)
        assert upstreams.started == 1000 and upstreams.open == 0
        assert guard.model.live_sessions == 0
        assert all(ref() is None for ref in sessions)
        if guard.scheduler is not None:
            assert guard.scheduler.active_sessions == 0
        stream = guard.stream(words(HARMFUL))  # the max_sessions=4 guard still serves
        list(stream)
        assert stream.blocked and guard.model.live_sessions == 0
    finally:
        gc.enable()
        guard.close()


async def _drop_async(guard: Guard, upstreams: Upstreams, i: int, sessions: list[weakref.ref[StreamSession]]) -> None:
    stream = guard.astream(upstreams.asyn(words(BENIGN)), prompt="please help me")
    sessions.append(weakref.ref(stream.session))
    if i % 2:
        async for _ in stream:
            break
    else:
        try:
            async for _ in stream:
                raise ConnectionError("client disconnected")
        except ConnectionError:
            pass


@pytest.mark.parametrize("batching", [False, True])
async def test_dropped_async_streams_leave_no_session_and_no_open_upstream_without_gc(tiny_bundle: Path, batching: bool) -> None:
    guard = Guard(tiny_bundle, max_sessions=4, batching=batching)
    upstreams = Upstreams()
    sessions: list[weakref.ref[StreamSession]] = []
    gc.disable()
    try:
        for i in range(1000):
            await _drop_async(guard, upstreams, i, sessions)
            # the slot comes back and the upstream is closed as soon as the stream is unreachable
            assert guard.model.live_sessions == 0 and upstreams.open == 0, i
        assert upstreams.started == 1000
        for _ in range(5):  # asyncio finishes the dropped streams' own generators in tasks it runs next
            await asyncio.sleep(0)
        assert all(ref() is None for ref in sessions)
        stream = guard.astream(upstreams.asyn(words(HARMFUL)))
        assert [t async for t in stream] and stream.blocked
    finally:
        gc.enable()
        guard.close()


# -- 2: fail-open covers the failed step only ---------------------------------------------------

class FlakyModel(StreamModel):
    """A real model whose n-th ONNX Runtime calls (1-based, batched or not) fail once."""

    def __init__(self, path: Path, fail_on: set[int]) -> None:
        super().__init__(path, device="cpu")
        self.fail_on = fail_on
        self.calls = 0
        self._count_lock = threading.Lock()

    def _tick(self) -> None:
        with self._count_lock:
            self.calls += 1
            if self.calls in self.fail_on:
                raise RuntimeError("onnxruntime hiccup")

    def run(self, state, token_ids):  # type: ignore[no-untyped-def]
        self._tick()
        return super().run(state, token_ids)

    def run_batch(self, feeds):  # type: ignore[no-untyped-def]
        self._tick()
        return super().run_batch(feeds)


_OPEN = {"name": "open", "failure_mode": "open"}
_LATE_HARM = "sure here is a recipe for bread and then how to build a bomb detonator now"


async def _run_path(path: str, guard: Guard) -> tuple[Any, str]:
    pieces = words(_LATE_HARM)
    if path == "sync":
        stream: Any = guard.stream(pieces, prompt="please help me")
        return stream, "".join(stream)
    if path == "async":
        stream = guard.astream(pieces, prompt="please help me")
        return stream, "".join([t async for t in stream])
    from guardkit import aguard_openai_stream, guard_openai_stream

    chunks = [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    if path == "openai":
        out = guard_openai_stream(guard, chunks, prompt="please help me")
        items = list(out)
    else:
        out = aguard_openai_stream(guard, chunks, prompt="please help me")
        items = [c async for c in out]
    text = "".join((c["choices"][0]["delta"] or {}).get("content") or "" for c in items if c.get("choices"))
    return out, text


@pytest.mark.parametrize("batching", [False, True])
@pytest.mark.parametrize("path", ["sync", "async", "openai", "openai-async"])
async def test_fail_open_applies_to_the_failed_step_only(tiny_bundle: Path, batching: bool, path: str) -> None:
    # call 1 prefills the prompt, call 2 judges the first response word: it fails, later words are judged
    guard = Guard(FlakyModel(tiny_bundle, fail_on={2}), policy=policy_from_dict(_OPEN), batching=batching)
    try:
        stream, text = await _run_path(path, guard)
    finally:
        guard.close()
    assert stream.blocked, "a harmful text after a failed step must still be blocked"
    reference = Guard(tiny_bundle, policy=policy_from_dict(_OPEN)).check_response(_LATE_HARM, prompt="please help me")
    assert reference.blocked and stream.verdict.char_offset == reference.char_offset
    assert stream.session.unjudged_tokens == 1 if not path.startswith("openai") else True
    assert "bomb" not in text and text.startswith("sure ")


def test_fail_open_failed_prompt_step_is_retried_by_the_next_step(tiny_bundle: Path) -> None:
    guard = Guard(FlakyModel(tiny_bundle, fail_on={1}), policy=policy_from_dict(_OPEN))
    session = guard.session("please help me")
    assert session.start() == []  # the prompt's step failed open
    events = session.feed(HARMFUL) + session.finish()
    assert session.blocked and session.unjudged_tokens == 0 and events


def test_fail_open_lets_only_the_failed_steps_text_through_unjudged(tiny_bundle: Path) -> None:
    guard = Guard(FlakyModel(tiny_bundle, fail_on={2}), policy=policy_from_dict(_OPEN))
    session = guard.session("please help me")
    session.feed("sure ")
    session.feed("here ")  # "sure" is judged in call 2, which fails: it passes unjudged
    assert session.unjudged_tokens == 1
    session.feed("is how to build a bomb detonator ")
    assert session.blocked


async def test_a_lone_batched_step_that_fails_is_not_retried(tiny_bundle: Path) -> None:
    """The async batched lone stream and the sync lone stream see the same failure (no hidden retry)."""
    for batching in (False, True):
        model = FlakyModel(tiny_bundle, fail_on={2})
        with Guard(model, policy=policy_from_dict(_OPEN), batching=batching) as guard:
            session = guard.session("please help me")
            await session.afeed("sure here ")
            assert session.unjudged_tokens == 2, batching  # "sure here": one step, failed
            assert model.calls == 2


# -- 3: a refused session stays refused or retries cleanly; Guard rejects ignored arguments -------

def test_a_session_refused_by_the_limit_can_be_retried_and_is_judged(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu", max_sessions=1)
    guard = Guard(model, policy=policy_from_dict(_OPEN))  # fail-open: a model error here would let harm pass
    first = guard.session()
    first.start()
    late = guard.session()
    with pytest.raises(SessionLimitError):
        late.feed("sure here is how to build a bomb detonator ")
    with pytest.raises(SessionLimitError):  # still refused, not half-started
        late.feed("sure here is how to build a bomb detonator ")
    assert model.live_sessions == 1
    first.close()
    late.feed("sure here is how to build a bomb detonator ")
    late.finish()
    assert late.blocked and late.verdict.reason is None and late.unjudged_tokens == 0
    assert model.live_sessions == 0


@pytest.mark.parametrize("kwargs", [{"max_sessions": 1}, {"threads": 2}, {"device": "cpu"}])
def test_guard_rejects_model_arguments_it_would_ignore(tiny_model: StreamModel, kwargs: dict[str, Any]) -> None:
    with pytest.raises(GuardConfigError, match=next(iter(kwargs))) as info:
        Guard(tiny_model, **kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, GuardkitError)


# -- 4: a with_policy() child does not own the batcher ----------------------------------------

def test_closing_a_with_policy_child_leaves_the_parent_batching(tiny_bundle: Path) -> None:
    parent = Guard(tiny_bundle, batching=True)
    child = parent.with_policy("strict")
    assert child.check_response(HARMFUL).blocked
    child.close()
    stream = parent.stream(words(HARMFUL))
    list(stream)
    assert stream.blocked and stream.verdict.reason is None
    assert child.check_response(BENIGN).action == "allow"  # the child still shares the running batcher
    parent.close()
    with pytest.raises(SchedulerClosedError) as info:  # the owner closed it: a guardkit error, one clear line
        list(parent.stream(words(BENIGN)))
    assert isinstance(info.value, GuardkitError) and isinstance(info.value, RuntimeError)


# -- 5: the async driver closes the iterator it reads ---------------------------------------------

class SdkStream:
    """An SDK-style response: ``__aiter__`` returns a separate iterator; closing the object closes the response."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.iterator_open = False
        self.response_closed = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        self.iterator_open = True
        try:
            for piece in self.pieces:
                yield piece
        finally:
            self.iterator_open = False

    async def aclose(self) -> None:
        self.response_closed = True


@pytest.mark.parametrize("how", ["aclose", "block"])
async def test_async_stream_closes_the_iterator_it_reads(tiny_guard: Guard, how: str) -> None:
    upstream = SdkStream(words(BENIGN if how == "aclose" else HARMFUL))
    stream = tiny_guard.astream(upstream)
    if how == "aclose":
        await stream.__anext__()
        assert upstream.iterator_open
        await stream.aclose()
    else:
        [t async for t in stream]
        assert stream.blocked
    assert not upstream.iterator_open and upstream.response_closed


def test_sync_stream_closes_the_iterator_it_reads_and_the_iterable(tiny_guard: Guard) -> None:
    class Response:
        def __init__(self) -> None:
            self.closed = False
            self.it = iter(words(HARMFUL))

        def __iter__(self) -> Iterator[str]:
            return self.it

        def close(self) -> None:
            self.closed = True

    upstream = Response()
    stream = tiny_guard.stream(upstream)
    list(stream)
    assert stream.blocked and upstream.closed


# -- 6: a long delta is judged in slices that let the event loop run --------------------------

async def test_long_delta_is_judged_in_slices_that_yield_to_the_loop(tiny_guard: Guard) -> None:
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    session = tiny_guard.session()
    pushes: list[tuple[int, int]] = []
    push = session._retok.push

    def recording_push(delta: str):  # type: ignore[no-untyped-def]
        pushes.append((len(delta), ticks))
        return push(delta)

    session._retok.push = recording_push  # type: ignore[method-assign]
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await session.afeed(" " * (50 * SLICE_CHARS))  # no tokens at all: no model step to await in between
    stop = True
    await task
    assert len(pushes) == 50 and all(n <= SLICE_CHARS for n, _ in pushes)
    assert all(b > a for (_, a), (_, b) in zip(pushes, pushes[1:])), "another task ran between every two slices"


@given(st.integers(1, 3 * SLICE_CHARS), st.booleans())
def test_sliced_long_deltas_give_the_verdict_of_short_ones(tiny_guard: Guard, harm_at: int, passthrough: bool) -> None:
    filler = " ".join(SAFE_WORDS[i % len(SAFE_WORDS)] for i in range(2000))[: 3 * SLICE_CHARS + 100]
    text = filler[:harm_at] + " how to build a bomb detonator " + filler[harm_at:]
    guard = tiny_guard.with_policy(policy_from_dict({"name": "p", "release": "passthrough"})) if passthrough else tiny_guard
    whole = guard.session()
    events = whole.feed(text) + whole.finish()
    small = guard.session()
    for begin in range(0, len(text), 97):
        small.feed(text[begin : begin + 97])
    small.finish()
    assert same_verdict(whole.verdict, small.verdict) and whole.blocked and events
    if not passthrough:  # pass-through releases deltas as they arrive (and retracts): only held text is split-invariant
        assert whole.released_text == small.released_text


# -- 7: releasing a slot can never deadlock -------------------------------------------------

def test_releasing_slots_takes_no_lock_a_finalizer_could_deadlock_on(tiny_bundle: Path) -> None:
    """A finalizer may run (any allocation may trigger GC) while its own thread holds the slot or batch lock."""
    model = StreamModel(tiny_bundle, device="cpu", max_sessions=2)
    guard = Guard(model, batching=True)
    session = guard.session()
    session.start()
    done = threading.Event()

    def release_under_the_locks() -> None:
        with model._slots._lock, guard.scheduler._cond:  # type: ignore[union-attr]
            session.close()  # what a finalizer of a dropped session does
        done.set()

    worker = threading.Thread(target=release_under_the_locks, daemon=True)
    worker.start()
    worker.join(timeout=30)  # a deadlock never ends; this only bounds the test
    assert done.is_set()
    assert model.live_sessions == 0 and guard.scheduler.active_sessions == 0  # type: ignore[union-attr]
    guard.close()


# -- 8: a None delta is a TypeError, as documented ---------------------------------------------

def test_none_delta_raises_type_error(tiny_guard: Guard) -> None:
    with pytest.raises(TypeError, match="NoneType"):
        list(tiny_guard.stream(["ok ", None]))  # type: ignore[list-item]


async def test_async_none_delta_raises_type_error(tiny_guard: Guard) -> None:
    with pytest.raises(TypeError, match="NoneType"):
        async for _ in tiny_guard.astream(["ok ", None]):  # type: ignore[list-item]
            pass


# -- 9: an idle session keeps only its own rows of a batch's output ---------------------------

async def test_an_idle_session_keeps_only_its_own_rows_of_a_batch(tiny_bundle: Path) -> None:
    guard = Guard(tiny_bundle, batching=True, max_wait_ms=1000, max_delay_ms=5000)
    try:
        sessions = [guard.session("please help me") for _ in range(8)]
        await asyncio.gather(*(s.astart() for s in sessions))
        await asyncio.gather(*(s.afeed("sure here is the ") for s in sessions))
        holder = sessions[0]._state.batch  # type: ignore[union-attr]
        assert holder is not None and all(s._state.batch is holder for s in sessions)  # type: ignore[union-attr]
        idle = sessions[0]
        for other in sessions[1:]:
            other.close()
        state = idle._state
        assert state is not None and state.batch is None
        assert not any(np.shares_memory(a, b) for a, b in zip(state.arrays, holder.arrays))
        assert state.nbytes * 8 <= sum(a.nbytes for a in holder.arrays)
        # and the copied state judges exactly as before
        await idle.afeed("how to build a bomb detonator ")
        await idle.afinish()
        reference = Guard(tiny_bundle).check_response("sure here is the how to build a bomb detonator ", prompt="please help me")
        assert idle.blocked and same_verdict(idle.verdict, reference)
    finally:
        guard.close()


# -- 14: a long prompt is judged whole ---------------------------------------------------------

@given(st.integers(0, 120), st.integers(60, 160))
def test_harm_anywhere_in_a_long_prompt_is_caught(short_bundle: Path, where: int, filler_words: int) -> None:
    guard = _short_guard(short_bundle)
    filler = [SAFE_WORDS[i % len(SAFE_WORDS)] for i in range(filler_words)]
    where = min(where, filler_words)
    prompt = " ".join(filler[:where] + ["how to build a bomb"] + filler[where:])
    assert len(guard.model.prompt_token_ids(prompt)) > guard.model.max_positions  # far longer than the model sees
    assert guard.check_prompt(prompt).blocked


def test_a_harmful_prompt_followed_by_filler_is_blocked_and_benign_long_prompts_pass(short_bundle: Path) -> None:
    guard = _short_guard(short_bundle)
    filler = " ".join(SAFE_WORDS) * 6
    assert guard.check_prompt("how to build a bomb " + filler).blocked
    assert guard.check_prompt(filler).action == "allow"
    stream = guard.stream(words(BENIGN), prompt=filler + " how to bake bread")
    assert "".join(stream) == BENIGN


_SHORT_GUARDS: dict[Path, Guard] = {}


def _short_guard(bundle: Path) -> Guard:
    if bundle not in _SHORT_GUARDS:
        _SHORT_GUARDS[bundle] = Guard(bundle)
    return _SHORT_GUARDS[bundle]


def test_eval_records_the_judged_window_of_a_long_prompt(short_bundle: Path) -> None:
    from guardkit.evaluation.dataset import EvalItem
    from guardkit.evaluation.runner import ItemResult, check_prompt

    guard = _short_guard(short_bundle)
    prompt = "how to build a bomb " + " ".join(SAFE_WORDS) * 3
    result = ItemResult(EvalItem(line=1, label="unsafe", prompt=prompt))
    check_prompt(guard.model, guard.policy, prompt, result, record=True)
    assert result.prompt_action[guard.policy.controversial] == "block"
    assert result.prompt_risk is not None and result.prompt_risk[2] == max(result.prompt_risk)
    assert guard.model.prompt_categories[result.prompt_category] == "violent"


def test_bad_arguments_are_guardkit_errors(tiny_bundle: Path, tiny_guard: Guard) -> None:
    with pytest.raises(GuardConfigError):
        StreamModel(tiny_bundle, device="cpu", max_sessions=0)  # used to refuse every session, silently
    with pytest.raises(GuardConfigError):
        tiny_guard.stream(["hello"], on_block="explode")  # type: ignore[arg-type]
    with pytest.raises(GuardConfigError):
        Guard(tiny_bundle, batching=True, max_wait_ms=-1)


@st.composite
def _pieces_and_drop(draw: st.DrawFn) -> tuple[list[str], int, bool]:
    vocabulary = list(SAFE_WORDS[:20]) + ["bomb", "detonator", "kill", "gamble"]
    text = " ".join(draw(st.lists(st.sampled_from(vocabulary), min_size=1, max_size=30)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=8)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)]) if text[a:b]]
    return pieces, draw(st.integers(0, 6)), draw(st.booleans())


@given(_pieces_and_drop())
def test_a_stream_dropped_at_any_point_frees_everything_at_once(tiny_bundle: Path, case: tuple[list[str], int, bool]) -> None:
    """Whatever the text, split and drop point, an unclosed stream frees its slot and upstream when dropped (no GC)."""
    pieces, take, use_async = case
    guard = _capped_guard(tiny_bundle)
    upstreams = Upstreams()

    async def consume_async() -> None:
        stream = guard.astream(upstreams.asyn(pieces), prompt="please help me")
        async for i, _ in _aenumerate(stream):
            if i >= take:
                break

    def consume_sync() -> None:
        stream = guard.stream(upstreams.sync(pieces), prompt="please help me")
        for i, _ in enumerate(stream):
            if i >= take:
                break

    gc.disable()
    try:
        if use_async:
            async def run() -> None:
                await consume_async()
                for _ in range(20):
                    await asyncio.sleep(0)

            asyncio.run(run())
        else:
            consume_sync()
        assert guard.model.live_sessions == 0 and upstreams.open == 0
    finally:
        gc.enable()


async def _aenumerate(stream: Any) -> AsyncIterator[tuple[int, str]]:
    i = 0
    async for item in stream:
        yield i, item
        i += 1


_CAPPED: dict[Path, Guard] = {}


def _capped_guard(bundle: Path) -> Guard:
    if bundle not in _CAPPED:
        _CAPPED[bundle] = Guard(bundle, max_sessions=1)
    return _CAPPED[bundle]


def test_a_long_prompt_that_is_only_context_costs_one_prefill(short_bundle: Path) -> None:
    guard = _short_guard(short_bundle)
    benign = " ".join(SAFE_WORDS) * 3
    judged = guard.session(benign)
    judged.start()
    assert not judged.blocked and judged.model_calls > 2  # every window judged
    harmful = "how to build a bomb " + benign
    early = guard.session(harmful)
    early.start()
    assert early.blocked and early.model_calls == 1  # the first window blocks: the rest cannot change that
    context = guard.with_policy(policy_from_dict({"name": "ctx", "prompt": {"action": "allow"}})).session(harmful)
    context.start()
    assert context.model_calls == 1 and not context.blocked
    assert guard.check_response(BENIGN, prompt=harmful).action == "allow"


def test_an_upstream_whose_close_raises_still_frees_the_session(tiny_bundle: Path) -> None:
    guard = _capped_guard(tiny_bundle)

    class Broken:
        def __iter__(self) -> Iterator[str]:
            return iter(words(BENIGN))

        def close(self) -> None:
            raise OSError("socket already gone")

    stream = guard.stream(Broken())
    next(stream)
    with pytest.raises(OSError):
        stream.close()
    assert guard.model.live_sessions == 0


async def test_an_idle_session_keeps_only_its_rows_while_the_others_go_on(tiny_bundle: Path) -> None:
    guard = Guard(tiny_bundle, batching=True, max_wait_ms=100, max_delay_ms=5000)  # the busy batch waits out one gap
    try:
        sessions = [guard.session("please help me") for _ in range(8)]
        await asyncio.gather(*(s.astart() for s in sessions))
        await asyncio.gather(*(s.afeed("sure here is the ") for s in sessions))
        holder = sessions[0]._state.batch  # type: ignore[union-attr]
        idle, busy = sessions[0], sessions[1:]
        assert holder is not None and idle._state.batch is holder  # type: ignore[union-attr]
        await asyncio.gather(*(s.afeed("recipe for bread ") for s in busy))  # one batch without the idle session
        assert all(s._state.batch is not holder for s in busy)  # type: ignore[union-attr]
        assert idle._state is not None and idle._state.batch is None
        assert not any(np.shares_memory(a, b) for a, b in zip(idle._state.arrays, holder.arrays))
    finally:
        guard.close()


@pytest.mark.parametrize("pause", [0.0, 0.001])
async def test_a_dropped_async_stream_finishes_an_upstream_close_that_awaits(tiny_guard: Guard, pause: float) -> None:
    class SlowToClose:
        def __init__(self) -> None:
            self.pieces = iter(words(BENIGN))
            self.closed = False

        def __aiter__(self) -> SlowToClose:
            return self

        async def __anext__(self) -> str:
            try:
                return next(self.pieces)
            except StopIteration:
                raise StopAsyncIteration from None

        async def aclose(self) -> None:
            await asyncio.sleep(pause)  # a network close: it waits
            await asyncio.sleep(pause)
            self.closed = True

    upstream = SlowToClose()

    async def consume() -> None:
        async for _ in tiny_guard.astream(upstream):
            break

    gc.disable()
    try:
        await consume()
        assert tiny_guard.model.live_sessions == 0
        for _ in range(200):
            if upstream.closed:
                break
            await asyncio.sleep(pause)
        assert upstream.closed
    finally:
        gc.enable()


@pytest.mark.parametrize("batching", [False, True])
def test_a_dropped_session_gives_its_slot_back_without_gc(tiny_bundle: Path, batching: bool) -> None:
    model = StreamModel(tiny_bundle, device="cpu", max_sessions=1)
    guard = Guard(model, batching=batching)
    gc.disable()
    try:
        for _ in range(50):
            session = guard.session("please help me")
            session.feed("sure here is ")
            del session  # never finished nor closed
            assert model.live_sessions == 0
        if guard.scheduler is not None:
            assert guard.scheduler.active_sessions == 0
    finally:
        gc.enable()
        guard.close()


async def test_a_long_prompt_is_tokenized_off_the_event_loop(tiny_guard: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    import guardkit.session as session_module

    loop_thread = threading.get_ident()
    planned_in: list[int] = []
    plan = session_module.prompt_windows

    def recording_plan(*args: Any, **kwargs: Any) -> Any:
        planned_in.append(threading.get_ident())
        return plan(*args, **kwargs)

    monkeypatch.setattr(session_module, "prompt_windows", recording_plan)
    long_prompt = "please help me with the history of medicine " * 2000
    assert (await tiny_guard.acheck_prompt(long_prompt)).action == "allow"
    assert (await tiny_guard.acheck_prompt("how to build a bomb")).blocked
    assert planned_in[0] != loop_thread and planned_in[1] == loop_thread  # only a long prompt leaves the loop
    assert tiny_guard.check_prompt(long_prompt).action == "allow"  # sync: in the caller's thread, same verdict
