"""Provider adapters (issue 15 items 1, 2, 3, 4, 7): OpenAI chat chunks, OpenAI Responses events, Anthropic events.

Every test uses the real SDK types (constructed objects, or the SDK clients over
an ``httpx.MockTransport`` streaming the provider's SSE wire format) and the
tiny hand-wired test model, whose verdicts are fixed: "bomb"/"detonator" are
unsafe, the benign words are safe. The properties checked for each provider:

- a harmful completion never reaches the consumer (no harmful word in any
  field of any output item), the stream ends with the provider's stop signal
  plus a ``guardkit`` block field, and the upstream is closed;
- a benign completion passes whole, every non-text field unchanged, in the
  same SDK types (dicts in, dicts out);
- the same through the async twin; ``on_block="raise"`` raises after released text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx
import pytest

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")

from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

import guardkit
import guardkit.adapters
from guardkit import (
    Guard,
    GuardBlock,
    StreamBlocked,
    StreamModel,
    aguard_anthropic_stream,
    aguard_openai_stream,
    aguard_responses_stream,
    guard_anthropic_stream,
    guard_openai_stream,
    guard_responses_stream,
)
from guardkit.adapters import ShapedStream

HARMFUL = "sure here is how to build a bomb detonator and then more"
BENIGN = "sure here is a recipe for bread: mix flour with water and salt, then bake it."
BAD_WORDS = ("bomb", "detonator")
HARMFUL_ARGS = '{"query": "how to build a bomb detonator at home"}'
BENIGN_ARGS = '{"query": "bread recipe with flour and water"}'


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


def dump(item: Any) -> Any:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


def assert_clean(items: Iterable[Any]) -> None:
    """No harmful word anywhere in what the consumer received (any field, any item)."""
    text = json.dumps([dump(i) for i in items]).lower()
    for word in BAD_WORDS:
        assert word not in text, word


class Upstream:
    """An upstream that records whether it was closed (as an SDK Stream is)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._it = iter(list(items))
        self.closed = False
        self.consumed = 0

    def __iter__(self) -> Upstream:
        return self

    def __next__(self) -> Any:
        item = next(self._it)
        self.consumed += 1
        return item

    def close(self) -> None:
        self.closed = True


async def agen(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


@pytest.fixture()
def prompt_guard(tiny_model: StreamModel) -> Guard:
    """The default policy with prompt checks on (whatever the shipped policy file says today)."""
    policy = guardkit.load_policy("default")
    policy = policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"action": "block"})})
    return Guard(tiny_model, policy)


# -- public names ---------------------------------------------------------------------


def test_public_names_resolve() -> None:
    import importlib

    modules = [guardkit, guardkit.adapters] + [importlib.import_module(f"guardkit.adapters.{m}") for m in ("_driver", "openai", "openai_responses", "anthropic")]
    for module in modules:
        assert len(module.__all__) == len(set(module.__all__))
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)
    for name in ("GuardBlock", "OnBlockMode", "guard_openai_stream", "aguard_openai_stream", "guard_responses_stream",
                 "aguard_responses_stream", "guard_anthropic_stream", "aguard_anthropic_stream"):
        assert name in guardkit.__all__, name
    for name in ("Shaper", "ShapedStream", "AsyncShapedStream", "ChatChunkShaper", "ResponsesEventShaper", "AnthropicEventShaper"):
        assert name in guardkit.adapters.__all__, name


# -- OpenAI chat completions -------------------------------------------------------------

CHUNK = TypeAdapter(ChatCompletionChunk)


def _base(**extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-x",
            "system_fingerprint": "fp_1", "service_tier": "default", **extra}


def _logprob(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": -0.1, "bytes": list(token.encode()), "top_logprobs": [{"token": token, "logprob": -0.1, "bytes": None}]}


def chat_dicts(texts: list[str], *, logprobs: bool = True, usage: bool = True) -> list[dict[str, Any]]:
    """An n=len(texts) chat stream, choices interleaved word by word, with logprobs, usage and obfuscation."""
    out = [_base(choices=[{"index": i, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}],
                 obfuscation="abc") for i in range(len(texts))]
    pieces = [words(t) for t in texts]
    for j in range(max(map(len, pieces))):
        for i, ws in enumerate(pieces):
            if j < len(ws):
                lp = {"content": [_logprob(ws[j])], "refusal": None} if logprobs else None
                out.append(_base(choices=[{"index": i, "delta": {"content": ws[j]}, "logprobs": lp, "finish_reason": None}], obfuscation="x" * j))
    out += [_base(choices=[{"index": i, "delta": {}, "logprobs": None, "finish_reason": "stop"}]) for i in range(len(texts))]
    if usage:
        out.append(_base(choices=[], usage={"prompt_tokens": 5, "completion_tokens": 30, "total_tokens": 35}))
    return out


def tool_dicts(args: str, content: str | None = None) -> list[dict[str, Any]]:
    """A chat stream calling one tool (arguments streamed in pieces), optionally after some content."""
    out = [_base(choices=[{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}])]
    for piece in words(content or ""):
        if piece:
            out.append(_base(choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
    out.append(_base(choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                      "function": {"name": "search", "arguments": ""}}]}, "finish_reason": None}]))
    for piece in words(args):
        out.append(_base(choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, "finish_reason": None}]))
    out.append(_base(choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    return out


def chat_objects(dicts: list[dict[str, Any]]) -> list[ChatCompletionChunk]:
    return [CHUNK.validate_python(d) for d in dicts]


def by_choice(chunks: list[Any], i: int) -> list[Any]:
    from guardkit.adapters._driver import get

    return [c for chunk in chunks for c in get(chunk, "choices") if get(c, "index") == i]


def choice_text(chunks: list[Any], i: int = 0, field: str = "content") -> str:
    from guardkit.adapters._driver import get

    return "".join(get(get(c, "delta"), field) or "" for c in by_choice(chunks, i))


def _strip_text(chunk: dict[str, Any]) -> dict[str, Any]:
    """A dumped chunk without its text fields (content, tool-call arguments, logprobs)."""
    chunk = json.loads(json.dumps(chunk))
    for c in chunk["choices"]:
        c["delta"].pop("content", None)
        c.pop("logprobs", None)
        for call in c["delta"].get("tool_calls") or []:
            call.get("function", {}).pop("arguments", None)
    return chunk


@pytest.mark.parametrize("as_objects", [True, False], ids=["sdk", "dict"])
def test_chat_benign_passes_whole_with_every_field(tiny_guard: Guard, as_objects: bool) -> None:
    dicts = chat_dicts([BENIGN])
    upstream = chat_objects(dicts) if as_objects else dicts
    stream = guard_openai_stream(tiny_guard, upstream, prompt="how do i bake bread?")
    out = list(stream)
    assert all(isinstance(c, ChatCompletionChunk if as_objects else dict) for c in out)
    assert not stream.blocked and choice_text(out) == BENIGN == stream.released_text
    # one output chunk per upstream chunk; apart from text (moved later while judged) every field is the upstream's
    assert len(out) == len(upstream)
    dumped_in = [c.model_dump(exclude_unset=True) if as_objects else c for c in upstream]
    dumped_out = [c.model_dump(exclude_unset=True) if as_objects else c for c in out]
    assert [_strip_text(c) for c in dumped_out] == [_strip_text(c) for c in dumped_in]
    # the logprobs come out whole, in order, never ahead of their text
    lps = [lp for c in by_choice(dumped_out, 0) if c.get("logprobs") for lp in c["logprobs"]["content"] or []]
    assert lps == [_logprob(w) for w in words(BENIGN)]
    shown = spelled = 0
    for c in by_choice(dumped_out, 0):
        shown += len(c["delta"].get("content") or "")
        spelled += sum(len(lp["token"]) for lp in (c.get("logprobs") or {}).get("content") or [])
        assert spelled <= shown
    assert out[-1] is upstream[-1]  # the usage chunk carries no text: passed as is


@pytest.mark.parametrize("as_objects", [True, False], ids=["sdk", "dict"])
def test_chat_n2_harmful_choice_blocked_alone(tiny_guard: Guard, as_objects: bool) -> None:
    dicts = chat_dicts([BENIGN, HARMFUL], usage=False)
    upstream = Upstream(chat_objects(dicts) if as_objects else dicts)
    stream = guard_openai_stream(tiny_guard, upstream)
    out = list(stream)
    assert_clean(out)
    from guardkit.adapters._driver import get

    assert choice_text(out, 0) == BENIGN

    assert get(by_choice(out, 0)[-1], "finish_reason") == "stop"
    assert choice_text(out, 1) == HARMFUL[: HARMFUL.index("bomb")]
    last1 = by_choice(out, 1)[-1]
    assert get(last1, "finish_reason") == "content_filter"
    block_chunk = next(c for c in out if get(c, "guardkit") is not None)
    info = get(block_chunk, "guardkit")
    assert info["blocked"] and info["channel"] == "answer" and info["message"] == tiny_guard.policy.on_block.message
    assert info["verdict"]["category"] == "violent" and info["verdict"]["char_offset"] == HARMFUL.index("bomb")
    assert [b.scope for b in stream.blocks] == [1] and isinstance(stream.blocks[0], GuardBlock)
    assert stream.released((0, "content")) == BENIGN
    if as_objects:
        assert all(isinstance(c, ChatCompletionChunk) for c in out)
        assert block_chunk.choices[0].delta.content is None  # the message is not glued onto the text
    assert upstream.closed  # the blocked choice was still generating and the other one had finished


def test_chat_n1_block_closes_upstream_early(tiny_guard: Guard) -> None:
    upstream = Upstream(chat_objects(chat_dicts([HARMFUL + " and then more and more and more"])))
    out = list(guard_openai_stream(tiny_guard, upstream))
    assert_clean(out)
    assert upstream.closed and upstream.consumed < 14
    assert out[-1].choices[0].finish_reason == "content_filter" and out[-1].guardkit["blocked"]


@pytest.mark.parametrize("as_objects", [True, False], ids=["sdk", "dict"])
def test_chat_tool_call_arguments_are_guarded(tiny_guard: Guard, as_objects: bool) -> None:
    from guardkit.adapters._driver import get

    benign = tool_dicts(BENIGN_ARGS)
    upstream = chat_objects(benign) if as_objects else benign
    out = list(guard_openai_stream(tiny_guard, upstream))
    calls = [call for c in by_choice(out, 0) for call in get(get(c, "delta"), "tool_calls") or []]
    assert "".join(get(get(call, "function"), "arguments") or "" for call in calls) == BENIGN_ARGS
    first = calls[0]
    assert (get(first, "id"), get(first, "type"), get(get(first, "function"), "name")) == ("call_1", "function", "search")
    assert get(by_choice(out, 0)[-1], "finish_reason") == "tool_calls"

    harmful = tool_dicts(HARMFUL_ARGS, content="sure i can help with that")
    stream = guard_openai_stream(tiny_guard, chat_objects(harmful) if as_objects else harmful)
    out = list(stream)
    assert_clean(out)
    assert "sure i can help with that".startswith(choice_text(out)) and choice_text(out)  # held text of a blocked choice never shows
    assert stream.blocks[0].channel == "tool_arguments" and get(by_choice(out, 0)[-1], "finish_reason") == "content_filter"


def test_chat_refusal_channel_guarded(tiny_guard: Guard) -> None:
    dicts = [_base(choices=[{"index": 0, "delta": {"role": "assistant", "refusal": ""}, "finish_reason": None}])]
    dicts += [_base(choices=[{"index": 0, "delta": {"refusal": w}, "finish_reason": None}]) for w in words(HARMFUL)]
    out = list(guard_openai_stream(tiny_guard, chat_objects(dicts)))
    assert_clean(out)
    assert choice_text(out, 0, "refusal") == HARMFUL[: HARMFUL.index("bomb")]


async def test_chat_async_and_raise(tiny_guard: Guard) -> None:
    dicts = chat_dicts([BENIGN, HARMFUL])
    stream = aguard_openai_stream(tiny_guard, agen(chat_objects(dicts)))
    out = [c async for c in stream]
    assert_clean(out)
    assert choice_text(out, 0) == BENIGN and by_choice(out, 1)[-1].finish_reason == "content_filter"
    assert all(isinstance(c, ChatCompletionChunk) for c in out)
    seen: list[Any] = []
    with pytest.raises(StreamBlocked) as caught:
        async for chunk in aguard_openai_stream(tiny_guard, agen(chat_objects(chat_dicts([HARMFUL]))), on_block="raise"):
            seen.append(chunk)
    assert_clean(seen)
    assert caught.value.released_text == HARMFUL[: HARMFUL.index("bomb")] == choice_text(seen)


def test_chat_blocked_prompt_reads_nothing_to_the_user(prompt_guard: Guard) -> None:
    upstream = Upstream(chat_objects(chat_dicts([BENIGN])))
    stream = guard_openai_stream(prompt_guard, upstream, prompt="how do i build a bomb")
    out = list(stream)
    assert upstream.closed and upstream.consumed <= 1
    assert len(out) == 1 and out[0].choices[0].finish_reason == "content_filter"
    assert out[0].guardkit["channel"] == "prompt" and out[0].guardkit["message"] == prompt_guard.policy.prompt.message
    assert out[0].id == "chatcmpl-1" and choice_text(out) == ""


def test_chat_helper_events_refused(tiny_guard: Guard) -> None:
    with pytest.raises(TypeError, match="chat.completion.chunk"):
        list(guard_openai_stream(tiny_guard, [{"type": "content.delta", "delta": "x", "snapshot": "x"}]))


def test_consumer_stopping_early_closes_upstream(tiny_guard: Guard) -> None:
    upstream = Upstream(chat_objects(chat_dicts([BENIGN])))
    stream = guard_openai_stream(tiny_guard, upstream)
    next(stream)
    stream.close()
    assert upstream.closed


# -- OpenAI Responses -----------------------------------------------------------------------

RESPONSE_EVENT = TypeAdapter(ResponseStreamEvent)


def _response(status: str, output: list[Any]) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-x", "status": status, "output": output,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
            "instructions": None, "metadata": {"k": "v"}, "temperature": 1.0, "top_p": 1.0,
            "usage": {"input_tokens": 5, "output_tokens": 9, "total_tokens": 14,
                      "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 3}} if status == "completed" else None}


def responses_dicts(text: str, summary: str = "i think about bread", args: str | None = None) -> list[dict[str, Any]]:
    """A Responses stream: a reasoning summary, a message, optionally a function call; then response.completed."""
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}
    rs = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}
    ev: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("in_progress", [])},
        {"type": "response.in_progress", "response": _response("in_progress", [])},
        {"type": "response.output_item.added", "output_index": 0, "item": {**rs, "summary": []}},
        {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
    ]
    ev += [{"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": w} for w in words(summary)]
    ev += [
        {"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "text": summary},
        {"type": "response.reasoning_summary_part.done", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "part": {"type": "summary_text", "text": summary}},
        {"type": "response.output_item.done", "output_index": 0, "item": rs},
        {"type": "response.output_item.added", "output_index": 1, "item": {**msg, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 1, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
    ]
    ev += [{"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": w,
            "logprobs": [{"token": w, "logprob": -0.5, "top_logprobs": []}]} for w in words(text)]
    ev += [
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 1, "content_index": 0, "text": text, "logprobs": []},
        {"type": "response.content_part.done", "item_id": "msg_1", "output_index": 1, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}},
        {"type": "response.output_item.done", "output_index": 1, "item": msg},
    ]
    output = [rs, msg]
    if args is not None:
        fc = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "search", "arguments": args, "status": "completed"}
        ev.append({"type": "response.output_item.added", "output_index": 2, "item": {**fc, "arguments": "", "status": "in_progress"}})
        ev += [{"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": w} for w in words(args)]
        ev += [{"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 2, "arguments": args, "name": "search"},
               {"type": "response.output_item.done", "output_index": 2, "item": fc}]
        output.append(fc)
    ev.append({"type": "response.completed", "response": _response("completed", output)})
    return [{**e, "sequence_number": n} for n, e in enumerate(ev)]


def responses_objects(dicts: list[dict[str, Any]]) -> list[Any]:
    return [RESPONSE_EVENT.validate_python(d) for d in dicts]


def _type(e: Any) -> str:
    return e["type"] if isinstance(e, dict) else e.type


def _text_of(events: list[Any], family: str) -> str:
    return "".join((e["delta"] if isinstance(e, dict) else e.delta) for e in events if _type(e) == family + ".delta")


@pytest.mark.parametrize("as_objects", [True, False], ids=["sdk", "dict"])
def test_responses_benign_passes_whole_with_every_field(tiny_guard: Guard, as_objects: bool) -> None:
    dicts = responses_dicts(BENIGN, args=BENIGN_ARGS)
    upstream = responses_objects(dicts) if as_objects else dicts
    stream = guard_responses_stream(tiny_guard, upstream)
    out = list(stream)
    assert not stream.blocked and stream.released_text == BENIGN
    if as_objects:
        assert [type(e) for e in out if not _type(e).endswith(".delta")] == [type(e) for e in upstream if not _type(e).endswith(".delta")]
    assert _text_of(out, "response.output_text") == BENIGN
    assert _text_of(out, "response.reasoning_summary_text") == "i think about bread"
    assert _text_of(out, "response.function_call_arguments") == BENIGN_ARGS
    # every event that is not a text delta comes out exactly as it went in (done events, snapshots, usage)
    assert [dump(e) for e in out if not _type(e).endswith(".delta")] == [dump(e) for e in upstream if not _type(e).endswith(".delta")]
    lps = [lp for e in out if _type(e) == "response.output_text.delta" for lp in dump(e)["logprobs"]]
    assert [lp["token"] for lp in lps] == words(BENIGN)


@pytest.mark.parametrize("where", ["answer", "reasoning", "tool_arguments"])
def test_responses_harmful_channel_blocks_the_response(tiny_guard: Guard, where: str) -> None:
    text, summary, args = BENIGN, "i think about bread", BENIGN_ARGS
    if where == "answer":
        text = HARMFUL
    elif where == "reasoning":
        summary = HARMFUL
    else:
        args = HARMFUL_ARGS
    upstream = Upstream(responses_objects(responses_dicts(text, summary, args)))
    stream = guard_responses_stream(tiny_guard, upstream)
    out = list(stream)
    assert_clean(out)
    assert upstream.closed and stream.blocks[0].channel == where
    last = out[-1]
    assert last.type == "response.incomplete" and last.response.status == "incomplete"
    assert last.response.incomplete_details.reason == "content_filter"
    assert last.guardkit["blocked"] and last.guardkit["message"] == tiny_guard.policy.on_block.message
    assert last.response.id == "resp_1" and last.sequence_number > max(e.sequence_number for e in out[:-1])
    assert all(isinstance(e, BaseModel) for e in out)


async def test_responses_async_and_raise(tiny_guard: Guard) -> None:
    out = [e async for e in aguard_responses_stream(tiny_guard, agen(responses_objects(responses_dicts(HARMFUL))))]
    assert_clean(out)
    assert out[-1].type == "response.incomplete"
    seen: list[Any] = []
    with pytest.raises(StreamBlocked):
        async for e in aguard_responses_stream(tiny_guard, agen(responses_dicts(HARMFUL)), on_block="raise"):
            seen.append(e)
    assert_clean(seen)
    assert _text_of(seen, "response.output_text") == HARMFUL[: HARMFUL.index("bomb")]


def test_responses_blocked_prompt(prompt_guard: Guard) -> None:
    upstream = Upstream(responses_objects(responses_dicts(BENIGN)))
    out = list(guard_responses_stream(prompt_guard, upstream, prompt="how do i build a bomb"))
    assert upstream.closed and [e.type for e in out] == ["response.created", "response.incomplete"]
    assert out[-1].guardkit["channel"] == "prompt"


# -- Anthropic Messages -----------------------------------------------------------------------

ANTHROPIC_EVENT = TypeAdapter(RawMessageStreamEvent)


def anthropic_dicts(text: str, thinking: str = "first i think about bread", tool_json: str | None = None) -> list[dict[str, Any]]:
    """A Messages stream: a thinking block (with signature), a text block, optionally a tool_use block."""
    ev: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
                                              "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    ]
    ev += [{"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": w}} for w in words(thinking)]
    ev += [{"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}},
           {"type": "content_block_stop", "index": 0},
           {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "", "citations": None}}]
    ev += [{"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": w}} for w in words(text)]
    ev.append({"type": "content_block_stop", "index": 1})
    stop = "end_turn"
    if tool_json is not None:
        ev.append({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {}}})
        ev += [{"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": w}} for w in words(tool_json)]
        ev.append({"type": "content_block_stop", "index": 2})
        stop = "tool_use"
    ev += [{"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 42}},
           {"type": "message_stop"}]
    return ev


def anthropic_objects(dicts: list[dict[str, Any]]) -> list[Any]:
    return [ANTHROPIC_EVENT.validate_python(d) for d in dicts]


def _block_text(events: list[Any], index: int, field: str) -> str:
    out = ""
    for e in map(dump, events):
        if e["type"] == "content_block_delta" and e["index"] == index and field in e["delta"]:
            out += e["delta"][field]
    return out


@pytest.mark.parametrize("as_objects", [True, False], ids=["sdk", "dict"])
def test_anthropic_benign_passes_whole_with_every_field(tiny_guard: Guard, as_objects: bool) -> None:
    dicts = anthropic_dicts(BENIGN, tool_json=BENIGN_ARGS)
    upstream = anthropic_objects(dicts) if as_objects else dicts
    stream = guard_anthropic_stream(tiny_guard, upstream, prompt="how do i bake bread?")
    out = list(stream)
    assert not stream.blocked and stream.released_text == BENIGN
    assert _block_text(out, 1, "text") == BENIGN
    assert _block_text(out, 0, "thinking") == "first i think about bread"
    assert _block_text(out, 2, "partial_json") == BENIGN_ARGS
    not_text = [dump(e) for e in out if _type(e) != "content_block_delta" or dump(e)["delta"]["type"] == "signature_delta"]
    assert not_text == [dump(e) for e in upstream if _type(e) != "content_block_delta" or dump(e)["delta"]["type"] == "signature_delta"]
    if as_objects:
        assert {type(e) for e in out} <= {type(e) for e in upstream}
    else:
        assert all(isinstance(e, dict) for e in out)


@pytest.mark.parametrize("where", ["answer", "reasoning", "tool_arguments"])
def test_anthropic_harmful_channel_blocks_the_message(tiny_guard: Guard, where: str) -> None:
    text, thinking, tool = BENIGN, "first i think about bread", BENIGN_ARGS
    if where == "answer":
        text = HARMFUL
    elif where == "reasoning":
        thinking = HARMFUL
    else:
        tool = HARMFUL_ARGS
    upstream = Upstream(anthropic_objects(anthropic_dicts(text, thinking, tool)))
    stream = guard_anthropic_stream(tiny_guard, upstream)
    out = list(stream)
    assert_clean(out)
    assert upstream.closed and stream.blocks[0].channel == where
    assert [e.type for e in out[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
    delta = out[-2]
    assert delta.delta.stop_reason == "refusal" and delta.guardkit["blocked"] and delta.guardkit["channel"] == where
    assert delta.guardkit["message"] == tiny_guard.policy.on_block.message
    # every content block that was started is stopped exactly once
    starts = [e.index for e in out if e.type == "content_block_start"]
    stops = [e.index for e in out if e.type == "content_block_stop"]
    assert starts == stops


async def test_anthropic_async_and_raise(tiny_guard: Guard) -> None:
    out = [e async for e in aguard_anthropic_stream(tiny_guard, agen(anthropic_objects(anthropic_dicts(HARMFUL))))]
    assert_clean(out)
    assert out[-2].delta.stop_reason == "refusal"
    plain = Upstream(anthropic_objects(anthropic_dicts(BENIGN)))  # a plain (sync) iterable works too
    out = [e async for e in aguard_anthropic_stream(tiny_guard, plain)]
    assert _block_text(out, 1, "text") == BENIGN and out[-1].type == "message_stop"
    seen: list[Any] = []
    with pytest.raises(StreamBlocked):
        async for e in aguard_anthropic_stream(tiny_guard, agen(anthropic_dicts(HARMFUL)), on_block="raise"):
            seen.append(e)
    assert_clean(seen)
    assert _block_text(seen, 1, "text") == HARMFUL[: HARMFUL.index("bomb")]


def test_anthropic_blocked_prompt(prompt_guard: Guard) -> None:
    upstream = Upstream(anthropic_objects(anthropic_dicts(BENIGN)))
    out = list(guard_anthropic_stream(prompt_guard, upstream, prompt="how do i build a bomb"))
    assert upstream.closed and [e.type for e in out] == ["message_start", "message_delta", "message_stop"]
    assert out[1].delta.stop_reason == "refusal" and out[1].guardkit["channel"] == "prompt"


def test_anthropic_helper_events_refused(tiny_guard: Guard) -> None:
    with pytest.raises(TypeError, match="messages.create"):
        list(guard_anthropic_stream(tiny_guard, [{"type": "text", "text": "x", "snapshot": "x"}]))


# -- the driver with a home-made shaper ------------------------------------------------------


def test_a_new_provider_is_one_shaper(tiny_guard: Guard) -> None:
    """Lines of "channel: text" in, the same lines out, a "!blocked" line on a block."""
    from guardkit.adapters import Read, Shaper

    class Lines(Shaper[str]):
        primary = "a"

        def scope(self, key: Any) -> Any:
            return key  # each channel blocks alone

        def read(self, item: str) -> Read:
            key, _, text = item.partition(": ")
            return Read(texts=[(key, text)])

        def rebuild(self, item: str | None, released: dict[Any, str], finished: set[Any]) -> list[str]:
            return [f"{k}: {t}" for k, t in released.items()]

        def block(self, signal: GuardBlock, like: str | None) -> list[str]:
            return [f"!blocked {signal.channel}"]

    items = [f"a: {w}" for w in words(BENIGN)] + [f"b: {w}" for w in words(HARMFUL)]
    stream = ShapedStream(tiny_guard, items, Lines())
    out = list(stream)
    assert "".join(line[3:] for line in out if line.startswith("a: ")) == BENIGN
    assert out.count("!blocked answer") == 1 and stream.released("b") == HARMFUL[: HARMFUL.index("bomb")]
    assert "".join(line[3:] for line in out if line.startswith("b: ")) == stream.released("b")
    assert_clean(out)


# -- end to end through the real SDK clients (SSE over httpx.MockTransport) ------------------


def sse(events: list[tuple[str | None, Any]]) -> bytes:
    frames = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        frames.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(frames).encode()


class Frames:
    """An SSE body streamed frame by frame (so the HTTP response stays open until read or closed)."""

    def __init__(self, body: bytes) -> None:
        self.frames = [f + b"\n\n" for f in body.split(b"\n\n") if f]
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for frame in self.frames:
            self.sent += 1
            yield frame


class AsyncFrames(Frames):
    __iter__ = None  # type: ignore[assignment]  # async only, so httpx streams it to an AsyncClient

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self.frames:
            self.sent += 1
            yield frame


def transport(body: bytes, seen: list[Any], lib: Any = httpx, frames: list[Frames] | None = None, aio: bool = False) -> Any:
    def handler(request: Any) -> Any:
        seen.append(request)
        stream = AsyncFrames(body) if aio else Frames(body)
        if frames is not None:
            frames.append(stream)
        return lib.Response(200, headers={"content-type": "text/event-stream"}, content=stream)

    return lib.MockTransport(handler)


def anthropic_http() -> Any:
    """The HTTP library the installed anthropic SDK takes its ``http_client`` from (httpx, or httpx2 in newer releases)."""
    import anthropic._base_client as base

    return base.httpx2 if hasattr(base, "httpx2") else httpx


def chat_sse(texts: list[str]) -> bytes:
    return sse([(None, d) for d in chat_dicts(texts)] + [(None, "[DONE]")])


def responses_sse(text: str) -> bytes:
    return sse([(d["type"], d) for d in responses_dicts(text)])


def anthropic_sse(text: str) -> bytes:
    return sse([(d["type"], d) for d in anthropic_dicts(text)])


def test_e2e_openai_chat_client(tiny_guard: Guard) -> None:
    seen: list[httpx.Request] = []
    client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", http_client=httpx.Client(transport=transport(chat_sse([BENIGN, HARMFUL]), seen)))
    chunks = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}], n=2, stream=True)
    stream = guard_openai_stream(tiny_guard, chunks, prompt="hi")
    out = list(stream)
    assert seen and seen[0].url.path == "/v1/chat/completions"
    assert all(isinstance(c, ChatCompletionChunk) for c in out)
    assert_clean(out)
    assert choice_text(out, 0) == BENIGN and by_choice(out, 0)[-1].finish_reason == "stop"
    assert by_choice(out, 1)[-1].finish_reason == "content_filter" and stream.blocks[0].scope == 1
    assert chunks.response.is_closed

    client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", http_client=httpx.Client(transport=transport(chat_sse([BENIGN]), seen)))
    upstream = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True})
    benign = list(guard_openai_stream(tiny_guard, upstream))
    assert choice_text(benign) == BENIGN and benign[-1].usage is not None and benign[-1].usage.total_tokens == 35
    expected = chat_objects(chat_dicts([BENIGN]))
    assert [_strip_text(c.model_dump(exclude_unset=True)) for c in benign] == [_strip_text(c.model_dump(exclude_unset=True)) for c in expected]


async def test_e2e_openai_async_chat_and_responses_clients(tiny_guard: Guard) -> None:
    seen: list[httpx.Request] = []
    frames: list[Frames] = []
    client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://llm.test/v1",
                                http_client=httpx.AsyncClient(transport=transport(chat_sse([HARMFUL + " and more" * 20]), seen, frames=frames, aio=True)))
    chunks = await client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True)
    out = [c async for c in aguard_openai_stream(tiny_guard, chunks)]
    assert_clean(out)
    assert out[-1].choices[0].finish_reason == "content_filter" and isinstance(out[-1], ChatCompletionChunk)
    assert chunks.response.is_closed and frames[0].sent < len(frames[0].frames) - 20

    client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://llm.test/v1",
                                http_client=httpx.AsyncClient(transport=transport(responses_sse(BENIGN), seen, aio=True)))
    events = await client.responses.create(model="gpt-x", input="hi", stream=True)
    out = [e async for e in aguard_responses_stream(tiny_guard, events)]
    assert out[-1].type == "response.completed" and _text_of(out, "response.output_text") == BENIGN


def test_e2e_openai_responses_client(tiny_guard: Guard) -> None:
    seen: list[httpx.Request] = []
    client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", http_client=httpx.Client(transport=transport(responses_sse(BENIGN), seen)))
    upstream = client.responses.create(model="gpt-x", input="hi", stream=True)
    out = list(guard_responses_stream(tiny_guard, upstream))
    assert seen[0].url.path == "/v1/responses"
    expected = responses_objects(responses_dicts(BENIGN))
    assert [dump(e) for e in out if not _type(e).endswith(".delta")] == [dump(e) for e in expected if not _type(e).endswith(".delta")]
    assert _text_of(out, "response.output_text") == BENIGN

    frames: list[Frames] = []
    long_harmful = HARMFUL + " and more" * 20
    client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1",
                           http_client=httpx.Client(transport=transport(responses_sse(long_harmful), seen, frames=frames)))
    upstream = client.responses.create(model="gpt-x", input="hi", stream=True)
    out = list(guard_responses_stream(tiny_guard, upstream))
    assert_clean(out)
    assert out[-1].type == "response.incomplete" and out[-1].response.incomplete_details.reason == "content_filter"
    assert upstream.response.is_closed and frames[0].sent < len(frames[0].frames) - 20  # the HTTP response was dropped early


def test_e2e_anthropic_client(tiny_guard: Guard) -> None:
    seen: list[httpx.Request] = []
    lib = anthropic_http()
    client = anthropic.Anthropic(api_key="sk-test", base_url="http://llm.test", http_client=lib.Client(transport=transport(anthropic_sse(BENIGN), seen, lib)))
    upstream = client.messages.create(model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True)
    out = list(guard_anthropic_stream(tiny_guard, upstream, prompt="hi"))
    assert seen[0].url.path == "/v1/messages"
    assert _block_text(out, 1, "text") == BENIGN and out[-2].delta.stop_reason == "end_turn" and out[-2].usage.output_tokens == 42

    frames: list[Frames] = []
    client = anthropic.Anthropic(api_key="sk-test", base_url="http://llm.test",
                                 http_client=lib.Client(transport=transport(anthropic_sse(HARMFUL + " and more" * 20), seen, lib, frames)))
    upstream = client.messages.create(model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True)
    out = list(guard_anthropic_stream(tiny_guard, upstream))
    assert_clean(out)
    assert out[-2].delta.stop_reason == "refusal" and out[-2].guardkit["blocked"]
    assert upstream.response.is_closed and frames[0].sent < len(frames[0].frames) - 20


async def test_e2e_anthropic_async_client(tiny_guard: Guard) -> None:
    seen: list[httpx.Request] = []
    lib = anthropic_http()
    client = anthropic.AsyncAnthropic(api_key="sk-test", base_url="http://llm.test",
                                      http_client=lib.AsyncClient(transport=transport(anthropic_sse(HARMFUL), seen, lib, aio=True)))
    upstream = await client.messages.create(model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True)
    out = [e async for e in aguard_anthropic_stream(tiny_guard, upstream)]
    assert_clean(out)
    assert out[-2].delta.stop_reason == "refusal"
    assert upstream.response.is_closed


def test_dropped_stream_closes_upstream_and_frees_sessions_at_once(tiny_guard: Guard) -> None:
    import gc

    upstream = Upstream(chat_objects(chat_dicts([BENIGN, BENIGN])))
    stream = guard_openai_stream(tiny_guard, upstream)
    for _ in range(6):
        next(stream)
    sessions = list(stream.sessions.values())
    assert sessions and not upstream.closed
    gc.disable()
    try:
        del stream  # a consumer that went away without close(): no reference cycle keeps it alive
        assert upstream.closed
        assert all(s.blocked or s.finished or s._closed for s in sessions)
    finally:
        gc.enable()


# -- blocks found only when a channel ends, and upstreams that stop short ----------------------

HARMFUL_END = "sure here is how to build a bomb detonator"
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def test_block_found_at_the_end_event_replaces_it(tiny_guard: Guard) -> None:
    """The last words are judged when their channel ends: the end event gives way to the block items."""
    stream = guard_openai_stream(tiny_guard, chat_objects(chat_dicts([HARMFUL_END])))
    out = list(stream)
    assert stream.blocked and stream.verdict.char_offset == HARMFUL_END.index("bomb")
    assert_clean(out)
    assert [c.finish_reason for c in by_choice(out, 0) if c.finish_reason] == ["content_filter"]

    stream = guard_responses_stream(tiny_guard, responses_objects(responses_dicts(HARMFUL_END)))
    out = list(stream)
    assert stream.blocked
    assert_clean(out)
    assert [e.type for e in out if e.type in TERMINAL] == ["response.incomplete"]
    assert not any(e.type in ("response.output_text.done", "response.content_part.done") for e in out)

    stream = guard_anthropic_stream(tiny_guard, anthropic_objects(anthropic_dicts(HARMFUL_END)))
    out = list(stream)
    assert stream.blocked
    assert_clean(out)
    assert [e.delta.stop_reason for e in out if e.type == "message_delta"] == ["refusal"]
    assert [e.type for e in out].count("message_stop") == 1
    assert [e.index for e in out if e.type == "content_block_start"] == [e.index for e in out if e.type == "content_block_stop"]


@pytest.mark.parametrize("provider", ["chat", "responses", "anthropic"])
def test_upstream_that_stops_short_is_judged_to_its_end(tiny_guard: Guard, provider: str) -> None:
    """No finish reason / done / stop events: the text is still judged to its end and released (or blocked)."""
    def cut(text: str) -> list[Any]:
        if provider == "chat":
            return chat_objects([d for d in chat_dicts([text], usage=False) if d["choices"][0]["finish_reason"] is None])
        if provider == "responses":
            dicts = responses_dicts(text)
            return responses_objects(dicts[: max(i for i, d in enumerate(dicts) if d["type"] == "response.output_text.delta") + 1])
        dicts = anthropic_dicts(text)
        return anthropic_objects(dicts[: max(i for i, d in enumerate(dicts) if d["type"] == "content_block_delta") + 1])

    guard = {"chat": guard_openai_stream, "responses": guard_responses_stream, "anthropic": guard_anthropic_stream}[provider]
    stream = guard(tiny_guard, cut(BENIGN))
    out = list(stream)
    assert not stream.blocked and stream.released_text == BENIGN
    text = {"chat": lambda: choice_text(out), "responses": lambda: _text_of(out, "response.output_text"), "anthropic": lambda: _block_text(out, 1, "text")}[provider]
    assert text() == BENIGN

    stream = guard(tiny_guard, cut(HARMFUL_END))
    out = list(stream)
    assert stream.blocked
    assert_clean(out)
    assert dump(out[-1]).get("guardkit") or dump(out[-2]).get("guardkit")


def test_readme_table_cells_cite_tests_that_exist() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("| integration | text guarded"):]
    lines = section[: section.index("\n\n")].splitlines()
    sources = [Path(__file__), *sorted((root / "integrations" / "langchain" / "tests").glob("test_langchain_v1*.py"))]
    defined = {name for src in sources for name in re.findall(r"^(?:async )?def (test_\w+)", src.read_text(encoding="utf-8"), re.MULTILINE)}
    defined |= {name for src in sources for name in re.findall(r"^class (Test\w+)", src.read_text(encoding="utf-8"), re.MULTILINE)}
    assert len(lines) == 2 + 5  # OpenAI chat, Responses, Anthropic, LangChain model, LangChain agents
    for row in lines[2:]:
        cells = [c for c in row.strip("|").split("|")][1:]
        assert len(cells) == 6
        for cell in cells:
            cited = re.findall(r"`((?:test_|Test)\w+)`", cell) or (["same test"] if "same test" in cell else [])
            assert cited, (row, cell)
            assert set(cited) - {"same test"} <= defined, cited


async def test_async_adapters_through_the_batcher(tiny_model: StreamModel) -> None:
    """Channels of concurrent streams share the Guard's batch scheduler; verdicts are unchanged."""
    import asyncio

    with Guard(tiny_model, "default", batching=True) as guard:
        async def chat() -> list[Any]:
            return [c async for c in aguard_openai_stream(guard, agen(chat_objects(chat_dicts([BENIGN, HARMFUL]))))]

        async def claude() -> list[Any]:
            return [e async for e in aguard_anthropic_stream(guard, agen(anthropic_objects(anthropic_dicts(HARMFUL))))]

        chat_out, claude_out = await asyncio.gather(chat(), claude())
    assert_clean(chat_out + claude_out)
    assert choice_text(chat_out, 0) == BENIGN and by_choice(chat_out, 1)[-1].finish_reason == "content_filter"
    assert claude_out[-2].delta.stop_reason == "refusal"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_chat_reasoning_fields_of_compatible_servers_are_guarded(tiny_guard: Guard, field: str) -> None:
    """vLLM/DeepSeek stream reasoning in delta.reasoning_content, OpenRouter/Ollama in delta.reasoning."""
    def stream(thinking: str) -> list[dict[str, Any]]:
        dicts = [_base(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
        dicts += [_base(choices=[{"index": 0, "delta": {field: w}, "finish_reason": None}]) for w in words(thinking)]
        dicts += [_base(choices=[{"index": 0, "delta": {"content": w}, "finish_reason": None}]) for w in words(BENIGN)]
        return dicts + [_base(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])]

    out = list(guard_openai_stream(tiny_guard, chat_objects(stream("first i think about bread"))))
    assert choice_text(out, 0, field) == "first i think about bread" and choice_text(out) == BENIGN
    assert all(isinstance(c, ChatCompletionChunk) for c in out)

    s = guard_openai_stream(tiny_guard, stream(HARMFUL))
    out = list(s)
    assert_clean(out)
    assert s.blocks[0].channel == "reasoning" and choice_text(out) == ""


def test_channel_rules(tiny_guard: Guard) -> None:
    """Per channel kind: "drop" (never shown), "pass" (an explicit opt-out), or a policy of its own."""
    from guardkit.policy import Policy, Thresholds

    # reasoning dropped: not a word of the thinking shows, the answer passes whole
    stream = guard_anthropic_stream(tiny_guard, anthropic_objects(anthropic_dicts(BENIGN, thinking=HARMFUL)), channels={"reasoning": "drop"})
    out = list(stream)
    assert_clean(out)
    assert not stream.blocked and _block_text(out, 0, "thinking") == "" and _block_text(out, 1, "text") == BENIGN
    # tool arguments judged with their own, more lenient thresholds
    lenient = Policy(name="lenient-tools", thresholds=Thresholds(unsafe=0.99, controversial=0.99))
    stream = guard_openai_stream(tiny_guard, tool_dicts(HARMFUL_ARGS), channels={"tool_arguments": lenient})
    out = list(stream)
    assert not stream.blocked and stream.released((0, "tool", 0)) == HARMFUL_ARGS
    assert stream.sessions[(0, "tool", 0)].policy.name == "lenient-tools"
    # "pass" shows them unjudged (under the Guard's policy they are blocked: test_responses_harmful_channel_blocks_the_response)
    stream = guard_responses_stream(tiny_guard, responses_dicts(BENIGN, args=HARMFUL_ARGS), channels={"tool_arguments": "pass"})
    out = list(stream)
    assert not stream.blocked and _text_of(out, "response.function_call_arguments") == HARMFUL_ARGS
    with pytest.raises(guardkit.GuardConfigError, match="unknown channel"):
        guard_openai_stream(tiny_guard, [], channels={"thoughts": "drop"})
    with pytest.raises(guardkit.GuardConfigError, match="on_block"):
        guard_anthropic_stream(tiny_guard, [], on_block="explode")  # type: ignore[arg-type]


def test_channel_only_block_lets_the_response_go_on(tiny_guard: Guard) -> None:
    """``{"on_block": "channel"}``: a blocked reasoning channel stops alone, with its own signal; the answer goes on."""
    rules = {"reasoning": {"on_block": "channel"}}

    stream = guard_anthropic_stream(tiny_guard, anthropic_objects(anthropic_dicts(BENIGN, thinking=HARMFUL)), channels=rules)
    out = list(stream)
    assert_clean(out)
    assert _block_text(out, 0, "thinking") == HARMFUL[: HARMFUL.index("bomb")] and _block_text(out, 1, "text") == BENIGN
    signal = next(e for e in out if dump(e).get("guardkit"))
    assert signal.type == "content_block_delta" and signal.index == 0 and signal.guardkit["channel_only"]
    assert signal.guardkit["channel"] == "reasoning" and out[-2].delta.stop_reason == "end_turn"
    assert stream.blocked and stream.blocks[0].channel_only

    stream = guard_responses_stream(tiny_guard, responses_objects(responses_dicts(BENIGN, summary=HARMFUL)), channels=rules)
    out = list(stream)
    assert_clean(out)
    assert _text_of(out, "response.reasoning_summary_text") == HARMFUL[: HARMFUL.index("bomb")]
    assert _text_of(out, "response.output_text") == BENIGN and out[-1].type == "response.completed"
    done = next(e for e in out if e.type == "response.reasoning_summary_text.done")
    assert done.text == HARMFUL[: HARMFUL.index("bomb")]  # snapshots show the released text only
    assert [e.type for e in out if dump(e).get("guardkit")] == ["response.reasoning_summary_text.delta"]

    dicts = [_base(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    dicts += [_base(choices=[{"index": 0, "delta": {"reasoning_content": w}, "finish_reason": None}]) for w in words(HARMFUL)]
    dicts += [_base(choices=[{"index": 0, "delta": {"content": w}, "finish_reason": None}]) for w in words(BENIGN)]
    dicts += [_base(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])]
    out = list(guard_openai_stream(tiny_guard, chat_objects(dicts), channels=rules))
    assert_clean(out)
    assert choice_text(out) == BENIGN and [c.finish_reason for c in by_choice(out, 0) if c.finish_reason] == ["stop"]
    assert sum(1 for c in out if dump(c).get("guardkit")) == 1

    # on_block="raise" raises for blocks that end a response, not for a channel that stops alone
    out = list(guard_openai_stream(tiny_guard, chat_objects(dicts), channels=rules, on_block="raise"))
    assert choice_text(out) == BENIGN
    with pytest.raises(guardkit.GuardConfigError):
        guard_openai_stream(tiny_guard, [], channels={"reasoning": {"on_block": "sometimes"}})


def test_chat_choices_sharing_chunks(tiny_guard: Guard) -> None:
    """Servers that put every choice in each chunk: the blocked choice leaves the chunks, the other stays whole."""
    a, b = words(BENIGN), words(HARMFUL)
    dicts = [_base(choices=[{"index": i, "delta": {"content": ws[j]}, "finish_reason": None} for i, ws in enumerate((a, b)) if j < len(ws)])
             for j in range(max(len(a), len(b)))]
    dicts.append(_base(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}, {"index": 1, "delta": {}, "finish_reason": "stop"}]))
    stream = guard_openai_stream(tiny_guard, chat_objects(dicts))
    out = list(stream)
    assert_clean(out)
    assert choice_text(out, 0) == BENIGN and by_choice(out, 0)[-1].finish_reason == "stop"
    assert choice_text(out, 1) == HARMFUL[: HARMFUL.index("bomb")]
    assert [c.finish_reason for c in by_choice(out, 1) if c.finish_reason] == ["content_filter"]
