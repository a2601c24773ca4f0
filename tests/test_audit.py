"""Issue 17: decision records from every driver, sinks that never break the stream, text only when asked.

The tiny test model reads "bomb" and "detonator" as unsafe (violent), so HARMFUL is blocked at
"bomb" (two consecutive unsafe tokens, the default debounce), and a policy that flags violent
text flags it there instead. Offsets are computed from the text, never copied from a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from guardkit import Guard, GuardConfigError, PolicyError, StreamModel
from guardkit.audit import RECORD_SCHEMA, DecisionRecord, JsonlSink, LoggingSink, ids
from guardkit.audit.records import policy_sha256
from guardkit.audit.summary import summarize_files
from guardkit.policy import load_policy, policy_from_dict

HARMFUL = "sure here is how to build a bomb detonator and then the day"
BENIGN = "sure here is a recipe to bake bread with flour and water"
PROMPT = "please help me"
ONSET = HARMFUL.index("bomb")
ONSET_TOKEN = len(HARMFUL[:ONSET].split())  # the tiny tokenizer: one token per word here
FLAG_VIOLENT = {"name": "flag-violent", "categories": {"violent": {"action": "flag"}}}


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [parts[0]] + [" " + p for p in parts[1:]]


class Collect:
    """A callback sink that keeps the records (thread-safe: batched sessions end on other threads)."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []
        self._lock = threading.Lock()

    def __call__(self, record: DecisionRecord) -> None:
        with self._lock:
            self.records.append(record)

    def channel(self, name: str) -> list[DecisionRecord]:
        return [r for r in self.records if r.channel == name]


async def _drive(guard: Guard, driver: str, text: str, prompt: str | None = PROMPT) -> str:
    if driver == "sync":
        return "".join(guard.stream(words(text), prompt=prompt))
    if driver == "async":
        async def llm() -> AsyncIterator[str]:
            for piece in words(text):
                yield piece

        return "".join([t async for t in guard.astream(llm(), prompt=prompt)])
    if driver == "session":
        session = guard.session(prompt)
        out = []
        for piece in words(text):
            out += session.feed(piece)
        out += session.finish()
        session.close()
        return "".join(getattr(e, "text", "") for e in out)
    if driver == "threads":  # two streams at once through the batcher
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append("".join(guard.stream(words(text), prompt=prompt)))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results[0]
    raise AssertionError(driver)


DRIVERS = [("sync", False), ("async", False), ("session", False), ("sync", True), ("async", True), ("threads", True)]


@pytest.mark.parametrize("driver,batching", DRIVERS)
@pytest.mark.parametrize("case", ["allowed", "flagged", "blocked"])
async def test_every_driver_ends_each_stream_with_one_record(tiny_model: StreamModel, driver: str, batching: bool, case: str) -> None:
    sink = Collect()
    policy = policy_from_dict(FLAG_VIOLENT) if case == "flagged" else "default"
    text = BENIGN if case == "allowed" else HARMFUL
    with Guard(tiny_model, policy, batching=batching, audit=sink, otel=False) as guard:
        released = await _drive(guard, driver, text)
    streams = 2 if driver == "threads" else 1
    answers, prompts = sink.channel("answer"), sink.channel("prompt")
    assert len(answers) == streams and len(prompts) == streams
    for prompt_record in prompts:
        assert prompt_record.end == "checked" and prompt_record.decision == "allow" and prompt_record.chars_seen == len(PROMPT)
    for record in answers:
        assert record.session_id in {p.session_id for p in prompts}
        assert record.policy == guard.policy.name and record.policy_sha256 == policy_sha256(guard.policy)
        assert record.model == tiny_model.manifest.name and len(record.model_sha256) == 64
        assert record.model_calls >= 2 and record.guard_ms > 0
        # a blocked stream stops reading its upstream: the guard saw the text up to the block
        assert record.chars_seen == len(text) if case != "blocked" else ONSET < record.chars_seen <= len(text)
        assert record.text is None and record.failure is None and record.enforcement == "enforce"
        if case == "allowed":
            assert (record.decision, record.action_taken, record.end) == ("allow", "allow", "finished")
            assert record.chars_released == len(text) and record.char_offset is None and record.tokens_judged == len(text.split())
        elif case == "flagged":
            assert (record.decision, record.action_taken, record.end, record.category) == ("flag", "flag", "finished", "violent")
            assert (record.token_index, record.char_offset) == (ONSET_TOKEN, ONSET)
            assert record.flags and record.flags[0]["char_offset"] == ONSET and record.chars_released == len(text)
        else:
            assert (record.decision, record.action_taken, record.end, record.category) == ("block", "block", "blocked", "violent")
            assert (record.token_index, record.char_offset) == (ONSET_TOKEN, ONSET)
            assert record.chars_released == ONSET and HARMFUL[:ONSET] in released and "bomb" not in released
        assert record.per_token_ms == pytest.approx(record.guard_ms / record.tokens_judged, rel=1e-3, abs=1e-3)


class FailingModel(StreamModel):
    """A real model whose steps fail once ``ok_calls`` have run (a runtime fault)."""

    def __init__(self, path: Path, ok_calls: int) -> None:
        super().__init__(path, device="cpu")
        self.ok_calls = ok_calls

    def step(self, state, token_ids, **kwargs):  # type: ignore[no-untyped-def]
        if self.ok_calls <= 0:
            raise RuntimeError("onnxruntime exploded")
        self.ok_calls -= 1
        return super().step(state, token_ids, **kwargs)


@pytest.mark.parametrize("driver", ["sync", "async"])
async def test_failed_closed_and_failed_open_streams_say_so(tiny_bundle: Path, driver: str) -> None:
    closed, opened = Collect(), Collect()
    # call 1 prefills the prompt, call 2 judges the first word, call 3 fails
    guard = Guard(FailingModel(tiny_bundle, ok_calls=2), "default", audit=closed, otel=False)
    released = await _drive(guard, driver, BENIGN)
    [record] = closed.channel("answer")
    assert (record.failure, record.decision, record.action_taken, record.end) == ("closed", "block", "block", "blocked")
    assert record.model_errors == 1 and "exploded" in (record.reason or "")
    first_unjudged = BENIGN.index(" ") + 1  # the first word was judged; the step judging the next one failed
    assert record.char_offset == first_unjudged and record.chars_released == first_unjudged
    assert released.startswith(BENIGN[:first_unjudged])

    guard = Guard(FailingModel(tiny_bundle, ok_calls=2), policy_from_dict({"name": "open", "failure_mode": "open"}), audit=opened, otel=False)
    released = await _drive(guard, driver, BENIGN)
    [record] = opened.channel("answer")
    assert (record.failure, record.decision, record.end) == ("open", "allow", "finished")
    assert record.model_errors >= 1 and record.unjudged_tokens == len(BENIGN.split()) - 1 and released == BENIGN


def test_a_model_error_on_the_prompt_is_the_prompt_record(tiny_bundle: Path) -> None:
    sink = Collect()
    guard = Guard(FailingModel(tiny_bundle, ok_calls=0), "default", audit=sink, otel=False)
    stream = guard.stream(words(BENIGN), prompt=PROMPT)
    assert "".join(stream).endswith(guard.policy.prompt.message) or stream.blocked
    [record] = sink.records  # the stream ended at its prompt: no answer record
    assert (record.channel, record.failure, record.decision, record.end) == ("prompt", "closed", "block", "blocked")


async def test_a_raising_sink_does_not_affect_the_stream(tiny_model: StreamModel, caplog: pytest.LogCaptureFixture) -> None:
    def broken(record: DecisionRecord) -> None:
        raise OSError("disk full")

    good = Collect()
    plain = Guard(tiny_model, "default", otel=False)
    audited = Guard(tiny_model, "default", audit=[broken, good], otel=False)
    with caplog.at_level(logging.ERROR, logger="guardkit.audit"):
        for text in (HARMFUL, BENIGN, HARMFUL):
            expected = list(plain.stream(words(text), prompt=PROMPT))
            assert list(audited.stream(words(text), prompt=PROMPT)) == expected
            assert await _drive(audited, "async", text) == "".join(expected)
    assert len(good.records) == 12  # 6 streams, a prompt and an answer record each
    failures = [r for r in caplog.records if "sink" in r.getMessage() and "failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None  # logged once, with the traceback
    assert audited.auditor is not None and sum(audited.auditor.sink_errors.values()) == 12


def test_checks_give_one_record_each_and_a_blocked_prompt_ends_the_stream(tiny_model: StreamModel) -> None:
    sink = Collect()
    guard = Guard(tiny_model, "default", audit=sink, otel=False)
    guard.check_prompt(PROMPT)
    assert [r.channel for r in sink.records] == ["prompt"]
    sink.records.clear()
    guard.check_response(HARMFUL, prompt=PROMPT)  # the prompt is only context here: no prompt record
    assert [(r.channel, r.decision) for r in sink.records] == [("answer", "block")]
    sink.records.clear()
    stream = guard.stream(words(BENIGN), prompt="how to build a bomb")
    assert list(stream) == [guard.policy.prompt.message]
    [record] = sink.records
    assert (record.channel, record.decision, record.end, record.chars_seen) == ("prompt", "block", "blocked", len("how to build a bomb"))


def test_a_stream_stopped_early_is_recorded_as_closed(tiny_model: StreamModel) -> None:
    sink = Collect()
    stream = Guard(tiny_model, "default", audit=sink, otel=False).stream(words(BENIGN * 3), prompt=PROMPT)
    next(stream)
    next(stream)
    stream.close()
    [record] = sink.channel("answer")
    assert record.end == "closed" and record.decision == "allow" and 0 < record.chars_released < len(BENIGN * 3)


@pytest.mark.parametrize("include", ["none", "excerpt", "full"])
def test_text_only_when_the_policy_asks(tiny_model: StreamModel, include: str) -> None:
    sink = Collect()
    long_harm = "the day is good and " * 20 + HARMFUL
    policy = policy_from_dict({"name": "t", "audit": {"include_text": include}})
    Guard(tiny_model, policy, audit=sink, otel=False).check_response(long_harm)
    [record] = sink.records
    onset = long_harm.index("bomb")
    assert record.char_offset == onset
    if include == "none":
        assert record.text is None and "bomb" not in record.to_json()
    elif include == "full":
        assert record.text == long_harm and record.text_start == 0
    else:
        assert record.text is not None and len(record.text) <= 200 and "bomb" in record.text
        assert long_harm[record.text_start : record.text_start + len(record.text)] == record.text
        assert record.text_start <= onset < record.text_start + len(record.text)


async def test_request_and_conversation_ids(tiny_model: StreamModel) -> None:
    sink = Collect()
    guard = Guard(tiny_model, "default", audit=sink, otel=False)
    list(guard.stream(words(BENIGN), prompt=PROMPT, request_id="r-1", conversation_id="c-1"))

    async def task(n: int) -> None:
        with ids(request_id=f"r-task-{n}", conversation_id="c-2"):
            await asyncio.sleep(0)
            [t async for t in guard.astream(words(BENIGN), prompt=PROMPT)]

    await asyncio.gather(task(1), task(2))
    guard.check_prompt(PROMPT)  # outside any ids block
    pairs = sorted({(r.request_id, r.conversation_id) for r in sink.records}, key=str)
    assert pairs == sorted({("r-1", "c-1"), ("r-task-1", "c-2"), ("r-task-2", "c-2"), (None, None)}, key=str)
    with pytest.raises(TypeError, match="request_id must be str"), ids(request_id=5):  # type: ignore[arg-type]
        pass


def test_record_schema_matches_the_records(tiny_model: StreamModel) -> None:
    sink = Collect()
    guard = Guard(tiny_model, policy_from_dict({"name": "s", "audit": {"include_text": "excerpt"}}), audit=sink, otel=False)
    list(guard.stream(words(HARMFUL), prompt=PROMPT))
    for record in sink.records:
        data = json.loads(record.to_json())
        assert set(data) == set(RECORD_SCHEMA["properties"]) and set(RECORD_SCHEMA["required"]) <= set(data)
        assert DecisionRecord.from_dict(data) == record
    jsonschema = pytest.importorskip("jsonschema")
    for record in sink.records:
        jsonschema.validate(record.to_dict(), RECORD_SCHEMA)


def test_policy_hash_is_of_the_resolved_policy() -> None:
    assert policy_sha256(load_policy("default")) == policy_sha256(load_policy("default"))
    assert policy_sha256(load_policy("default")) != policy_sha256(load_policy("strict"))
    same = policy_from_dict({"extends": "default", "audit": {"include_text": "none"}})
    assert policy_sha256(same) == policy_sha256(policy_from_dict({"extends": "default"}))


@pytest.mark.parametrize("data,message", [
    ({"enforcement": "shadow"}, "enforcement: Input should be 'enforce' or 'monitor'"),
    ({"audit": {"include_text": "some"}}, "audit.include_text: Input should be 'none', 'excerpt' or 'full'"),
    ({"audit": {"text": "full"}}, "audit.text: unknown key"),
])
def test_bad_audit_policy_fields_are_one_line_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy_from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_sinks_are_refused(tiny_model: StreamModel, tmp_path: Path) -> None:
    with pytest.raises(GuardConfigError, match="audit= takes a sink"):
        Guard(tiny_model, audit=42)
    with pytest.raises(GuardConfigError, match="does not exist"):
        JsonlSink(tmp_path / "missing" / "a.jsonl")
    with pytest.raises(GuardConfigError, match="max_bytes"):
        JsonlSink(tmp_path / "a.jsonl", max_bytes=10)


def test_jsonl_sink_rotates_and_keeps_every_line_whole(tiny_model: StreamModel, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, max_bytes=4096, backups=50)
    with Guard(tiny_model, "default", audit=[sink, str(tmp_path / "plain.jsonl")], otel=False) as guard:
        for n in range(12):
            guard.check_response(HARMFUL if n % 3 == 0 else BENIGN)
    # closing the Guard closed the sink it made from a path (all written); the sink object given stays open
    assert len((tmp_path / "plain.jsonl").read_text(encoding="utf-8").splitlines()) == 12
    assert sink.flush()
    files = [path] + sorted(tmp_path.glob("audit.jsonl.*"))
    assert len(files) > 1, "the records were larger than max_bytes: the file must have rotated"
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert all(f.stat().st_size <= 4096 for f in files) and len(lines) == 12
    assert {json.loads(line)["decision"] for line in lines} == {"allow", "block"}
    summary = summarize_files(files)
    assert summary.records == 12 and summary.counts["decision"]["block"] == 4
    sink.close()
    sink.close()  # idempotent


def test_logging_sink_writes_one_json_line(tiny_model: StreamModel, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="guardkit.audit.records"):
        Guard(tiny_model, "default", audit=LoggingSink(), otel=False).check_response(HARMFUL)
    [line] = [r for r in caplog.records if r.name == "guardkit.audit.records"]
    data = json.loads(line.getMessage())
    assert data["decision"] == "block" and data["char_offset"] == ONSET and line.guardkit_record == data  # type: ignore[attr-defined]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_provider_adapters_record_each_channel(tiny_model: StreamModel, asynchronous: bool) -> None:
    from guardkit import aguard_openai_stream, guard_openai_stream

    sink = Collect()
    guard = Guard(tiny_model, "default", audit=sink, otel=False)
    chunks = [{"choices": [{"index": 0, "delta": {"reasoning_content": "the day is good "}, "finish_reason": None}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in words(HARMFUL)]
    if asynchronous:
        [c async for c in aguard_openai_stream(guard, chunks, prompt=PROMPT)]
    else:
        list(guard_openai_stream(guard, chunks, prompt=PROMPT))
    by_channel = {r.channel: r for r in sink.records}
    assert sorted(r.channel for r in sink.records) == ["answer", "prompt", "reasoning"]  # the prompt is checked once
    assert by_channel["answer"].decision == "block" and by_channel["answer"].char_offset == ONSET
    assert by_channel["reasoning"].decision == "allow"


def test_jsonl_sink_survives_a_string_that_is_not_valid_unicode(tiny_model: StreamModel, tmp_path: Path) -> None:
    """A lone surrogate (here in a caller's request id) must not kill the writer thread: later records still land."""
    sink = JsonlSink(tmp_path / "a.jsonl")
    guard = Guard(tiny_model, "default", audit=sink, otel=False)
    guard.check_response(HARMFUL, request_id="bad-\ud800")
    guard.check_response(BENIGN, request_id="good")
    assert sink.flush(timeout=5)
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["bad-\ud800", "good"] and sink.write_errors == 0
    sink.close()
