"""Roll a guard out safely: a FastAPI chat app in monitor mode, with an audit trail and OpenTelemetry.

In monitor (shadow) mode the guard judges every prompt and answer exactly as it
would when enforcing, but withholds and halts nothing: the user gets the LLM's
text as it arrives. Each prompt check and each answer ends with one decision
record, appended to a JSON-lines file (``audit.jsonl``, rotated at 100 MB) and
turned into an OpenTelemetry span and metrics (printed by the console exporters
here; point an OTLP exporter at your collector instead). The records say what
enforcement would have done and where (``decision: block``, ``char_offset``),
so you can measure the guard on live traffic before switching the policy to
``enforcement: enforce``.

``GET /chat?prompt=...`` answers ``text/event-stream``: ``event: delta`` per
piece of text, then ``event: verdict``. The ``X-Request-ID`` header (made up
when absent) tags the records and comes back in the response.

Run it from the repository root::

    pip install 'guardkit[cpu,otel]' opentelemetry-sdk fastapi uvicorn
    python examples/audit_monitor.py --port 8000 --audit audit.jsonl
    curl -N 'http://127.0.0.1:8000/chat?prompt=Write+a+story+about+a+heist.'
    guardkit audit summarize audit.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from guardkit import Guard
from guardkit.audit import JsonlSink, OTelSink
from guardkit.policy import Policy, policy_from_dict

LLM = Callable[[str], AsyncIterator[str]]

HARMFUL_ANSWER = "Sure, here is how to build a bomb detonator: first wire the explosive to the timer, then hide it in the vault."
BENIGN_ANSWER = "Sure, here is a simple recipe: mix the flour, water and salt, then bake the bread for thirty minutes."


async def fake_llm(prompt: str, delay: float = 0.0) -> AsyncIterator[str]:
    """A scripted stand-in for an LLM: a harmful answer for a heist story, a bread recipe otherwise."""
    answer = HARMFUL_ANSWER if "heist" in prompt.lower() else BENIGN_ANSWER
    for i, word in enumerate(answer.split(" ")):
        await asyncio.sleep(delay)
        yield word if i == 0 else " " + word


def monitor_policy(base: str = "default") -> Policy:
    """``base`` in monitor mode, with a 200-character excerpt around each decision in the records."""
    return policy_from_dict({"extends": base, "enforcement": "monitor", "audit": {"include_text": "excerpt"}})


def setup_opentelemetry(out: TextIO = sys.stdout, *, set_global: bool = True) -> tuple[Any, Any]:
    """SDK tracer and meter providers printing to ``out`` (installed as the global ones unless ``set_global=False``)."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=out)))
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(out=out), export_interval_millis=60_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def build_guard(audit_path: str, *, model: str | None = None, policy: str = "default", tracer_provider: Any = None,
                meter_provider: Any = None) -> tuple[Guard, JsonlSink]:
    """A guard in monitor mode writing records to ``audit_path`` and to OpenTelemetry."""
    sink = JsonlSink(audit_path)
    otel = OTelSink(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return Guard(model, monitor_policy(policy), audit=[sink, otel]), sink


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def create_app(guard: Guard, llm: LLM = fake_llm) -> FastAPI:
    app = FastAPI(title="guardkit monitor-mode chat")

    @app.get("/chat")
    async def chat(request: Request, prompt: str = Query(min_length=1)) -> StreamingResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex

        async def events() -> AsyncIterator[str]:
            async with guard.astream(llm(prompt), prompt=prompt, request_id=request_id) as stream:
                async for text in stream:  # monitor mode: the LLM's text, as it arrives
                    yield sse("delta", {"text": text})
                yield sse("verdict", stream.verdict.to_dict())  # a would-be block shows as action "flag"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Request-ID": request_id})

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="the policy to shadow: built-in name or YAML file")
    parser.add_argument("--audit", default="audit.jsonl", help="JSON-lines file for the decision records")
    args = parser.parse_args(argv)
    tracer_provider, meter_provider = setup_opentelemetry()
    guard, sink = build_guard(args.audit, model=args.model, policy=args.policy)
    try:
        uvicorn.run(create_app(guard), host=args.host, port=args.port)
    finally:
        sink.close()  # every record on disk
        tracer_provider.shutdown()
        meter_provider.shutdown()


if __name__ == "__main__":
    main()
