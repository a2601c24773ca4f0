"""Issue 17: OpenTelemetry spans and metrics, checked with the SDK's in-memory exporter and reader.

Spans carry the record's fields as attributes and never any text; flags and blocks are span
events; metrics count decisions and time the guard. Without OpenTelemetry it is all a no-op.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_audit import BENIGN, FLAG_VIOLENT, HARMFUL, ONSET, ONSET_TOKEN, PROMPT, Collect, words

import guardkit.audit.otel as otel_module
from guardkit import Guard, GuardConfigError, StreamModel
from guardkit.audit import OTelSink
from guardkit.audit.sinks import auditor_for
from guardkit.policy import policy_from_dict

#: distinctive words of the texts: none may appear in any attribute
_SECRETS = ("bomb", "detonator", "bread", "flour", "recipe", "please", HARMFUL, BENIGN, PROMPT)


@pytest.fixture
def otel() -> Any:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield OTelSink(tracer_provider=tracer_provider, meter_provider=meter_provider), exporter, reader, tracer_provider
    tracer_provider.shutdown()
    meter_provider.shutdown()


def assert_no_text(attributes: Any) -> None:
    for key, value in dict(attributes or {}).items():
        for secret in _SECRETS:
            assert secret not in str(value), f"{key} carries text: {value!r}"


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


@pytest.mark.parametrize("batching", [False, True])
async def test_spans_and_metrics_carry_the_record_and_no_text(tiny_model: StreamModel, otel: Any, batching: bool) -> None:
    sink, exporter, reader, tracer_provider = otel
    records = Collect()
    tracer = tracer_provider.get_tracer("app")
    with Guard(tiny_model, "default", audit=[sink, records], batching=batching) as guard:
        with tracer.start_as_current_span("request") as parent:
            stream = guard.stream(words(HARMFUL), prompt=PROMPT)  # the span's parent: the context here
        list(stream)
        flagging = guard.with_policy(policy_from_dict(FLAG_VIOLENT))
        [t async for t in flagging.astream(words(HARMFUL), prompt=PROMPT)]
        guard.check_response(BENIGN)
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
        assert_no_text(span.attributes)
        for event in span.events:
            assert_no_text(event.attributes)
    assert len(by_name["guardkit.check_prompt"]) == 2 and len(by_name["guardkit.stream"]) == 3
    blocked = next(s for s in by_name["guardkit.stream"] if s.attributes["guardkit.decision"] == "block")
    assert blocked.parent is not None and blocked.parent.span_id == parent.get_span_context().span_id
    assert blocked.attributes["guardkit.char_offset"] == ONSET and blocked.attributes["guardkit.token_index"] == ONSET_TOKEN
    assert blocked.attributes["guardkit.category"] == "violent" and blocked.attributes["guardkit.policy"] == "default"
    assert blocked.attributes["guardkit.action_taken"] == "block" and blocked.attributes["guardkit.guard_ms"] > 0
    assert blocked.attributes["guardkit.score.unsafe"] > 0.5 and len(str(blocked.attributes["guardkit.model_sha256"])) == 64
    record = next(r for r in records.records if r.decision == "block")
    for key, value in record.to_dict().items():
        if value is not None and key not in ("text", "text_start", "flags", "scores", "schema", "start_time_unix_nano", "end_time_unix_nano"):
            assert blocked.attributes[f"guardkit.{key}"] == value
    assert blocked.start_time == record.start_time_unix_nano and blocked.end_time == record.end_time_unix_nano
    [block_event] = [e for e in blocked.events if e.name == "guardkit.block"]
    assert block_event.attributes["guardkit.char_offset"] == ONSET
    flagged = next(s for s in by_name["guardkit.stream"] if s.attributes["guardkit.decision"] == "flag")
    assert [e.name for e in flagged.events] == ["guardkit.flag"] and flagged.events[0].attributes["guardkit.char_offset"] == ONSET

    points = metric_points(reader)
    decisions: dict[tuple[str, str], int] = {}
    for p in points["guardkit.decisions"]:  # one point per attribute set (two policies here)
        key = (p.attributes["guardkit.channel"], p.attributes["guardkit.decision"])
        decisions[key] = decisions.get(key, 0) + p.value
    assert decisions == {("prompt", "allow"): 2, ("answer", "block"): 1, ("answer", "flag"): 1, ("answer", "allow"): 1}
    assert sum(p.count for p in points["guardkit.guard.latency"]) == 5
    assert sum(p.count for p in points["guardkit.guard.token_latency"]) == 3
    assert [p.value for p in points["guardkit.sessions.live"]] == [0]  # every session gave its slot back
    if batching:
        assert sum(p.value for p in points["guardkit.batch.steps"]) > 0 and points["guardkit.batch.mean_size"][0].value >= 1
    for values in points.values():
        for p in values:
            assert_no_text(p.attributes)


def test_monitor_mode_span_says_would_block(tiny_model: StreamModel, otel: Any) -> None:
    sink, exporter, _, _ = otel
    policy = policy_from_dict({"name": "shadow", "enforcement": "monitor"})
    assert "".join(Guard(tiny_model, policy, audit=sink).stream(words(HARMFUL))) == HARMFUL
    [span] = exporter.get_finished_spans()
    assert span.attributes["guardkit.decision"] == "block" and span.attributes["guardkit.action_taken"] == "flag"
    assert [e.name for e in span.events] == ["guardkit.would_block"]


def test_a_failure_sets_the_span_status(tiny_bundle: Any, otel: Any) -> None:
    from opentelemetry.trace import StatusCode
    from test_audit import FailingModel

    sink, exporter, _, _ = otel
    list(Guard(FailingModel(tiny_bundle, ok_calls=2), "default", audit=sink).stream(words(BENIGN)))
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR and span.attributes["guardkit.failure"] == "closed"


def test_without_opentelemetry_it_is_a_no_op(tiny_model: StreamModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otel_module, "_DEFAULT", None)
    monkeypatch.setattr(otel_module, "available", lambda: False)
    assert auditor_for(None, None) is None  # nothing installed, nothing asked: no auditing at all
    guard = Guard(tiny_model, "default")
    assert guard.auditor is None and "".join(guard.stream(words(BENIGN))) == BENIGN
    with pytest.raises(GuardConfigError, match="OpenTelemetry is not installed"):
        Guard(tiny_model, "default", otel=True)


def test_installed_but_not_configured_is_a_no_op(tiny_model: StreamModel) -> None:
    """The global providers are the API's proxies until the application sets the SDK up: streams are unchanged."""
    records = Collect()
    guard = Guard(tiny_model, "default", audit=records, otel=True)
    assert guard.auditor is not None and guard.auditor.otel is not None
    assert "".join(guard.stream(words(BENIGN), prompt=PROMPT)) == BENIGN
    assert [r.channel for r in records.records] == ["prompt", "answer"]
