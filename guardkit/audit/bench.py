"""``guardkit bench --audit``: what decision records and OpenTelemetry spans cost per token.

One run alternates two guards on one loaded model, stream by stream: without
any auditing (``otel=False``, no sinks) and with a JSON-lines sink plus
OpenTelemetry (an SDK tracer and meter provider with in-memory exporters when
``opentelemetry-sdk`` is installed, so spans and metrics are really built;
otherwise the API's no-op). Each stream is a real ``Guard.stream`` over
single-token words (one model step per token) that ends with its records.
Reported: median wall and CPU time per token of each and the ratios (on a busy
host their noise can exceed the cost), and the cost measured directly: the time
spent building and emitting the records and spans (``Auditor.seconds``), per
stream and per token, as a share of the plain per-token time.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["print_audit_report", "run_audit_bench"]

_PROMPT = "tell me about the history of medicine"
_TEXT = ("the history of medicine is a long story about people who tried to help the sick with what they knew at the time "
         "and many of their ideas were wrong but some of them were right and we still use them today in our homes")


def _words(model: Any, count: int) -> list[str]:
    words = [w for w in dict.fromkeys(_TEXT.split()) if len(model.tokenizer.encode(w, add_special_tokens=False).ids) == 1]
    if not words:
        raise RuntimeError("no single-token words in the benchmark text for this tokenizer")
    return [words[i % len(words)] for i in range(count)]


def _otel_sink() -> tuple[Any, str]:
    from guardkit.audit.otel import OTelSink, available

    if not available():
        return None, "not installed"
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return OTelSink(), "API only (no SDK: no-op spans)"
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return OTelSink(tracer_provider=tracer_provider, meter_provider=meter_provider), "SDK, in-memory exporters"


def run_audit_bench(model_path: str | None = None, *, tokens: int = 128, rounds: int = 10, threads: int | None = 1) -> dict[str, Any]:
    """Per-token wall and CPU time of a guarded stream without and with records + spans (see the module docstring)."""
    from guardkit.audit.sinks import JsonlSink
    from guardkit.guard import Guard
    from guardkit.model import StreamModel
    from guardkit.policy import policy_from_dict

    model = StreamModel(model_path, device="cpu", threads=threads)
    policy = policy_from_dict({"name": "bench", "thresholds": {"unsafe": 1.0, "controversial": 1.0}})  # nothing blocks
    words = _words(model, tokens)
    deltas = [words[0]] + [" " + w for w in words[1:]]
    otel, otel_mode = _otel_sink()
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = JsonlSink(Path(tmp) / "audit.jsonl")
        sinks: list[Any] = [jsonl] + ([otel] if otel is not None else [])
        contenders = {"plain": Guard(model, policy, otel=False), "audited": Guard(model, policy, audit=sinks, otel=False)}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for guard in contenders.values():  # warm-up
            "".join(guard.stream(deltas[:8], prompt=_PROMPT))
        for round_ in range(rounds):
            order = list(contenders.items())
            if round_ % 2:
                order.reverse()  # neither always goes first
            for name, guard in order:
                c0, t0 = time.process_time(), time.perf_counter()
                stream = guard.stream(deltas, prompt=_PROMPT)
                for _ in stream:
                    pass
                t1, c1 = time.perf_counter(), time.process_time()
                if stream.session.model_calls < tokens:
                    raise RuntimeError("benchmark stream did not step once per token")
                wall[name].append((t1 - t0) * 1e3 / tokens)
                cpu[name].append((c1 - c0) * 1e3 / tokens)
        auditor = contenders["audited"].auditor
        assert auditor is not None
        audit_ms_per_stream = auditor.seconds * 1e3 / (rounds + 1)  # the warm-up stream included
        jsonl.flush()
        with open(jsonl.path, encoding="utf-8") as handle:
            written = sum(1 for _ in handle)
        jsonl.close()
    result: dict[str, Any] = {"model": f"{model.manifest.name} {model.manifest.version}", "tokens_per_stream": tokens, "rounds": rounds,
                              "otel": otel_mode, "records_written": written}
    for name in contenders:
        result[name] = {"wall_ms_per_token": round(statistics.median(wall[name]), 4), "cpu_ms_per_token": round(statistics.median(cpu[name]), 4)}
    # the direct measure: time spent building and emitting the records and spans, per stream and per token
    result["audit_ms_per_stream"] = round(audit_ms_per_stream, 4)
    result["audit_ms_per_token"] = round(audit_ms_per_stream / tokens, 5)
    result["audit_share_of_token_time"] = round(audit_ms_per_stream / tokens / result["plain"]["wall_ms_per_token"], 5)
    for key in ("wall", "cpu"):
        plain = result["plain"][f"{key}_ms_per_token"]
        result[f"{key}_ratio"] = round(result["audited"][f"{key}_ms_per_token"] / plain, 4) if plain > 0 else float("nan")
    return result


def print_audit_report(result: dict[str, Any], out: TextIO | None = None) -> None:
    w = (out if out is not None else sys.stdout).write  # the current sys.stdout, read at call time
    w(f"guardkit bench --audit: {result['model']}, {result['tokens_per_stream']} tokens per stream, {result['rounds']} alternating rounds\n")
    w(f"  audited = JSON-lines sink + OpenTelemetry ({result['otel']}); {result['records_written']} records written\n")
    w("                      wall ms/token   CPU ms/token\n")
    for name in ("plain", "audited"):
        w(f"  {name:<18} {result[name]['wall_ms_per_token']:14.4f} {result[name]['cpu_ms_per_token']:14.4f}\n")
    w(f"  audited / plain    {result['wall_ratio']:13.4f}x {result['cpu_ratio']:13.4f}x"
      f"   (wall {100 * (result['wall_ratio'] - 1):+.2f}%, CPU {100 * (result['cpu_ratio'] - 1):+.2f}%; host noise included)\n")
    w(f"  measured directly: building and emitting the records and spans takes {result['audit_ms_per_stream']:.3f} ms per stream,\n"
      f"  {1000 * result['audit_ms_per_token']:.2f} us per token = {100 * result['audit_share_of_token_time']:.2f}% of the per-token time\n")


def main_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
