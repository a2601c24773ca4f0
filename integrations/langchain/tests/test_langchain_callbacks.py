"""GuardkitCallbackHandler / AsyncGuardkitCallbackHandler against real langchain-core models."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import UUID

import pytest
from guardkit import Guard, StreamBlocked
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_guardkit import AsyncGuardkitCallbackHandler, GuardkitCallbackHandler
from lc_support import BENIGN, HARM_AT, HARMFUL, SAFE_PROMPT, UNSAFE_PROMPT, counting_model, n_chunks


class Released:
    """An on_release sink: the judged text per run, what a callback-driven UI would show."""

    def __init__(self) -> None:
        self.by_run: dict[UUID, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, text: str, run_id: UUID) -> None:
        with self._lock:
            self.by_run.setdefault(run_id, []).append(text)

    @property
    def text(self) -> str:
        assert len(self.by_run) <= 1
        return "".join(next(iter(self.by_run.values()), []))


def _consume(stream: Any) -> tuple[list[str], BaseException | None]:
    raw: list[str] = []
    try:
        for chunk in stream:
            raw.append(chunk.content)
    except StreamBlocked as exc:
        return raw, exc
    return raw, None


async def _aconsume(stream: Any) -> tuple[list[str], BaseException | None]:
    raw: list[str] = []
    try:
        async for chunk in stream:
            raw.append(chunk.content)
    except StreamBlocked as exc:
        return raw, exc
    return raw, None


def test_handlers_raise_errors() -> None:
    assert GuardkitCallbackHandler.raise_error is True
    assert AsyncGuardkitCallbackHandler.raise_error is True


def test_sync_handler_stops_harmful_stream(lc_guard: Guard) -> None:
    sink = Released()
    handler = GuardkitCallbackHandler(lc_guard, on_release=sink)
    model = counting_model(HARMFUL)
    raw, exc = _consume(model.stream([HumanMessage(SAFE_PROMPT)], config={"callbacks": [handler]}))

    assert isinstance(exc, StreamBlocked)
    assert exc.verdict.char_offset == HARM_AT and exc.verdict.category == "violent"
    # what the guard released (the on_release channel) stops before the harm
    assert sink.text == HARMFUL[:HARM_AT]
    assert exc.released_text == HARMFUL[:HARM_AT]
    # the raw stream: the chunk that triggered the block never reached the consumer, and the
    # provider was pulled no further. (Chunks before it did reach it: a callback cannot withhold.)
    raw_text = "".join(raw)
    assert HARMFUL.startswith(raw_text) and "and" not in raw_text
    assert model.log.produced == len(raw) + 1 < n_chunks(HARMFUL)
    assert model.log.closed
    assert handler.active_runs == 0


def test_sync_handler_passes_benign_stream(lc_guard: Guard) -> None:
    sink = Released()
    handler = GuardkitCallbackHandler(lc_guard, on_release=sink)
    model = counting_model(BENIGN)
    raw, exc = _consume(model.stream(SAFE_PROMPT, config={"callbacks": [handler]}))
    reference = [c.content for c in counting_model(BENIGN).stream(SAFE_PROMPT)]
    assert exc is None
    assert raw == reference  # token for token
    assert sink.text == BENIGN
    assert handler.active_runs == 0


def test_sync_handler_refuses_unsafe_prompt_before_the_model(lc_guard: Guard) -> None:
    handler = GuardkitCallbackHandler(lc_guard)
    model = counting_model(BENIGN)
    with pytest.raises(StreamBlocked) as info:
        for _ in model.stream([SystemMessage("be helpful"), HumanMessage(UNSAFE_PROMPT)], config={"callbacks": [handler]}):
            pass
    assert info.value.verdict.source == "prompt"
    assert model.log.generated == 0 and model.log.produced == 0
    assert next(model.messages) == BENIGN  # the scripted reply was never taken
    assert handler.active_runs == 0


def test_sync_handler_judges_non_streaming_invoke_at_end(lc_guard: Guard) -> None:
    handler = GuardkitCallbackHandler(lc_guard)
    with pytest.raises(StreamBlocked) as info:
        counting_model(HARMFUL).invoke(SAFE_PROMPT, config={"callbacks": [handler]})
    assert info.value.verdict.char_offset == HARM_AT
    assert counting_model(BENIGN).invoke(SAFE_PROMPT, config={"callbacks": [handler]}).content == BENIGN
    assert handler.active_runs == 0


def test_sync_handler_also_stops_async_runs(lc_guard: Guard) -> None:
    handler = GuardkitCallbackHandler(lc_guard)
    model = counting_model(HARMFUL)
    raw, exc = asyncio.run(_aconsume(model.astream(SAFE_PROMPT, config={"callbacks": [handler]})))
    assert isinstance(exc, StreamBlocked)
    assert model.log.produced < n_chunks(HARMFUL)


async def test_async_handler_stops_harmful_stream(lc_guard: Guard) -> None:
    released: list[str] = []

    async def sink(text: str, run_id: UUID) -> None:
        released.append(text)

    handler = AsyncGuardkitCallbackHandler(lc_guard, on_release=sink)
    model = counting_model(HARMFUL)
    raw, exc = await _aconsume(model.astream([HumanMessage(SAFE_PROMPT)], config={"callbacks": [handler]}))

    assert isinstance(exc, StreamBlocked)
    assert exc.verdict.char_offset == HARM_AT
    assert "".join(released) == HARMFUL[:HARM_AT]
    raw_text = "".join(raw)
    assert HARMFUL.startswith(raw_text) and "and" not in raw_text
    assert model.log.produced < n_chunks(HARMFUL)
    assert handler.active_runs == 0


async def test_async_handler_passes_benign_stream(lc_guard: Guard) -> None:
    released: list[str] = []
    handler = AsyncGuardkitCallbackHandler(lc_guard, on_release=lambda text, run_id: released.append(text))
    raw, exc = await _aconsume(counting_model(BENIGN).astream(SAFE_PROMPT, config={"callbacks": [handler]}))
    assert exc is None
    assert raw == [c.content for c in counting_model(BENIGN).stream(SAFE_PROMPT)]
    assert "".join(released) == BENIGN
    assert handler.active_runs == 0


async def test_async_handler_refuses_unsafe_prompt(lc_guard: Guard) -> None:
    handler = AsyncGuardkitCallbackHandler(lc_guard)
    model = counting_model(BENIGN)
    with pytest.raises(StreamBlocked):
        await model.ainvoke(UNSAFE_PROMPT, config={"callbacks": [handler]})
    assert model.log.generated == 0
    assert handler.active_runs == 0


def test_one_sync_handler_serves_concurrent_threads(lc_guard: Guard) -> None:
    sink = Released()
    handler = GuardkitCallbackHandler(lc_guard, on_release=sink)
    replies = [HARMFUL if i % 2 else BENIGN for i in range(8)]
    outcomes: dict[int, tuple[list[str], BaseException | None]] = {}
    barrier = threading.Barrier(len(replies))

    def worker(i: int) -> None:
        model = counting_model(replies[i])
        barrier.wait()
        outcomes[i] = _consume(model.stream(SAFE_PROMPT, config={"callbacks": [handler], "run_name": f"run{i}"}))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(replies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert len(outcomes) == len(replies)
    for i, reply in enumerate(replies):
        raw, exc = outcomes[i]
        if reply is HARMFUL:
            assert isinstance(exc, StreamBlocked) and exc.released_text == HARMFUL[:HARM_AT]
        else:
            assert exc is None and "".join(raw) == BENIGN
    released = sorted("".join(parts) for parts in sink.by_run.values())
    assert released == sorted(HARMFUL[:HARM_AT] if r is HARMFUL else BENIGN for r in replies)
    assert handler.active_runs == 0


async def test_one_async_handler_serves_gathered_runs(lc_guard: Guard) -> None:
    sink = Released()
    handler = AsyncGuardkitCallbackHandler(lc_guard, on_release=sink)
    replies = [HARMFUL if i % 2 else BENIGN for i in range(6)]
    outcomes = await asyncio.gather(*(_aconsume(counting_model(r).astream(SAFE_PROMPT, config={"callbacks": [handler]})) for r in replies))
    for reply, (raw, exc) in zip(replies, outcomes):
        if reply is HARMFUL:
            assert isinstance(exc, StreamBlocked) and exc.released_text == HARMFUL[:HARM_AT]
        else:
            assert exc is None and "".join(raw) == BENIGN
    assert sorted("".join(p) for p in sink.by_run.values()) == sorted(HARMFUL[:HARM_AT] if r is HARMFUL else BENIGN for r in replies)
    assert handler.active_runs == 0


def test_async_handler_cannot_stop_a_sync_run(lc_guard: Guard) -> None:
    """Documents the LangChain limit the README states: use the sync handler for sync calls.

    LangChain runs an async handler's coroutines of a sync run in a private event loop and logs
    and swallows their exceptions even with ``raise_error``; the guard still judges (on_release
    gets only judged text) but cannot stop the stream.
    """
    released: list[str] = []
    handler = AsyncGuardkitCallbackHandler(lc_guard, on_release=lambda text, run_id: released.append(text))
    raw, exc = _consume(counting_model(HARMFUL).stream(SAFE_PROMPT, config={"callbacks": [handler]}))
    assert exc is None and "".join(raw) == HARMFUL  # not stopped
    assert "".join(released) == HARMFUL[:HARM_AT]


def test_sync_handler_in_a_chain_checks_the_rendered_human_message(lc_guard: Guard) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("human", "{question}")])
    handler = GuardkitCallbackHandler(lc_guard)

    model = counting_model(BENIGN)
    with pytest.raises(StreamBlocked) as info:
        (prompt | model | StrOutputParser()).invoke({"question": UNSAFE_PROMPT}, config={"callbacks": [handler]})
    assert info.value.verdict.source == "prompt" and model.log.generated == 0

    model = counting_model(HARMFUL)
    received: list[str] = []
    with pytest.raises(StreamBlocked):
        for text in (prompt | model | StrOutputParser()).stream({"question": SAFE_PROMPT}, config={"callbacks": [handler]}):
            received.append(text)
    assert HARMFUL.startswith("".join(received)) and model.log.produced < n_chunks(HARMFUL)
    assert handler.active_runs == 0
