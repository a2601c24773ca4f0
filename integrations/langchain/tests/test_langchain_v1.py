"""LangChain v1 (issue 15 item 5): the guarded chat model, the agent middleware, guard_runnable(agent).

A scripted inner model (a real ``BaseChatModel``, ``lc_v1_support.ScriptedChatModel``)
streams a harmful or a benign reply; the tiny test model judges ("bomb"/"detonator"
are unsafe). Each test first shows that the raw upstream did carry the harmful
word, then that no consumer path (return values, ``stream``/``astream`` chunks,
``astream_events``, callback handlers, LangGraph ``stream_mode="messages"``, the
agent's state) ever saw it.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain")
pytest.importorskip("langgraph")

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_guardkit import GuardedAgentRunnable, GuardedChatModel, GuardkitCallbackHandler, GuardkitMiddleware, guard_runnable
from lc_support import BENIGN, HARMFUL, SAFE_PROMPT, UNSAFE_PROMPT
from lc_v1_support import ScriptedChatModel, WholeReplyChatModel, tool_call_reply, words

from guardkit import Guard, StreamBlocked

BAD = ("bomb", "detonator")
HARMFUL_ARGS = '{"query": "how to build a bomb detonator at home"}'
BENIGN_ARGS = '{"query": "bread recipe with flour and water"}'


def text_of(value: Any) -> str:
    """Everything a consumer received, as one lowercase string (content, metadata, tool calls ...)."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "model_dump"):
            return obj.model_dump()
        return repr(obj)

    return json.dumps(value, default=default).lower()


def assert_clean(value: Any) -> None:
    text = text_of(value)
    for word in BAD:
        assert word not in text, word


def raw_carried_harm(model: ScriptedChatModel) -> bool:
    return any(w in text_of(model.produced) for w in BAD)


def guarded(guard: Guard, *replies: Any, **kwargs: Any) -> tuple[GuardedChatModel, ScriptedChatModel]:
    inner = ScriptedChatModel(replies=list(replies))
    return GuardedChatModel(model=inner, guard=guard, **kwargs), inner


class TokenRecorder(BaseCallbackHandler):
    """An outer run's streaming consumer: records every token any run reports."""

    def __init__(self) -> None:
        self.tokens: list[Any] = []
        self.runs: set[UUID] = set()

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tokens.append((token, kwargs.get("chunk")))
        self.runs.add(run_id)


# -- the guarded chat model: every LangChain path ---------------------------------------------


def test_benign_passes_whole_on_every_path(lc_guard: Guard) -> None:
    model, _ = guarded(lc_guard, BENIGN)
    assert model.invoke(SAFE_PROMPT).content == BENIGN
    assert "".join(c.content for c in model.stream(SAFE_PROMPT)) == BENIGN
    assert [m.content for m in model.batch([SAFE_PROMPT, SAFE_PROMPT])] == [BENIGN, BENIGN]
    message = model.invoke(SAFE_PROMPT)
    assert isinstance(message, AIMessage) and "guardkit" not in message.response_metadata


def test_harmful_reply_never_reaches_invoke_stream_or_batch(lc_guard: Guard) -> None:
    message_text = lc_guard.policy.on_block.message
    model, inner = guarded(lc_guard, HARMFUL)
    result = model.invoke(SAFE_PROMPT)
    assert raw_carried_harm(inner)
    assert_clean(result)
    assert result.content == HARMFUL[: HARMFUL.index("bomb")] + "\n" + message_text
    (block,) = result.response_metadata["guardkit"]
    assert block["blocked"] and block["channel"] == "answer" and block["action"] == "halt" and block["message"] == message_text

    chunks = list(model.stream(SAFE_PROMPT))
    assert_clean(chunks)
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    last = chunks[-1]  # the block is its own chunk, never glued to released text
    assert last.content == "\n" + message_text and last.response_metadata["guardkit"][0]["blocked"]
    assert not any(c.response_metadata.get("guardkit") for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1  # one message

    results = model.batch([SAFE_PROMPT, SAFE_PROMPT])
    assert_clean(results) and all(r.content.endswith(message_text) for r in results)


@pytest.mark.parametrize("aio", [False, True])
async def test_a_block_stops_the_inner_model(lc_guard: Guard, aio: bool) -> None:
    """The inner model's stream is closed at the block: it is not read to its end."""
    model, inner = guarded(lc_guard, HARMFUL + " and many more words after it that nobody should pay for")
    if aio:
        [c async for c in model.astream(SAFE_PROMPT)]
    else:
        list(model.stream(SAFE_PROMPT))
    total = len(words(HARMFUL + " and many more words after it that nobody should pay for"))
    assert 0 < len(inner.produced) < total - 10


async def test_harmful_reply_never_reaches_astream_or_abatch(lc_guard: Guard) -> None:
    model, inner = guarded(lc_guard, HARMFUL)
    chunks = [c async for c in model.astream(SAFE_PROMPT)]
    assert raw_carried_harm(inner)
    assert_clean(chunks)
    assert chunks[-1].response_metadata["guardkit"][0]["blocked"]
    results = await model.abatch([SAFE_PROMPT, SAFE_PROMPT])
    assert_clean(results)
    assert (await model.ainvoke(SAFE_PROMPT)).content.endswith(lc_guard.policy.on_block.message)


async def test_astream_events_carry_no_raw_token(lc_guard: Guard) -> None:
    """The inner model runs with callbacks of its own: its raw on_chat_model_stream events are not the outer run's."""
    model, inner = guarded(lc_guard, HARMFUL)
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | model
    events = [e async for e in chain.astream_events({"question": SAFE_PROMPT}, version="v2")]
    assert raw_carried_harm(inner)
    assert_clean([e["data"] for e in events])
    streamed = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert streamed and {e["name"] for e in streamed} == {"GuardedChatModel"}
    assert "".join(e["data"]["chunk"].content for e in streamed).endswith(lc_guard.policy.on_block.message)
    assert not any(e["name"] == "ScriptedChatModel" for e in events)


def test_outer_callback_handlers_see_only_judged_chunks(lc_guard: Guard) -> None:
    model, inner = guarded(lc_guard, HARMFUL)
    recorder = TokenRecorder()
    list(model.stream(SAFE_PROMPT, config={"callbacks": [recorder]}))
    assert raw_carried_harm(inner) and recorder.tokens
    assert_clean([token for token, _ in recorder.tokens])
    assert_clean([chunk for _, chunk in recorder.tokens])
    assert len(recorder.runs) == 1  # the guarded model's run only


def test_prompt_refused_before_the_inner_model_is_called(lc_guard: Guard) -> None:
    model, inner = guarded(lc_guard, BENIGN)
    result = model.invoke([HumanMessage(UNSAFE_PROMPT)])
    assert inner.calls == 0 and result.content == lc_guard.policy.prompt.message
    assert result.response_metadata["guardkit"][0]["channel"] == "prompt"


def test_on_block_raise(lc_guard: Guard) -> None:
    model, _ = guarded(lc_guard, HARMFUL, on_block="raise")
    with pytest.raises(StreamBlocked):
        model.invoke(SAFE_PROMPT)


def test_tool_calls_are_held_until_judged_whole(lc_guard: Guard) -> None:
    model, inner = guarded(lc_guard, tool_call_reply("search", BENIGN_ARGS))
    chunks = list(model.bind_tools([]).stream(SAFE_PROMPT))
    with_calls = [c for c in chunks if c.tool_call_chunks]
    assert len(with_calls) == 1 and with_calls[0].tool_call_chunks[0]["args"] == BENIGN_ARGS  # one complete call
    assert model.invoke(SAFE_PROMPT).tool_calls[0]["args"] == json.loads(BENIGN_ARGS)

    model, inner = guarded(lc_guard, tool_call_reply("search", HARMFUL_ARGS))
    result = model.invoke(SAFE_PROMPT)
    assert raw_carried_harm(inner)
    assert_clean(result)
    assert result.tool_calls == [] and result.invalid_tool_calls == []  # no truncated call to run
    assert result.response_metadata["guardkit"][0]["channel"] == "tool_arguments"


def test_reasoning_content_blocks_are_judged(lc_guard: Guard) -> None:
    """Anthropic-style content blocks: thinking is its own channel, never shown unjudged."""
    reply = [AIMessageChunk(content=[{"type": "thinking", "thinking": w, "index": 0}]) for w in words(HARMFUL)]
    reply += [AIMessageChunk(content=[{"type": "text", "text": w, "index": 1}]) for w in words(BENIGN)]
    model, inner = guarded(lc_guard, reply)
    result = model.invoke(SAFE_PROMPT)
    assert raw_carried_harm(inner)
    assert_clean(result)
    assert result.response_metadata["guardkit"][0]["channel"] == "reasoning"
    # with the reasoning channel hidden (shown: false), the answer passes and no thinking shows
    model, _ = guarded(lc_guard, reply, channels={"reasoning": "drop"})
    result = model.invoke(SAFE_PROMPT)
    assert_clean(result) and "guardkit" not in result.response_metadata
    assert "".join(b["text"] for b in result.content if isinstance(b, dict) and b.get("type") == "text") == BENIGN


def test_every_text_field_of_a_chunk_is_judged(lc_guard: Guard) -> None:
    """v1 ``tool_call_chunk`` blocks, OpenAI reasoning summaries, ``additional_kwargs`` reasoning and refusals."""
    v1_tool = [AIMessageChunk(content=[{"type": "tool_call_chunk", "name": "search" if i == 0 else None, "args": w, "id": "call_1" if i == 0 else None,
                                        "index": 0}],
                              tool_call_chunks=[{"name": "search" if i == 0 else None, "args": w, "id": "call_1" if i == 0 else None, "index": 0,
                                                 "type": "tool_call_chunk"}])
               for i, w in enumerate(words(HARMFUL_ARGS))]
    summary = [AIMessageChunk(content=[{"type": "reasoning", "summary": [{"type": "summary_text", "text": w, "index": 0}], "index": 0}])
               for w in words(HARMFUL)]
    reasoning_kwargs = [AIMessageChunk(content="", additional_kwargs={"reasoning_content": w}) for w in words(HARMFUL)]
    refusal = [AIMessageChunk(content="", additional_kwargs={"refusal": w}) for w in words(HARMFUL)]
    for reply, channel in [(v1_tool, "tool_arguments"), (summary, "reasoning"), (reasoning_kwargs, "reasoning"), (refusal, "refusal")]:
        model, inner = guarded(lc_guard, reply)
        chunks = list(model.stream(SAFE_PROMPT))
        assert raw_carried_harm(inner), channel
        assert_clean(chunks)
        assert chunks[-1].response_metadata["guardkit"][0]["channel"] == channel
    # the same kinds of chunk, benign, pass whole
    model, _ = guarded(lc_guard, [AIMessageChunk(content="", additional_kwargs={"reasoning_content": w}) for w in words(BENIGN)])
    assert model.invoke(SAFE_PROMPT).additional_kwargs["reasoning_content"] == BENIGN


def test_an_inner_model_that_does_not_stream_is_judged_whole(lc_guard: Guard) -> None:
    reply = AIMessage(content=HARMFUL, tool_calls=[{"name": "search", "args": json.loads(HARMFUL_ARGS), "id": "call_1"}])
    inner = WholeReplyChatModel(reply=reply)
    result = GuardedChatModel(model=inner, guard=lc_guard).invoke(SAFE_PROMPT)
    assert inner.calls == 1
    assert_clean(result)
    assert result.tool_calls == [] and result.content.endswith(lc_guard.policy.on_block.message)
    inner = WholeReplyChatModel(reply=AIMessage(content=BENIGN, tool_calls=[{"name": "search", "args": json.loads(BENIGN_ARGS), "id": "call_1"}]))
    result = GuardedChatModel(model=inner, guard=lc_guard).invoke(SAFE_PROMPT)
    assert result.content == BENIGN and result.tool_calls[0]["args"] == json.loads(BENIGN_ARGS)


def test_constructor_errors_are_clear(lc_guard: Guard) -> None:
    with pytest.raises(Exception, match="guard must be a guardkit.Guard"):
        GuardedChatModel(model=ScriptedChatModel(replies=["x"]), guard="default")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="model must be a LangChain chat model"):
        GuardedChatModel(model="gpt-4o", guard=lc_guard)  # type: ignore[arg-type]


# -- agents: create_agent with the guarded model, and with the middleware ----------------------


def make_search(seen: list[str]) -> Any:
    @tool
    def search(query: str) -> str:
        """Search the web."""
        seen.append(query)
        return "flour, water and salt"

    return search


def test_agent_with_guarded_model_and_a_tool(lc_guard: Guard) -> None:
    seen: list[str] = []
    model, inner = guarded(lc_guard, tool_call_reply("search", BENIGN_ARGS), HARMFUL)
    agent = create_agent(model=model, tools=[make_search(seen)])
    streamed = list(agent.stream({"messages": [("user", SAFE_PROMPT)]}, stream_mode="messages"))
    assert raw_carried_harm(inner)
    assert seen == [json.loads(BENIGN_ARGS)["query"]]  # the judged call ran with its whole arguments
    assert_clean([message for message, _ in streamed])
    ai_text = "".join(m.content for m, _ in streamed if isinstance(m, AIMessageChunk) and isinstance(m.content, str))
    assert ai_text.endswith(lc_guard.policy.on_block.message)
    assert any(isinstance(m, ToolMessage) for m, _ in streamed)

    model, _ = guarded(lc_guard, tool_call_reply("search", BENIGN_ARGS), BENIGN)
    state = create_agent(model=model, tools=[make_search(seen)]).invoke({"messages": [("user", SAFE_PROMPT)]})
    assert state["messages"][-1].content == BENIGN


def test_agent_harmful_tool_arguments_never_run(lc_guard: Guard) -> None:
    seen: list[str] = []
    model, inner = guarded(lc_guard, tool_call_reply("search", HARMFUL_ARGS), BENIGN)
    state = create_agent(model=model, tools=[make_search(seen)]).invoke({"messages": [("user", SAFE_PROMPT)]})
    assert raw_carried_harm(inner)
    assert seen == [] and inner.calls == 1  # the tool never ran; the agent ended with the block
    assert_clean(state)
    assert state["messages"][-1].content == lc_guard.policy.on_block.message


async def test_agent_astream_events_and_messages_mode_async(lc_guard: Guard) -> None:
    model, inner = guarded(lc_guard, HARMFUL)
    agent = create_agent(model=model, tools=[make_search([])])
    events = [e async for e in agent.astream_events({"messages": [("user", SAFE_PROMPT)]}, version="v2")]
    assert raw_carried_harm(inner)
    assert_clean([e["data"] for e in events])
    model, inner = guarded(lc_guard, HARMFUL)
    agent = create_agent(model=model, tools=[make_search([])])
    streamed = [m async for m, _ in agent.astream({"messages": [("user", SAFE_PROMPT)]}, stream_mode="messages")]
    assert raw_carried_harm(inner)
    assert_clean(streamed)


def test_middleware_refuses_a_blocked_prompt_without_calling_the_model(lc_guard: Guard) -> None:
    inner = ScriptedChatModel(replies=[BENIGN])
    agent = create_agent(inner, tools=[make_search([])], middleware=[GuardkitMiddleware(lc_guard)])
    state = agent.invoke({"messages": [("user", UNSAFE_PROMPT)]})
    assert inner.calls == 0
    assert state["messages"][-1].content == lc_guard.policy.prompt.message
    assert state["messages"][-1].response_metadata["guardkit"][0]["channel"] == "prompt"


def test_middleware_guards_the_response(lc_guard: Guard) -> None:
    seen: list[str] = []
    inner = ScriptedChatModel(replies=[tool_call_reply("search", BENIGN_ARGS), HARMFUL])
    agent = create_agent(inner, tools=[make_search(seen)], middleware=[GuardkitMiddleware(lc_guard)])
    streamed = [m for m, _ in agent.stream({"messages": [("user", SAFE_PROMPT)]}, stream_mode="messages")]
    assert raw_carried_harm(inner) and seen == ["bread recipe with flour and water"]
    assert_clean(streamed)
    inner = ScriptedChatModel(replies=[HARMFUL])
    state = create_agent(inner, middleware=[GuardkitMiddleware(lc_guard)]).invoke({"messages": [("user", SAFE_PROMPT)]})
    assert_clean(state) and state["messages"][-1].content.endswith(lc_guard.policy.on_block.message)


async def test_middleware_async(lc_guard: Guard) -> None:
    inner = ScriptedChatModel(replies=[HARMFUL])
    agent = create_agent(inner, middleware=[GuardkitMiddleware(lc_guard)])
    events = [e async for e in agent.astream_events({"messages": [("user", SAFE_PROMPT)]}, version="v2")]
    assert raw_carried_harm(inner)
    assert_clean([e["data"] for e in events])
    inner = ScriptedChatModel(replies=[BENIGN])
    state = await create_agent(inner, middleware=[GuardkitMiddleware(lc_guard)]).ainvoke({"messages": [("user", UNSAFE_PROMPT)]})
    assert inner.calls == 0 and state["messages"][-1].content == lc_guard.policy.prompt.message


def test_guard_runnable_on_an_agent(lc_guard: Guard) -> None:
    """guard_runnable(agent) judges the agent's states (it used to raise TypeError)."""
    inner = ScriptedChatModel(replies=[HARMFUL])
    guarded_agent = guard_runnable(create_agent(inner), lc_guard)
    assert isinstance(guarded_agent, GuardedAgentRunnable)
    state = guarded_agent.invoke({"messages": [("user", SAFE_PROMPT)]})
    assert raw_carried_harm(inner)
    assert_clean(state)
    assert state["messages"][-1].content == lc_guard.policy.on_block.message
    assert_clean(list(guarded_agent.stream({"messages": [("user", SAFE_PROMPT)]})))
    inner = ScriptedChatModel(replies=[BENIGN])
    state = guard_runnable(create_agent(inner), lc_guard).invoke({"messages": [("user", UNSAFE_PROMPT)]})
    assert inner.calls == 0 and state["messages"][-1].content == lc_guard.policy.prompt.message


async def test_guard_runnable_on_an_agent_astream_events(lc_guard: Guard) -> None:
    inner = ScriptedChatModel(replies=[HARMFUL])
    guarded_agent = guard_runnable(create_agent(inner), lc_guard)
    events = [e async for e in guarded_agent.astream_events({"messages": [("user", SAFE_PROMPT)]}, version="v2")]
    assert raw_carried_harm(inner) and events
    assert_clean([e["data"] for e in events])
    state = await guarded_agent.ainvoke({"messages": [("user", SAFE_PROMPT)]})
    assert state["messages"][-1].content == lc_guard.policy.on_block.message


# -- the callback handlers: a block is reported, not logged as a callback error -----------------


def test_callback_block_is_not_logged_as_a_callback_error(lc_guard: Guard, caplog: pytest.LogCaptureFixture) -> None:
    blocked: list[Any] = []
    handler = GuardkitCallbackHandler(lc_guard, on_block=lambda verdict, run_id: blocked.append(verdict))
    model = GenericFakeChatModel(messages=iter([HARMFUL]))
    caplog.set_level(logging.INFO)
    with pytest.raises(StreamBlocked):
        list(model.stream(SAFE_PROMPT, config={"callbacks": [handler]}))
    assert not [r for r in caplog.records if "Error in" in r.getMessage()]
    assert [r for r in caplog.records if r.name == "langchain_guardkit" and "blocked" in r.getMessage()]
    assert len(blocked) == 1 and blocked[0].blocked and handler.active_runs == 0


# -- the agent example, with the tiny test model and with the shipped guardkit-mini -----------


@pytest.mark.parametrize("bundle", ["tiny", "shipped"])
def test_agent_example_streams_only_judged_text(lc_tiny_bundle: Any, bundle: str) -> None:
    """examples/langchain_agent.py: the benign answer whole after the tool call; the harmful one halted."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    example = root / "examples" / "langchain_agent.py"
    if not example.is_file():
        pytest.skip("needs the guardkit source checkout")
    shipped = root / "models" / "guardkit-mini"
    if bundle == "shipped" and not (shipped / "model.onnx").is_file():
        pytest.skip("the shipped model is not in this checkout")
    args = ["--model", str(lc_tiny_bundle if bundle == "tiny" else shipped)]
    run = subprocess.run([sys.executable, str(example), *args], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    benign, harmful = run.stdout.split("user> ")[1:]
    assert "[tool find_recipe: bread: flour, water, salt, yeast] Sure, here is how to bake bread: mix the flour and water, then bake it for an hour." in benign
    assert "[response withheld: it broke the content policy]" not in benign
    assert harmful.rstrip().endswith("[response withheld: it broke the content policy]")
    for word in ("bomb", "detonator", "explosive", "pipe", "fuse"):
        assert word not in harmful.split("assistant>")[-1], word


# -- more paths: a plain LangGraph graph, the policy's channels, the async callback handler ----


def test_langgraph_messages_mode_over_a_plain_graph(lc_guard: Guard) -> None:
    from langgraph.graph import START, MessagesState, StateGraph

    model, inner = guarded(lc_guard, HARMFUL)

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("model", call_model).add_edge(START, "model").compile()
    streamed = list(graph.stream({"messages": [("user", SAFE_PROMPT)]}, stream_mode="messages"))
    assert raw_carried_harm(inner) and streamed
    assert_clean([message for message, _ in streamed])
    assert "".join(m.content for m, _ in streamed if isinstance(m, AIMessageChunk)).endswith(lc_guard.policy.on_block.message)


def test_the_policy_channels_section_applies(lc_guard: Guard, tmp_path: Any) -> None:
    """A policy whose reasoning channel is replaced on a block: the thinking stops alone, the answer goes on."""
    path = tmp_path / "reasoning-replace.yaml"
    path.write_text("extends: default\nchannels:\n  reasoning: {on_block: replace, message: '[thinking withheld]'}\n", encoding="utf-8")
    reply = [AIMessageChunk(content=[{"type": "thinking", "thinking": w, "index": 0}]) for w in words(HARMFUL)]
    reply += [AIMessageChunk(content=[{"type": "text", "text": w, "index": 1}]) for w in words(BENIGN)]
    model, inner = guarded(lc_guard.with_policy(path), reply)
    result = model.invoke(SAFE_PROMPT)
    assert raw_carried_harm(inner)
    assert_clean(result)
    thinking = "".join(b.get("thinking", "") for b in result.content if isinstance(b, dict))
    text = "".join(b.get("text", "") for b in result.content if isinstance(b, dict) and b.get("type") == "text")
    assert thinking == HARMFUL[: HARMFUL.index("bomb")] + "\n[thinking withheld]" and text == BENIGN
    (block,) = result.response_metadata["guardkit"]
    assert block["channel"] == "reasoning" and block["action"] == "replace" and block["channel_only"]


async def test_async_callback_block_is_not_logged_as_a_callback_error(lc_guard: Guard, caplog: pytest.LogCaptureFixture) -> None:
    from langchain_guardkit import AsyncGuardkitCallbackHandler

    blocked: list[Any] = []
    handler = AsyncGuardkitCallbackHandler(lc_guard, on_block=lambda verdict, run_id: blocked.append(verdict))
    model = GenericFakeChatModel(messages=iter([HARMFUL]))
    caplog.set_level(logging.INFO)
    with pytest.raises(StreamBlocked):
        [c async for c in model.astream(SAFE_PROMPT, config={"callbacks": [handler]})]
    assert not [r for r in caplog.records if "Error in" in r.getMessage()]
    assert len(blocked) == 1 and handler.active_runs == 0
