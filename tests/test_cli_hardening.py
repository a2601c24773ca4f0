"""The CLI with big inputs, bad flags, Ctrl-C and missing extras: clear output, the right exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guardkit import Guard
from guardkit.cli import main

REPO = Path(__file__).resolve().parents[1]
HARMFUL = "sure here is how to build a bomb detonator now"


def test_check_reads_stdin_and_files(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    path = tmp_path / "reply.txt"
    path.write_text(HARMFUL + " " + "and the bread is good " * 8000, encoding="utf-8")  # ~180 KB: over Linux's one-argument limit
    assert main(["check", "--file", str(path), "--model", str(tiny_bundle), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["response"]["category"] == "violent"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"sure here is a recipe for bread")))
    assert main(["check", "-", "--model", str(tiny_bundle)]) == 0
    assert capsys.readouterr().out.startswith("response: safe")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(HARMFUL.encode())))
    assert main(["check", "--file", "-", "--model", str(tiny_bundle)]) == 1


@pytest.mark.parametrize("argv", [["check"], ["check", "text", "--file", "x.txt"], ["check", "--file", "/nonexistent/x.txt"]])
def test_check_input_mistakes_are_one_line_exit_2(tiny_bundle: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--model", str(tiny_bundle)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_check_non_utf8_file_is_exit_2(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9".encode("latin-1"))
    assert main(["check", "--file", str(path), "--model", str(tiny_bundle)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_check_labels_whose_scores_and_explains_an_allowed_peak(tiny_guard: Guard, tiny_bundle: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # one unsafe guard token: over the threshold, but the default policy blocks at 2 consecutive
    verdict = tiny_guard.check_response("sure i can steal")
    assert not verdict.blocked and verdict.level == "safe"
    assert verdict.scores["unsafe"] >= tiny_guard.policy.thresholds.unsafe
    assert verdict.reason and "debounce" in verdict.reason and "2 consecutive" in verdict.reason
    assert tiny_guard.check_response("sure here is a recipe for bread").reason is None
    assert main(["check", "sure i can steal", "--model", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("response: safe -> allow  [peak token: safe") and out[1].startswith("  why: 1 guard token(s) judged unsafe")
    assert main(["check", HARMFUL, "--prompt", "hello", "--model", str(tiny_bundle)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("prompt: safe -> allow  [prompt: ")
    assert out[1].startswith(f"response: unsafe (violent) -> block at char {HARMFUL.index('bomb')}  [deciding token: ")


def test_allowed_category_and_loose_controversial_say_why(tiny_guard: Guard) -> None:
    from guardkit.policy import policy_from_dict

    allow_theft = Guard(tiny_guard.model, policy_from_dict({"categories": {"non_violent_illegal_acts": {"action": "allow"}}}))
    verdict = allow_theft.check_response("how to steal and launder money")
    assert not verdict.blocked and "allows category 'non_violent_illegal_acts'" in (verdict.reason or "")


@pytest.mark.parametrize("flags", [["--streams", "a,b"], ["--streams", "1,,2"], ["--tokens", "0"], ["--rounds", "-1"],
                                   ["--lengths", "16,x"], ["--threads", "0"]])
def test_bench_rejects_bad_flags_without_a_traceback(flags: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "guardkit", "bench", *flags], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "error: argument" in result.stderr


def test_bench_reports_progress_in_the_concurrency_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    from guardkit import bench

    monkeypatch.setattr(bench, "_single_token_words", lambda model, n: ["w"] * n)
    monkeypatch.setattr(bench, "_word_ids", lambda model, words: [1] * len(words))
    monkeypatch.setattr(bench, "_prefilled", lambda model: None)
    for name in ("_one_by_one", "_batched"):
        monkeypatch.setattr(bench, name, lambda *a, **k: 10.0)
    monkeypatch.setattr(bench, "_sessions_in_threads", lambda *a, **k: (10.0, 2.0))
    monkeypatch.setattr(bench, "_sessions_in_tasks", lambda *a, **k: (10.0, 1.0))
    monkeypatch.setattr(bench, "_sessions_one_by_one", lambda *a, **k: 10.0)
    said: list[str] = []
    bench._bench_streams(None, [1, 8], tokens=4, rounds=2, say=said.append)  # type: ignore[arg-type]
    assert [m.strip() for m in said] == [f"{s} concurrent streams: round {r}/2" for s in (1, 8) for r in (1, 2)]


def test_ctrl_c_during_stream_exits_130_without_a_traceback(tiny_bundle: Path) -> None:
    # SIGINT as a terminal delivers it: a disposition of SIG_IGN inherited from the test process (set by
    # an earlier test's library) would stop Python installing its KeyboardInterrupt handler in the child
    proc = subprocess.Popen([sys.executable, "-m", "guardkit", "stream", "--model", str(tiny_bundle)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("hello world thanks for the tea ")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    got = ""
    while "hello" not in got and time.monotonic() < deadline:  # the guard is running and has released text
        got += proc.stdout.read1(100) if hasattr(proc.stdout, "read1") else proc.stdout.read(1)  # type: ignore[attr-defined]
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)  # stdin stays open: only the signal can end it (communicate() would close stdin, racing the signal on a busy host)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_eval_report_checks_matplotlib_first_and_still_prints_metrics(tiny_bundle: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from guardkit.evaluation import commands, report

    def no_matplotlib():  # type: ignore[no-untyped-def]
        raise report.PlotUnavailableError("--report needs matplotlib: pip install 'guardkit[plot]'")

    monkeypatch.setattr(report, "_pyplot", no_matplotlib)
    order: list[str] = []
    real_evaluate = commands.evaluate

    def evaluate(*args, **kwargs):  # type: ignore[no-untyped-def]
        order.append("warned" if "matplotlib" in capsys.readouterr().err else "not warned")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(commands, "evaluate", evaluate)
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in [
        {"prompt": "hello", "response": "sure here is a recipe for bread", "label": "safe"},
        {"prompt": "hello", "response": HARMFUL, "label": "unsafe"},
    ]) + "\n")
    assert main(["eval", str(data), "--model", str(tiny_bundle), "--report", str(tmp_path / "rep")]) == 2
    assert order == ["warned"]  # told before any item ran
    captured = capsys.readouterr()
    assert "response" in captured.out.lower() and "F1" in captured.out  # the metrics were printed
    assert "no report written" in captured.err
    assert not (tmp_path / "rep" / "summary.md").exists()
