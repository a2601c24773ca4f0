"""Issue 17's command line: guardkit stream --audit, guardkit audit summarize, guardkit bench --audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_audit import BENIGN, HARMFUL
from test_cli import run

from guardkit import Guard, StreamModel
from guardkit.audit import JsonlSink
from guardkit.audit.summary import percentile
from guardkit.cli import main
from guardkit.policy import policy_from_dict


def make_log(model: StreamModel, path: Path) -> None:
    with JsonlSink(path) as sink:
        guard = Guard(model, "default", audit=sink, otel=False)
        shadow = Guard(model, policy_from_dict({"name": "shadow", "enforcement": "monitor"}), audit=sink, otel=False)
        for text in (HARMFUL, BENIGN, BENIGN):
            list(guard.stream([text], prompt="please help me"))
        shadow.check_response(HARMFUL)


def test_summarize_counts_and_percentiles(tiny_model: StreamModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "audit.jsonl"
    make_log(tiny_model, log)
    with log.open("a", encoding="utf-8") as handle:
        handle.write("not json\n\n")
    assert main(["audit", "summarize", str(log)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("7 decision records (1 malformed lines skipped)")
    assert "monitor mode: 1 record(s) where enforcement would have blocked" in out and "p99" in out
    assert main(["audit", "summarize", "--json", str(log)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["records"] == 7 and data["by_channel"] == {"prompt": 3, "answer": 4}
    assert data["by_decision"] == {"allow": 5, "block": 2} and data["by_action_taken"] == {"allow": 5, "block": 1, "flag": 1}
    assert data["by_policy"] == {"default": 6, "shadow": 1} and data["by_category"]["violent"] == 2
    assert data["latency"]["guard_ms"]["n"] == 7 and data["latency"]["per_token_ms"]["n"] == 4
    assert data["latency"]["guard_ms"]["p50"] <= data["latency"]["guard_ms"]["p99"] <= data["latency"]["guard_ms"]["max"]


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 90) == pytest.approx(9.0)
    assert percentile([7.0], 99) == 7.0


def test_summarize_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = run("audit", "summarize", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2 and result.stderr.strip() == f"error: {tmp_path / 'nope.jsonl'}: no such file"


def test_stream_writes_records(tiny_bundle: Path, tmp_path: Path) -> None:
    log = tmp_path / "stream.jsonl"
    result = run("stream", "--model", str(tiny_bundle), "--prompt", "please help me", "--audit", str(log), "--request-id", "cli-1", stdin=HARMFUL)
    assert result.returncode == 1  # blocked
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(r["channel"], r["decision"], r["request_id"]) for r in records] == [("prompt", "allow", "cli-1"), ("answer", "block", "cli-1")]
    assert records[1]["char_offset"] == HARMFUL.index("bomb")


def test_bench_audit_reports_both_contenders(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--audit", "--model", str(tiny_bundle), "--tokens", "16", "--rounds", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rounds"] == 10 and data["records_written"] == 2 * (10 + 1)  # 10 alternating rounds and a warm-up stream
    for name in ("plain", "audited"):
        assert data[name]["wall_ms_per_token"] > 0 and data[name]["cpu_ms_per_token"] >= 0
    assert data["wall_ratio"] == pytest.approx(data["audited"]["wall_ms_per_token"] / data["plain"]["wall_ms_per_token"], rel=1e-2)
    assert data["audit_ms_per_stream"] > 0 and data["audit_ms_per_token"] == pytest.approx(data["audit_ms_per_stream"] / 16, rel=1e-2)


def test_summarize_compares_a_monitor_log_with_labels(tiny_model: StreamModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log, labels = tmp_path / "monitor.jsonl", tmp_path / "labels.jsonl"
    shadow = Guard(tiny_model, policy_from_dict({"name": "shadow", "enforcement": "monitor"}), otel=False, audit=str(log))
    cases = {"r1": (HARMFUL, "unsafe"), "r2": (BENIGN, "safe"), "r3": ("sure here is how to steal a car", "unsafe"), "r4": (HARMFUL, "safe")}
    for rid, (text, _) in cases.items():
        assert "".join(shadow.stream([text], prompt="please help me", request_id=rid)) == text  # monitor: nothing withheld
    shadow.close()  # closes the JSON-lines sink it made from the path
    lines = [json.dumps({"request_id": rid, "label": label}) for rid, (_, label) in cases.items()]
    labels.write_text("\n".join(lines + [json.dumps({"request_id": "r9", "label": "unsafe"}), "{bad"]) + "\n", encoding="utf-8")
    assert main(["audit", "summarize", str(log), "--labels", str(labels), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["labels"]
    # r1 would be blocked (unsafe: right), r4 too (labelled safe: a false positive); "steal" once is not two in a row
    assert (got["true_positive"], got["false_positive"], got["false_negative"], got["true_negative"]) == (1, 1, 1, 1)
    assert (got["precision"], got["recall"], got["labels_without_records"], got["malformed_labels"]) == (0.5, 0.5, 1, 1)
    assert main(["audit", "summarize", str(log), "--labels", str(labels)]) == 0
    assert "precision 0.500   recall 0.500" in capsys.readouterr().out
