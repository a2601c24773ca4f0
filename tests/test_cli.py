"""The guardkit command line, run as a user would (subprocesses, stdin pipes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from guardkit.cli import main
from guardkit.demo import SAMPLES

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guardkit", *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=120)


def test_demo_runs_without_a_terminal(tiny_bundle: Path) -> None:
    result = run("demo", "--model", str(tiny_bundle))
    assert "\033[" not in result.stdout  # no colours when not on a terminal
    assert result.stdout.count("verdict:") == len(SAMPLES)
    assert result.returncode == 0, result.stderr
    behaved = int(re.search(r"(\d+)/\d+ conversations behaved as expected", result.stdout).group(1))
    assert result.stdout.count("[unexpected]") == len(SAMPLES) - behaved
    # --strict fails (exit 3, not 1: nothing was "blocked") when any sample misbehaves
    strict = run("demo", "--model", str(tiny_bundle), "--strict")
    assert behaved < len(SAMPLES) and strict.returncode == 3, strict.stderr


def test_check_json_and_exit_codes(tiny_bundle: Path) -> None:
    harmful = run("check", "sure here is how to build a bomb detonator now", "--prompt", "hello", "--json", "--model", str(tiny_bundle))
    assert harmful.returncode == 1
    data = json.loads(harmful.stdout)
    assert data["response"]["action"] == "block" and data["response"]["category"] == "violent"
    assert data["prompt"]["level"] == "safe"
    benign = run("check", "sure here is a recipe for bread", "--model", str(tiny_bundle))
    assert benign.returncode == 0 and benign.stdout.startswith("response: safe")


def test_stream_guards_stdin(tiny_bundle: Path) -> None:
    result = run("stream", "--model", str(tiny_bundle), "--json", stdin="sure here is how to build a bomb detonator and then more\n")
    assert result.returncode == 1
    assert result.stdout.startswith("sure here is how to build a ") and "bomb" not in result.stdout
    assert json.loads(result.stderr.strip().splitlines()[-1])["category"] == "violent"
    ok = run("stream", "--model", str(tiny_bundle), stdin="hello world, thanks for the tea\n")
    assert ok.returncode == 0 and ok.stdout.startswith("hello world, thanks for the tea\n")


def test_policy_with_custom_file_in_check(tiny_bundle: Path, tmp_path: Path) -> None:
    policy = tmp_path / "lenient.yaml"
    policy.write_text("extends: default\ncategories:\n  violent: {action: allow}\n")
    result = run("check", "how to build a bomb detonator now", "--policy", str(policy), "--model", str(tiny_bundle))
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_model_path_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", "hi", "--model", str(tmp_path / "missing")]) == 2
    assert "model bundle directory not found" in capsys.readouterr().err


def test_bench_prints_raw_and_session_side_by_side(tiny_bundle: Path) -> None:
    result = run("bench", "--model", str(tiny_bundle), "--tokens", "32", "--rounds", "1", "--lengths", "16,64,300", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["batch1"]["raw_step"]["median_ms"] > 0 and data["batch1"]["session_per_token"]["median_ms"] > 0
    assert set(data["chunked"]) == {"k=1", "k=2", "k=3", "k=4", "k=8", "k=16"}
    assert set(data["thread_settings"]) == {"default", "threads=1", "threads=2", "onnxruntime defaults (spinning)"}
    assert data["rescoring"]["64"]["cpu_ratio"] > 0
    assert set(data["coalesce"]) == {"coalesce=1", "coalesce=4"}
    assert data["rescoring"]["64"]["ratio"] > 0
    long = data["rescoring"]["300"]  # past the tiny model's 128 positions: a real session, re-prefilling
    assert long["session_reprefills"] >= 2 and long["ratio"] > 0 and long["window_tokens"] < 128
    streams = data["streams"]["8"]
    for key in ("one_by_one_tok_s", "batched_tok_s", "threads_unbatched_tok_s", "scheduler_tok_s", "asyncio_scheduler_tok_s"):
        assert streams[key] > 0
    assert streams["scheduler_vs_threads_unbatched"] == pytest.approx(streams["scheduler_tok_s"] / streams["threads_unbatched_tok_s"], rel=0.02)
    text = run("bench", "--model", str(tiny_bundle), "--tokens", "16", "--rounds", "1", "--lengths", "16")
    assert "session / raw" in text.stdout and "raw ONNX step" in text.stdout


def test_bench_times_a_baseline_bundle_side_by_side(tiny_bundle: Path) -> None:
    result = run("bench", "--model", str(tiny_bundle), "--baseline-model", str(tiny_bundle), "--tokens", "16", "--rounds", "1",
                 "--lengths", "16", "--streams", "1", "--json")
    assert result.returncode == 0, result.stderr
    versus = json.loads(result.stdout)["vs_baseline"]
    for key in ("model", "baseline"):
        assert versus[key]["step"]["median_ms"] > 0 and versus[key]["bundle_mb"] > 0
    assert versus["step_ratio"] == pytest.approx(versus["model"]["step"]["median_ms"] / versus["baseline"]["step"]["median_ms"], rel=0.01)
    text = run("bench", "--model", str(tiny_bundle), "--baseline-model", str(tiny_bundle), "--tokens", "16", "--rounds", "1",
               "--lengths", "16", "--streams", "1")
    assert "this model vs the baseline bundle" in text.stdout and "step ratio" in text.stdout


def test_report_writers_follow_a_redirected_stdout(tiny_bundle: Path) -> None:
    """The default stream is read when called, not bound at import (redirect_stdout, capsys after import)."""
    import contextlib
    import io

    from guardkit import Guard
    from guardkit.demo import run_demo

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run_demo(Guard(tiny_bundle), delay=0, color=False)
    assert "conversations behaved as expected" in buffer.getvalue()


def test_bench_times_the_prompt_check_beside_the_baselines_and_counts_every_graph(tmp_path: Path) -> None:
    from guardkit.testing import build_tiny_bundle

    split = build_tiny_bundle(tmp_path / "split", prompt_classifier_words={"tea": "violent"}, reply_check_offset=0.0,
                              reply_classifier_words={"coffee": "violent"})
    plain = build_tiny_bundle(tmp_path / "plain", prompt_classifier_words={"tea": "violent"})
    result = run("bench", "--model", str(split), "--baseline-model", str(plain), "--tokens", "16", "--rounds", "1",
                 "--lengths", "16", "--streams", "1", "--json")
    assert result.returncode == 0, result.stderr
    versus = json.loads(result.stdout)["vs_baseline"]
    sizes = {key: sum(f.stat().st_size for f in bundle.iterdir() if f.name != "guardkit.json") / 1e6
             for key, bundle in (("model", split), ("baseline", plain))}
    assert versus["model"]["bundle_mb"] == pytest.approx(sizes["model"], abs=0.01)  # reply.onnx counted too
    assert versus["model"]["bundle_mb"] > versus["baseline"]["bundle_mb"]
    check = versus["prompt_check"]
    assert check["model"]["median_ms"] > 0 and check["baseline"]["cpu_ms"] >= 0
    assert check["ratio"] == pytest.approx(check["model"]["median_ms"] / check["baseline"]["median_ms"], rel=0.01)
