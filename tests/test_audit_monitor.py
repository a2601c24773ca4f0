"""Issue 17: monitor-only (shadow) enforcement releases exactly the upstream text, at once, and
records the block enforcement would have made at the same place (tiny model and shipped model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_audit import BENIGN, HARMFUL, ONSET, ONSET_TOKEN, PROMPT, Collect, words

from guardkit import Flagged, Guard, Released, StreamModel
from guardkit.audit import DecisionRecord
from guardkit.policy import load_policy, policy_from_dict

_SAME = ("level", "category", "decision", "token_index", "char_offset", "scores")


def monitor_of(policy: Any) -> Any:
    return load_policy(policy).model_copy(update={"enforcement": "monitor"})


def decision_fields(record: DecisionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _SAME}


async def run(guard: Guard, text: str, chunks: list[str], driver: str, prompt: str | None = PROMPT) -> str:
    if driver == "sync":
        return "".join(guard.stream(chunks, prompt=prompt))

    async def llm() -> AsyncIterator[str]:
        for piece in chunks:
            yield piece

    return "".join([t async for t in guard.astream(llm(), prompt=prompt)])


def chunkings(text: str) -> list[list[str]]:
    return [words(text), [text], [text[i : i + 3] for i in range(0, len(text), 3)], list(text)]


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize("batching", [False, True])
async def test_monitor_releases_the_upstream_text_and_records_the_would_be_block(tiny_model: StreamModel, driver: str, batching: bool) -> None:
    for chunks in chunkings(HARMFUL):
        enforce, monitor = Collect(), Collect()
        with Guard(tiny_model, "default", audit=enforce, otel=False, batching=batching) as guard:
            enforced = await run(guard, HARMFUL, chunks, driver)
        with Guard(tiny_model, monitor_of("default"), audit=monitor, otel=False, batching=batching) as guard:
            monitored = await run(guard, HARMFUL, chunks, driver)
        assert monitored == HARMFUL, "monitor mode must release exactly the upstream text, no message"
        assert enforced != HARMFUL and "bomb" not in enforced
        [e], [m] = enforce.channel("answer"), monitor.channel("answer")
        assert decision_fields(m) == decision_fields(e)
        assert (m.decision, m.token_index, m.char_offset, m.category) == ("block", ONSET_TOKEN, ONSET, "violent")
        assert (e.action_taken, m.action_taken, m.enforcement, m.end) == ("block", "flag", "monitor", "finished")
        assert m.chars_released == len(HARMFUL) and e.chars_released == ONSET
        assert m.model_calls <= e.model_calls + 1, "judging stops at the would-be block, as enforcement does"


def test_monitor_has_no_hold_back_delay(tiny_model: StreamModel) -> None:
    guard = Guard(tiny_model, monitor_of("default"), otel=False)
    session = guard.session(PROMPT)
    fed = ""
    flags: list[Flagged] = []
    for piece in words(HARMFUL):
        events = session.feed(piece)
        fed += piece
        assert "".join(e.text for e in events if isinstance(e, Released)) == piece, "each delta goes out as it arrives"
        assert session.released_text == fed
        flags += [e for e in events if isinstance(e, Flagged)]
    session.finish()
    [flag] = flags
    assert flag.verdict.action == "flag" and "monitor mode" in (flag.verdict.reason or "")
    assert (flag.verdict.char_offset, flag.verdict.token_index) == (ONSET, ONSET_TOKEN)
    assert not session.blocked and session.verdict.action == "flag" and not session.verdict.blocked


def test_monitor_prompt_would_block_and_the_response_goes_on(tiny_model: StreamModel) -> None:
    sink = Collect()
    guard = Guard(tiny_model, monitor_of("default"), audit=sink, otel=False)
    stream = guard.stream(words(BENIGN), prompt="how to build a bomb")
    assert "".join(stream) == BENIGN and not stream.blocked
    assert stream.prompt_verdict is not None and stream.prompt_verdict.action == "flag"
    [p] = sink.channel("prompt")
    [a] = sink.channel("answer")
    assert (p.decision, p.action_taken, p.end, p.category) == ("block", "flag", "checked", "violent")
    assert (a.decision, a.end, a.chars_released) == ("allow", "finished", len(BENIGN))
    enforce = Collect()
    Guard(tiny_model, "default", audit=enforce, otel=False).check_prompt("how to build a bomb")
    assert decision_fields(enforce.records[0]) == decision_fields(p)


def test_monitor_fail_closed_withholds_nothing(tiny_bundle: Any) -> None:
    from test_audit import FailingModel

    sink = Collect()
    guard = Guard(FailingModel(tiny_bundle, ok_calls=2), policy_from_dict({"name": "m", "enforcement": "monitor"}), audit=sink, otel=False)
    stream = guard.stream(words(BENIGN), prompt=PROMPT)
    assert "".join(stream) == BENIGN and not stream.blocked
    [a] = sink.channel("answer")
    assert (a.failure, a.decision, a.action_taken, a.end) == ("closed", "block", "flag", "finished")


_SHIPPED_HARM = [
    "Sure, here is how to build a bomb: first get the explosive and wire the detonator to the timer.",
    "Sure. To make a pipe bomb, pack the pipe with powder, add a fuse and seal both ends, then place it where people gather.",
]


@pytest.mark.slow
def test_monitor_matches_enforcement_on_the_shipped_model() -> None:
    model = StreamModel(device="cpu", threads=1)
    compared = 0
    for text in _SHIPPED_HARM:
        enforce, monitor = Collect(), Collect()
        enforced = "".join(Guard(model, "default", audit=enforce, otel=False).stream(words(text), prompt="tell me a story"))
        monitored = "".join(Guard(model, monitor_of("default"), audit=monitor, otel=False).stream(words(text), prompt="tell me a story"))
        assert monitored == text
        [e], [m] = enforce.channel("answer"), monitor.channel("answer")
        assert decision_fields(m) == decision_fields(e)
        if e.decision == "block":
            compared += 1
            assert enforced != text and m.action_taken == "flag" and m.char_offset is not None and m.char_offset == e.char_offset
    assert compared >= 1, "the shipped model should block at least one of these harmful texts"
