"""GuardkitRunnable / guard_runnable against real langchain-core Runnables."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest
from guardkit import Guard, StreamBlocked
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from langchain_guardkit import GuardkitRunnable, guard_runnable
from lc_support import BENIGN, HARM_AT, HARMFUL, SAFE_PROMPT, UNSAFE_PROMPT, counting_model, n_chunks

# the tiny model blocks HARMFUL when the whitespace after "detonator" arrives
PULLED_AT_BLOCK = n_chunks(HARMFUL[: HARMFUL.index("detonator") + len("detonator ")]) - 1


def _text(chunks: list[Any]) -> str:
    return "".join(c if isinstance(c, str) else c.content for c in chunks)


def _assert_stopped(text: str, message: str) -> None:
    assert text == HARMFUL[:HARM_AT] + message
    assert "bomb" not in text and "detonator" not in text


def _prompt_message(guard: Guard) -> str:
    return guard.policy.prompt.message


def _block_message(guard: Guard) -> str:
    """What follows released text once a reply is blocked: the policy's separator, then its message."""
    return guard.policy.on_block.separator + guard.policy.on_block.message


# -- stream ------------------------------------------------------------------
def test_stream_stops_harmful_reply_and_the_upstream(lc_guard: Guard) -> None:
    model = counting_model(HARMFUL)
    chunks = list(guard_runnable(model, lc_guard).stream(SAFE_PROMPT))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    _assert_stopped(_text(chunks), _block_message(lc_guard))
    last = chunks[-1]
    assert last.response_metadata["guardkit"]["action"] == "block"
    assert last.response_metadata["guardkit"]["char_offset"] == HARM_AT
    assert getattr(last, "chunk_position", "last") == "last"  # langchain-core >= 1.0 has the field
    assert len({c.id for c in chunks}) == 1  # the upstream message id throughout
    assert model.log.produced == PULLED_AT_BLOCK < n_chunks(HARMFUL)
    assert model.log.closed


def test_stream_passes_benign_reply_token_for_token(lc_guard: Guard) -> None:
    guarded = list(guard_runnable(counting_model(BENIGN), lc_guard).stream(SAFE_PROMPT))
    reference = list(counting_model(BENIGN).stream(SAFE_PROMPT))
    assert [c.content for c in guarded] == [c.content for c in reference]
    assert [getattr(c, "chunk_position", None) for c in guarded] == [getattr(c, "chunk_position", None) for c in reference]


def test_stream_on_block_raise(lc_guard: Guard) -> None:
    received: list[Any] = []
    with pytest.raises(StreamBlocked) as info:
        for chunk in guard_runnable(counting_model(HARMFUL), lc_guard, on_block="raise").stream(SAFE_PROMPT):
            received.append(chunk)
    assert _text(received) == info.value.released_text == HARMFUL[:HARM_AT]


def test_consumer_stopping_early_closes_the_upstream(lc_guard: Guard) -> None:
    model = counting_model(BENIGN)
    stream = guard_runnable(model, lc_guard).stream(SAFE_PROMPT)
    next(stream)
    stream.close()
    assert model.log.closed and model.log.produced < n_chunks(BENIGN)


# -- astream -----------------------------------------------------------------
async def test_astream_stops_harmful_reply_and_the_upstream(lc_guard: Guard) -> None:
    model = counting_model(HARMFUL)
    chunks = [c async for c in guard_runnable(model, lc_guard).astream(SAFE_PROMPT)]
    _assert_stopped(_text(chunks), _block_message(lc_guard))
    assert chunks[-1].response_metadata["guardkit"]["action"] == "block"
    assert model.log.produced <= PULLED_AT_BLOCK + 1 < n_chunks(HARMFUL)  # +1: a chunk in flight in the executor


async def test_astream_passes_benign_reply_token_for_token(lc_guard: Guard) -> None:
    guarded = [c.content async for c in guard_runnable(counting_model(BENIGN), lc_guard).astream(SAFE_PROMPT)]
    assert guarded == [c.content for c in counting_model(BENIGN).stream(SAFE_PROMPT)]


async def test_astream_generator_upstream_is_pulled_no_further(lc_guard: Guard) -> None:
    pulled: list[str] = []

    async def tokens(_: Any) -> Any:
        for token in HARMFUL.split(" "):
            pulled.append(token)
            yield AIMessageChunk(content=token + " ")

    chunks = [c async for c in guard_runnable(RunnableGenerator(tokens), lc_guard).astream(SAFE_PROMPT)]
    _assert_stopped(_text(chunks), _block_message(lc_guard))
    assert pulled == HARMFUL.split(" ")[: pulled.index("detonator") + 1]
    assert "and" not in pulled


# -- invoke / ainvoke / batch / abatch ---------------------------------------------
def test_invoke_returns_released_text_plus_message(lc_guard: Guard) -> None:
    model = counting_model(HARMFUL)
    result = guard_runnable(model, lc_guard).invoke([HumanMessage(SAFE_PROMPT)])
    assert isinstance(result, AIMessage)
    _assert_stopped(result.content, _block_message(lc_guard))
    assert result.response_metadata["guardkit"]["category"] == "violent"
    assert model.log.produced == PULLED_AT_BLOCK


def test_invoke_benign_equals_plain_invoke(lc_guard: Guard) -> None:
    result = guard_runnable(counting_model(BENIGN), lc_guard).invoke(SAFE_PROMPT)
    assert isinstance(result, AIMessage) and result.content == BENIGN
    assert "guardkit" not in result.response_metadata


def test_invoke_on_block_raise(lc_guard: Guard) -> None:
    with pytest.raises(StreamBlocked) as info:
        guard_runnable(counting_model(HARMFUL), lc_guard, on_block="raise").invoke(SAFE_PROMPT)
    assert info.value.released_text == HARMFUL[:HARM_AT]


async def test_ainvoke(lc_guard: Guard) -> None:
    result = await guard_runnable(counting_model(HARMFUL), lc_guard).ainvoke(SAFE_PROMPT)
    _assert_stopped(result.content, _block_message(lc_guard))
    assert (await guard_runnable(counting_model(BENIGN), lc_guard).ainvoke(SAFE_PROMPT)).content == BENIGN


def test_batch(lc_guard: Guard) -> None:
    model = counting_model(HARMFUL, BENIGN, HARMFUL)
    results = guard_runnable(model, lc_guard).batch([SAFE_PROMPT, SAFE_PROMPT, SAFE_PROMPT, UNSAFE_PROMPT], config={"max_concurrency": 1})
    _assert_stopped(results[0].content, _block_message(lc_guard))
    assert results[1].content == BENIGN
    _assert_stopped(results[2].content, _block_message(lc_guard))
    assert results[3].content == _prompt_message(lc_guard)
    assert model.log.generated == 3  # the unsafe prompt never reached the model


async def test_abatch(lc_guard: Guard) -> None:
    guarded = guard_runnable(counting_model(HARMFUL, BENIGN), lc_guard)
    results = await guarded.abatch([SAFE_PROMPT, SAFE_PROMPT], config={"max_concurrency": 1})
    _assert_stopped(results[0].content, _block_message(lc_guard))
    assert results[1].content == BENIGN


def test_concurrent_batch_of_independent_models(lc_guard: Guard) -> None:
    # a Runnable that picks the scripted reply from the input, so concurrency cannot reorder replies
    def reply_for(inputs: Iterator[dict[str, str]]) -> Iterator[AIMessageChunk]:
        for inp in inputs:
            for token in inp["reply"].split(" "):
                yield AIMessageChunk(content=token + " ")

    def make(reply: str) -> dict[str, str]:
        return {"question": SAFE_PROMPT, "reply": reply}

    guarded = guard_runnable(RunnableGenerator(reply_for), lc_guard)
    replies = [HARMFUL if i % 2 else BENIGN for i in range(8)]
    results = guarded.batch([make(r) for r in replies], config={"max_concurrency": 4})
    for reply, result in zip(replies, results):
        if reply is HARMFUL:
            _assert_stopped(result.content, _block_message(lc_guard))
        else:
            assert result.content == BENIGN + " "


# -- prompts -------------------------------------------------------------------
def test_unsafe_prompt_refused_before_the_model_is_called(lc_guard: Guard) -> None:
    model = counting_model(BENIGN)
    chunks = list(guard_runnable(model, lc_guard).stream([("system", "be helpful"), ("human", UNSAFE_PROMPT)]))
    assert _text(chunks) == _prompt_message(lc_guard)
    assert chunks[-1].response_metadata["guardkit"]["source"] == "prompt"
    assert model.log.generated == 0
    assert next(model.messages) == BENIGN


async def test_unsafe_prompt_refused_async_and_raise(lc_guard: Guard) -> None:
    model = counting_model(BENIGN)
    with pytest.raises(StreamBlocked) as info:
        await guard_runnable(model, lc_guard, on_block="raise").ainvoke(UNSAFE_PROMPT)
    assert info.value.verdict.source == "prompt"
    assert model.log.generated == 0


# -- chains and strings ----------------------------------------------------------
def _chain(model: Runnable[Any, Any]) -> Runnable[Any, Any]:
    prompt = ChatPromptTemplate.from_messages([("system", "You are a helpful assistant."), ("human", "{question}")])
    return prompt | model | StrOutputParser()


def test_string_chain_stream_and_invoke(lc_guard: Guard) -> None:
    model = counting_model(HARMFUL, BENIGN)
    guarded = guard_runnable(_chain(model), lc_guard)
    chunks = list(guarded.stream({"question": SAFE_PROMPT}))
    assert all(isinstance(c, str) for c in chunks)
    _assert_stopped("".join(chunks), _block_message(lc_guard))
    # LangChain drains a chain's steps when its stream is closed; the guard's stopper callback
    # halts the model at its next token, so one chunk more is produced (and discarded) at most
    assert model.log.produced <= PULLED_AT_BLOCK + 1 < n_chunks(HARMFUL)
    assert model.log.closed
    assert guarded.invoke({"question": SAFE_PROMPT}) == BENIGN


async def test_string_chain_astream_stops_the_model(lc_guard: Guard) -> None:
    model = counting_model(HARMFUL)
    chunks = [c async for c in guard_runnable(_chain(model), lc_guard).astream({"question": SAFE_PROMPT})]
    _assert_stopped("".join(chunks), _block_message(lc_guard))
    for _ in range(50):  # the event loop finalizes the chain's inner async generators in the background
        await asyncio.sleep(0.01)
    assert model.log.produced <= PULLED_AT_BLOCK + 2 < n_chunks(HARMFUL)


def test_string_chain_refuses_unsafe_template_variable(lc_guard: Guard) -> None:
    model = counting_model(BENIGN)
    result = guard_runnable(_chain(model), lc_guard).invoke({"question": UNSAFE_PROMPT})
    assert result == _prompt_message(lc_guard)  # a str: read from the chain's OutputType
    assert model.log.generated == 0


def test_guard_composes_in_a_chain(lc_guard: Guard) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    model = counting_model(HARMFUL)
    chain = prompt | guard_runnable(model, lc_guard) | StrOutputParser()
    _assert_stopped("".join(chain.stream({"question": SAFE_PROMPT})), _block_message(lc_guard))


# -- metadata -------------------------------------------------------------------
def _metadata_stream(_: Any) -> Iterator[AIMessageChunk]:
    # a provider-like stream: text split mid-word, metadata on the first and last chunks
    yield AIMessageChunk(content="sure here is how to ba", id="msg-1", response_metadata={"model_name": "fake-1"})
    yield AIMessageChunk(content="ke bread with flour", id="msg-1")
    yield AIMessageChunk(content=" and water", id="msg-1")
    yield AIMessageChunk(
        content="", id="msg-1", response_metadata={"finish_reason": "stop"},
        usage_metadata={"input_tokens": 3, "output_tokens": 9, "total_tokens": 12}, chunk_position="last",
    )


def test_metadata_is_kept_once_even_when_chunks_are_split(lc_guard: Guard) -> None:
    upstream = RunnableGenerator(_metadata_stream)
    chunks = list(guard_runnable(upstream, lc_guard).stream(SAFE_PROMPT))
    assert len(chunks) > 4  # the guard released some chunks in parts
    assert _text(chunks) == BENIGN
    assert {c.id for c in chunks} == {"msg-1"}
    result = guard_runnable(upstream, lc_guard).invoke(SAFE_PROMPT)
    expected = upstream.invoke(SAFE_PROMPT)
    assert result.content == BENIGN
    assert result.response_metadata == {"model_name": "fake-1", "finish_reason": "stop"}
    assert result.usage_metadata == expected.usage_metadata
    assert result.id == "msg-1"


def test_rejects_non_text_outputs(lc_guard: Guard) -> None:
    def not_text(_: Any) -> Iterator[dict[str, str]]:
        yield {"not": "text"}

    upstream = RunnableGenerator(not_text)
    with pytest.raises(TypeError, match="messages or strings"):
        guard_runnable(upstream, lc_guard).invoke(SAFE_PROMPT)


def test_is_a_runnable(lc_guard: Guard) -> None:
    guarded = GuardkitRunnable(counting_model(BENIGN), lc_guard)
    assert isinstance(guarded, Runnable)
    assert guarded.get_name().startswith("Guardkit")
    with pytest.raises(TypeError):
        GuardkitRunnable(lambda x: x, lc_guard)  # type: ignore[arg-type]


def test_async_and_sync_agree(lc_guard: Guard) -> None:
    sync = guard_runnable(counting_model(HARMFUL), lc_guard).invoke(SAFE_PROMPT).content
    async_ = asyncio.run(guard_runnable(counting_model(HARMFUL), lc_guard).ainvoke(SAFE_PROMPT)).content
    assert sync == async_


def test_stream_generator_upstream_is_pulled_no_further(lc_guard: Guard) -> None:
    # a provider that never calls back (it just yields): the Runnable still stops it
    pulled: list[str] = []

    def tokens(_: Any) -> Iterator[str]:
        for token in HARMFUL.split(" "):
            pulled.append(token)
            yield token + " "

    out = list(guard_runnable(RunnableGenerator(tokens), lc_guard).stream(SAFE_PROMPT))
    assert all(isinstance(o, str) for o in out)
    _assert_stopped("".join(out), _block_message(lc_guard))
    assert pulled == HARMFUL.split(" ")[: pulled.index("detonator") + 1]


async def test_astream_events_see_only_guarded_output(lc_guard: Guard) -> None:
    guarded = guard_runnable(counting_model(HARMFUL), lc_guard)
    streamed: list[str] = []
    async for event in guarded.astream_events(SAFE_PROMPT, version="v2"):
        if event["event"] == "on_chain_stream" and event["name"] == guarded.get_name():
            streamed.append(event["data"]["chunk"].content)
    _assert_stopped("".join(streamed), _block_message(lc_guard))


def test_whole_message_upstream_is_split_at_the_onset(lc_guard: Guard) -> None:
    # a Runnable returning one complete AIMessage (no streaming at all)
    upstream = RunnableLambda(lambda _: AIMessage(HARMFUL, id="whole", response_metadata={"model_name": "m"}))
    chunks = list(guard_runnable(upstream, lc_guard).stream(SAFE_PROMPT))
    _assert_stopped(_text(chunks), _block_message(lc_guard))
    assert chunks[0].id == "whole" and chunks[0].response_metadata == {}  # a partial piece: no metadata
    benign = guard_runnable(RunnableLambda(lambda _: AIMessage(BENIGN, id="whole", response_metadata={"model_name": "m"})), lc_guard)
    result = benign.invoke(SAFE_PROMPT)
    assert result.content == BENIGN and result.response_metadata == {"model_name": "m"} and result.id == "whole"


def test_invalid_on_block(lc_guard: Guard) -> None:
    with pytest.raises(ValueError, match="on_block"):
        guard_runnable(counting_model(BENIGN), lc_guard, on_block="drop")  # type: ignore[arg-type]


def test_whole_message_tool_calls_survive(lc_guard: Guard) -> None:
    message = AIMessage("sure here is the weather", id="t", tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call-1"}])
    result = guard_runnable(RunnableLambda(lambda _: message), lc_guard).invoke(SAFE_PROMPT)
    assert result.content == "sure here is the weather"
    assert [(c["name"], c["args"], c["id"]) for c in result.tool_calls] == [("weather", {"city": "Paris"}, "call-1")]
