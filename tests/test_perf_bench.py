"""``guardkit bench --vs`` and the GPU check script: what they compute, on real models (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardkit import StreamModel
from guardkit.bench_vs import SCHEDULES, _scan_points, _window, run_vs
from guardkit.cli import main as cli_main

NAMES = ["guardkit incremental session", *SCHEDULES, "one check at the end"]


def test_scan_points_and_windows() -> None:
    assert _scan_points(16, 40) == [16, 32, 40]  # the last check covers the end
    assert _scan_points(200, 450) == [200, 400, 450]
    prompt, ids = [1, 2], list(range(100, 400))
    assert _window(prompt, ids, 250, 200, 50, 512) == prompt + ids[0:250]  # NeMo: 200 new + 50 of context
    assert _window(prompt, ids, 300, 200, 50, 512) == prompt + ids[50:300]
    assert _window(prompt, ids, 300, 1, None, 102) == prompt + ids[200:300]  # the whole prefix, cut to what fits


def test_vs_costs_and_leaks_on_the_tiny_model(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    result = run_vs(model, tokens=200, max_scans=8, leak_tokens=100, depths=[0.2, 0.6])
    costs, leaks = result["costs"], result["leaks"]
    assert set(NAMES) <= set(costs)
    every = costs["re-scan every token"]
    assert every["scans"] == costs["tokens"] and every["scans_timed"] <= 8  # sampled, counted in full
    assert costs["re-scan every 16 tokens"]["scans"] == -(-costs["tokens"] // 16)
    assert costs["one check at the end"]["scans"] == 1
    assert all(costs[n]["cpu_ms_per_token"] > 0 and costs[n]["wall_ms_per_token"] > 0 for n in NAMES)
    for depth, row in leaks.items():
        assert row["onset"] is not None and row["onset"] >= row["harm_starts"], depth  # the tiny model flags "bomb"
        assert row["guardkit incremental session"] == 0  # nothing at or past the onset was released
        assert 1 <= row["re-scan every token"] <= row["re-scan every 16 tokens"] <= 16
        assert row["one check at the end"] == row["tokens"] - row["onset"]  # everything after the onset was shown


def test_bench_vs_cli_prints_one_table_and_json(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--vs", "--model", str(tiny_bundle), "--vs-tokens", "64", "--leak-tokens", "64"]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    for name in NAMES:
        assert name in text
    assert "CPU ms/tok" in text and "the model's own onset" in text
    assert cli_main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(NAMES) <= set(data["costs"]) and data["policy"] == "default"


def test_gpu_check_runs_on_the_cpu(tmp_path: Path) -> None:
    """The prepared GPU script's CPU path: the providers it finds, agreement with itself, every figure present."""
    from guardkit.export import gpu_check

    result = gpu_check.run_checks(providers=["cpu", "cuda"], qwen_size="tiny", context=16, tokens=16, streams=4,
                                  workdir=tmp_path, log=lambda m: None)
    assert result["checked"][0] == "cpu"
    assert len(result["graphs"]) == 2
    for rows in result["graphs"].values():
        row = rows["cpu"]
        assert row["active_provider"] == "CPUExecutionProvider" and not row["fell_back"]
        assert row["agrees"] and row["same_argmax"] and row["max_abs_logit_diff"] == 0.0
        assert row["step_ms"] > 0 and row["chunk16_ms_per_token"] > 0 and row["streams4_tok_s"] > 0
    table = gpu_check.report(result, 4)
    assert "guardkit-mini" in table and "Qwen3Guard-Stream-tiny" in table
    out = tmp_path / "gpu.json"
    code = gpu_check.main(["--providers", "cpu", "--qwen-size", "tiny", "--context", "16", "--tokens", "16", "--streams", "2",
                           "--workdir", str(tmp_path), "--out", str(out)])
    assert code == 0 and json.loads(out.read_text())["checked"] == ["cpu"]
    with pytest.raises(SystemExit):
        gpu_check.main(["--providers", "tpu"])
