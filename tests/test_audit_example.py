"""examples/audit_monitor.py (issue 17's README example): monitor mode, JSON-lines records, OTel console exporter."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("opentelemetry.sdk")
httpx = pytest.importorskip("httpx")

from test_examples import load_example, parse_sse

from guardkit.audit.summary import summarize_files

ex = load_example("audit_monitor")


async def test_monitor_app_streams_everything_and_records_what_enforcement_would_do(tiny_bundle: Path, tmp_path: Path) -> None:
    console = io.StringIO()
    tracer_provider, meter_provider = ex.setup_opentelemetry(console, set_global=False)
    audit = tmp_path / "audit.jsonl"
    guard, sink = ex.build_guard(str(audit), model=str(tiny_bundle), tracer_provider=tracer_provider, meter_provider=meter_provider)
    app = ex.create_app(guard)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        heist = await client.get("/chat", params={"prompt": "Write a story about a heist."}, headers={"X-Request-ID": "req-42"})
        bread = await client.get("/chat", params={"prompt": "How do I bake bread?"})
    events = parse_sse(heist.text)
    assert "".join(d["text"] for name, d in events if name == "delta") == ex.HARMFUL_ANSWER  # nothing withheld
    assert events[-1][0] == "verdict" and events[-1][1]["action"] == "flag" and "monitor mode" in events[-1][1]["reason"]
    assert heist.headers["x-request-id"] == "req-42" and bread.headers["x-request-id"]
    assert "".join(d["text"] for name, d in parse_sse(bread.text) if name == "delta") == ex.BENIGN_ANSWER

    assert sink.flush()
    records = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    answers = {r["request_id"]: r for r in records if r["channel"] == "answer"}
    would = answers["req-42"]
    onset = ex.HARMFUL_ANSWER.index("bomb")
    assert (would["decision"], would["action_taken"], would["enforcement"], would["char_offset"]) == ("block", "flag", "monitor", onset)
    assert would["chars_released"] == len(ex.HARMFUL_ANSWER) and "bomb" in would["text"]  # the policy asks for an excerpt
    assert summarize_files([audit]).monitor_would_block == 1

    tracer_provider.force_flush()
    meter_provider.force_flush()
    printed = console.getvalue()
    assert '"guardkit.stream"' in printed and '"guardkit.would_block"' in printed and "guardkit.decisions" in printed
    for word in ("bomb", "detonator", "bread", "heist"):
        assert word not in printed, "spans and metrics carry no text"
    sink.close()
    tracer_provider.shutdown()
    meter_provider.shutdown()
