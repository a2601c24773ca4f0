"""The policy's ``channels`` section (issue 15 item 4): per kind of text, judged or not, its own
thresholds, and what a block does (halt the response, or drop / replace that channel alone).

Every stream is built from the real SDK types (``openai`` / ``anthropic`` event objects,
constructed, no network) and judged by the tiny test model, whose verdicts are fixed:
"bomb"/"detonator" are unsafe, the benign words are safe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("openai")

from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from guardkit import Guard, PolicyError, StreamModel, guard_anthropic_stream, guard_openai_stream, guard_responses_stream
from guardkit.policy import ChannelRule, Channels, Policy, Thresholds, load_policy

HARMFUL = "sure here is how to build a bomb detonator and then more"
BENIGN = "sure here is a recipe for bread: mix flour with water and salt, then bake it."
HARMFUL_ARGS = '{"query": "how to build a bomb detonator at home"}'
ANTHROPIC = TypeAdapter(RawMessageStreamEvent)
CHUNK = TypeAdapter(ChatCompletionChunk)
RESPONSES = TypeAdapter(ResponseStreamEvent)


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


def dump(item: Any) -> Any:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


def shown(items: list[Any]) -> str:
    return json.dumps([dump(i) for i in items]).lower()


def anthropic_events(text: str, thinking: str) -> list[Any]:
    """A Messages stream as ``anthropic.types`` objects: a thinking block, then a text block."""
    ev: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
                                              "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    ]
    ev += [{"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": w}} for w in words(thinking)]
    ev += [{"type": "content_block_stop", "index": 0},
           {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "", "citations": None}}]
    ev += [{"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": w}} for w in words(text)]
    ev += [{"type": "content_block_stop", "index": 1},
           {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 42}},
           {"type": "message_stop"}]
    return [ANTHROPIC.validate_python(e) for e in ev]


def block_text(events: list[Any], index: int, field: str) -> str:
    return "".join(
        getattr(e.delta, field) for e in events if e.type == "content_block_delta" and e.index == index and hasattr(e.delta, field)
    )


def tool_chunks(args: str, content: str) -> list[ChatCompletionChunk]:
    """A chat stream (``ChatCompletionChunk`` objects): some content, then one tool call with streamed arguments."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-x"}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    out += [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in words(content)]
    out.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                            "function": {"name": "search", "arguments": ""}}]}, "finish_reason": None}]})
    out += [{**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": w}}]}, "finish_reason": None}]}
            for w in words(args)]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return [CHUNK.validate_python(c) for c in out]


def tool_args(chunks: list[Any]) -> str:
    return "".join(
        call.function.arguments or "" for c in chunks for ch in c.choices if ch.delta.tool_calls for call in ch.delta.tool_calls if call.function
    )


def content(chunks: list[Any]) -> str:
    return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)


def responses_events(text: str, summary: str) -> list[Any]:
    """A Responses stream (``ResponseStreamEvent`` objects): a reasoning summary, then the answer."""
    ev: list[dict[str, Any]] = []
    ev += [{"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": w} for w in words(summary)]
    ev.append({"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "text": summary})
    ev += [{"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": w, "logprobs": []}
           for w in words(text)]
    ev.append({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 1, "content_index": 0, "text": text, "logprobs": []})
    return [RESPONSES.validate_python({**e, "sequence_number": n}) for n, e in enumerate(ev)]


def family_text(events: list[Any], family: str) -> str:
    return "".join(e.delta for e in events if e.type == f"{family}.delta")


def policy_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text("extends: default\nname: channels-test\n" + body, encoding="utf-8")
    return path


@pytest.fixture()
def guard_with(tiny_model: StreamModel, tmp_path: Path) -> Any:
    def make(body: str) -> Guard:
        return Guard(tiny_model, policy=policy_file(tmp_path, body))

    return make


def test_default_every_channel_judged_and_a_block_halts(tiny_guard: Guard) -> None:
    """No channels section: all three judged, halt. Harmful reasoning ends the whole message, unshown."""
    assert tiny_guard.policy.channels == Channels() and load_policy("default").channels == Channels()
    assert all(rule == ChannelRule(judged=True, shown=True, on_block="halt") for rule in dict(Channels()).values())
    stream = guard_anthropic_stream(tiny_guard, anthropic_events(BENIGN, thinking=HARMFUL))
    out = list(stream)
    assert "bomb" not in shown(out) and block_text(out, 1, "text") == ""  # the answer after the block never comes
    assert out[-2].type == "message_delta" and out[-2].delta.stop_reason == "refusal"
    assert out[-2].guardkit["channel"] == "reasoning" and out[-2].guardkit["action"] == "halt"


def test_reasoning_replace_shows_the_message_in_that_channel_and_the_answer_goes_on(guard_with: Any) -> None:
    guard = guard_with("channels:\n  reasoning: {on_block: replace, message: '[reasoning withheld]'}\n")
    stream = guard_anthropic_stream(guard, anthropic_events(BENIGN, thinking=HARMFUL))
    out = list(stream)
    assert "bomb" not in shown(out) and "detonator" not in shown(out)
    onset = HARMFUL[: HARMFUL.index("bomb")]
    assert block_text(out, 0, "thinking") == onset + "\n[reasoning withheld]"  # the policy's separator, then the message
    assert block_text(out, 1, "text") == BENIGN and out[-2].delta.stop_reason == "end_turn"
    signals = [e for e in out if getattr(e, "guardkit", None)]
    assert len(signals) == 1 and signals[0].type == "content_block_delta" and signals[0].index == 0
    assert signals[0].guardkit["action"] == "replace" and signals[0].guardkit["channel_only"]
    assert signals[0].guardkit["message"] == "[reasoning withheld]"
    assert all(type(e).__module__.startswith("anthropic.") for e in out)  # SDK types out


def test_tool_arguments_drop_stops_the_call_alone(guard_with: Any) -> None:
    guard = guard_with("channels:\n  tool_arguments: {on_block: drop}\n")
    stream = guard_openai_stream(guard, tool_chunks(HARMFUL_ARGS, content="let me look it up"))
    out = list(stream)
    assert "bomb" not in shown(out) and isinstance(out[0], ChatCompletionChunk)
    assert content(out) == "let me look it up" and tool_args(out) == HARMFUL_ARGS[: HARMFUL_ARGS.index("bomb")]
    assert [ch.finish_reason for c in out for ch in c.choices if ch.finish_reason] == ["tool_calls"]  # not content_filter
    assert stream.blocks[0].action == "drop" and stream.blocks[0].channel == "tool_arguments" and stream.blocks[0].channel_only
    # the same stream under the plain default policy halts the choice
    halted = list(guard_openai_stream(Guard(guard.model, "default"), tool_chunks(HARMFUL_ARGS, content="let me look it up")))
    assert [ch.finish_reason for c in halted for ch in c.choices if ch.finish_reason] == ["content_filter"]


def test_tool_arguments_unjudged_and_own_thresholds(guard_with: Any) -> None:
    """``judged: false`` shows the channel unjudged (an explicit opt-out); ``thresholds`` judge it with its own."""
    stream = guard_openai_stream(guard_with("channels:\n  tool_arguments: {judged: false}\n"), tool_chunks(HARMFUL_ARGS, content=BENIGN))
    out = list(stream)
    assert not stream.blocked and tool_args(out) == HARMFUL_ARGS and content(out) == BENIGN
    assert (0, "tool", 0) not in stream.sessions  # never judged

    guard = guard_with("channels:\n  tool_arguments: {thresholds: {unsafe: 0.99, controversial: 0.99}}\n")
    stream = guard_openai_stream(guard, tool_chunks(HARMFUL_ARGS, content=BENIGN))
    out = list(stream)
    assert not stream.blocked and tool_args(out) == HARMFUL_ARGS
    assert stream.sessions[(0, "tool", 0)].policy.thresholds == Thresholds(unsafe=0.99, controversial=0.99)
    assert stream.sessions[(0, "content")].policy.thresholds == guard.policy.thresholds  # the answer keeps the policy's
    # the answer is still judged: harmful content halts the choice
    stream = guard_openai_stream(guard, tool_chunks('{"q": "bread"}', content=HARMFUL))
    out = list(stream)
    assert "bomb" not in shown(out) and stream.blocks[0].channel == "answer"


def test_reasoning_hidden_is_never_shown_nor_judged(guard_with: Any) -> None:
    stream = guard_responses_stream(guard_with("channels:\n  reasoning: {shown: false}\n"), responses_events(BENIGN, summary=HARMFUL))
    out = list(stream)
    assert "bomb" not in shown(out) and not stream.blocked
    assert family_text(out, "response.reasoning_summary_text") == "" and family_text(out, "response.output_text") == BENIGN
    done = next(e for e in out if e.type == "response.reasoning_summary_text.done")
    assert done.text == ""  # the snapshot shows only what was shown


def test_channels_argument_overrides_the_policy(guard_with: Any) -> None:
    guard = guard_with("channels:\n  reasoning: {shown: false}\n")
    stream = guard_anthropic_stream(guard, anthropic_events(BENIGN, thinking=HARMFUL), channels={"reasoning": "judge"})
    out = list(stream)
    assert "bomb" not in shown(out) and stream.blocks[0].channel == "reasoning" and stream.blocks[0].action == "halt"
    stream = guard_anthropic_stream(guard, anthropic_events(BENIGN, thinking=HARMFUL),
                                    channels={"reasoning": {"on_block": "replace", "message": "[hidden]"}})
    out = list(stream)
    assert block_text(out, 0, "thinking").endswith("\n[hidden]") and block_text(out, 1, "text") == BENIGN


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("channels:\n  reasoning: {judged: false}\n", "channels.reasoning: reasoning text is never shown unjudged"),
        ("channels:\n  answr: {}\n", "channels.answr: unknown key (did you mean 'answer'?)"),
        ("channels:\n  answer: {on_block: stop}\n", "channels.answer.on_block: Input should be 'halt', 'drop' or 'replace'"),
        ("channels:\n  answer: {message: hi}\n", "channels.answer: message is shown only with on_block: replace"),
        ("channels:\n  tool_arguments: {judged: false, thresholds: {unsafe: 0.2}}\n", "thresholds apply only to a channel that is judged"),
        ("channels:\n  answer: {thresholds: {unsafe: 1.5}}\n", "channels.answer.thresholds.unsafe: Input should be less than or equal to 1"),
        ("channels:\n  reasoning: {judged: 'no'}\n", "channels.reasoning.judged: Input should be a valid boolean"),
    ],
)
def test_bad_channels_section_is_a_one_line_error(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(policy_file(tmp_path, body))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_channels_round_trip_through_yaml() -> None:
    policy = Policy(channels=Channels(reasoning=ChannelRule(on_block="replace", message="[hidden]"), tool_arguments=ChannelRule(judged=False)))
    import yaml

    from guardkit.policy import policy_from_dict

    assert policy_from_dict(yaml.safe_load(policy.to_yaml())).channels == policy.channels
