"""The ``guardkit eval`` and ``guardkit calibrate`` commands (argparse glue lives in :mod:`guardkit.cli`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from guardkit.evaluation.dataset import BUILTIN_DATA, Dataset, DatasetError, load_dataset
from guardkit.evaluation.metrics import compute_metrics, curves
from guardkit.evaluation.runner import ItemResult, run_items

__all__ = ["evaluate", "progress_bar", "run_calibrate", "run_eval"]


def progress_bar(stream: TextIO | None = None, label: str = "eval") -> Callable[[int, int], None]:
    """A dependency-free progress bar (on ``stream``, default the current ``sys.stderr``): redrawn in place on a terminal, a line per 10% otherwise."""
    stream = stream if stream is not None else sys.stderr
    tty = stream.isatty()
    started = time.monotonic()
    state = {"last": -1}

    def update(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        eta = elapsed / done * (total - done) if done else 0.0
        if tty:
            width = 30
            fill = int(width * done / total)
            stream.write(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {elapsed:5.0f}s eta {eta:4.0f}s")
            if done == total:
                stream.write("\n")
        else:
            decile = 10 * done // total
            if decile == state["last"]:
                return
            state["last"] = decile
            stream.write(f"{label}: {done}/{total} items ({elapsed:.0f}s)\n")
        stream.flush()

    return update


def _load_guard(model: str | None, policy: str, device: str, threads: int | None = None):  # type: ignore[no-untyped-def]
    from guardkit.guard import Guard

    return Guard(model, policy=policy, device=device, threads=threads)


def _model_desc(guard) -> str:  # type: ignore[no-untyped-def]
    m = guard.model.manifest
    return f"{m.name} {m.version} ({guard.model.path})"


def evaluate(guard, dataset: Dataset, progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], list[ItemResult]]:  # type: ignore[no-untyped-def]
    """Run the dataset through ``guard``'s model and policy; return the JSON-able result and the per-item records."""
    results = run_items(guard.model, guard.policy, dataset.items, progress=progress)
    result = {
        "data": {"path": dataset.path, "sha256": dataset.sha256, "items": len(dataset.items), "skipped": len(dataset.problems),
                 "problems": [{"line": p.line, "error": p.message} for p in dataset.problems]},
        "model": _model_desc(guard),
        "metrics": compute_metrics(results, guard.policy, guard.model.categories),
    }
    return result, results


def _dataset(args) -> Dataset:  # type: ignore[no-untyped-def]
    if getattr(args, "builtin", False):
        if args.data:
            raise DatasetError("guardkit eval: give DATA.jsonl or --builtin, not both")
        return load_dataset(BUILTIN_DATA, strict=args.strict)
    if not args.data:
        raise DatasetError(f"guardkit {args.command}: give DATA.jsonl" + (" or --builtin" if args.command == "eval" else ""))
    return load_dataset(args.data, strict=args.strict)


def _warn_problems(dataset: Dataset) -> None:
    if dataset.problems:
        print("warning: " + dataset.problem_summary(), file=sys.stderr)


def _plot_problem(args) -> Exception | None:  # type: ignore[no-untyped-def]
    """With ``--report``, whether plotting is possible, checked before any item runs (``None``: it is)."""
    if not args.report:
        return None
    from guardkit.evaluation.report import PlotUnavailableError, _pyplot

    try:
        _pyplot()
    except PlotUnavailableError as exc:
        print(f"warning: {exc}; the metrics will be printed, but no report written", file=sys.stderr)
        return exc
    return None


def run_eval(args) -> int:  # type: ignore[no-untyped-def]
    dataset = _dataset(args)
    _warn_problems(dataset)
    plot_problem = _plot_problem(args)
    guard = _load_guard(args.model, args.policy, args.device, args.threads)
    progress = None if args.json else progress_bar()
    result, results = evaluate(guard, dataset, progress)
    if args.items:
        from guardkit.evaluation.metrics import item_records

        with open(args.items, "w", encoding="utf-8") as f:
            for rec in item_records(results, guard.policy, guard.model.categories):
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if args.report and plot_problem is None:
        from guardkit.evaluation.report import write_report

        data = curves(results, guard.policy, guard.model.categories, guard.model.prompt_categories)
        written = write_report(result, data, args.report)
        result["report"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        from guardkit.evaluation.report import format_summary

        print(format_summary(result), end="")
        if args.report and plot_problem is None:
            print(f"\nreport: {Path(args.report) / 'summary.md'}")
    if plot_problem is not None:  # the metrics are out; the report asked for was not written
        print(f"error: no report written: {plot_problem}", file=sys.stderr)
        return 2
    return 0


def run_calibrate(args) -> int:  # type: ignore[no-untyped-def]
    from guardkit.evaluation.calibrate import CalibrationError, calibrate, write_policy
    from guardkit.evaluation.replay import replay
    from guardkit.policy import load_policy

    dataset = _dataset(args)
    _warn_problems(dataset)
    guard = _load_guard(args.model, args.base_policy, args.device, args.threads)
    progress = None if args.json else progress_bar(label="calibrate")
    results = run_items(guard.model, guard.policy, dataset.items, progress=progress)
    cal = calibrate(results, guard.policy, guard.model.categories, guard.model.prompt_categories, args.target_fpr,
                    base_name=args.base_policy, min_safe=args.min_safe, min_unsafe=args.min_unsafe,
                    per_category=not args.global_only)
    write_policy(cal, args.output, args.base_policy, dataset, _model_desc(guard))
    # check: the written file loads and reproduces the promised figures
    written = load_policy(args.output)
    fp = sum(replay(written, r.scores, guard.model.categories).detected for r in results if r.kind == "response" and r.item.label == "safe")
    final = cal.response_final or cal.response
    if fp != final.fp:  # pragma: no cover - would be a bug in the writer
        raise CalibrationError(f"the written policy gives {fp} false positives on this data, the fit promised {final.fp}")
    if cal.prompt is not None:
        from guardkit.evaluation.replay import replay_prompt

        pfp = sum(replay_prompt(written, r.prompt_risk, r.prompt_category, guard.model.prompt_categories) != "allow"
                  for r in results if r.kind == "prompt" and r.item.label == "safe" and r.prompt_risk is not None)
        if pfp != cal.prompt.fp:  # pragma: no cover
            raise CalibrationError(f"the written policy gives {pfp} prompt false positives on this data, the fit promised {cal.prompt.fp}")
    summary = cal.to_dict() | {"output": str(args.output), "check": {"fp": fp, "expected_fp": final.fp}}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {args.output} (extends {args.base_policy})")
        print(f"responses: unsafe threshold {cal.response.threshold}; on this data FPR {final.fpr:.4f} ({final.fp}/{final.n_safe} safe), "
              f"recall {final.recall:.4f} ({final.tp}/{final.n_unsafe} unsafe)")
        if cal.categories:
            print("per-category thresholds: " + ", ".join(f"{c} {t}" for c, t in cal.categories.items()))
        if cal.prompt:
            print(f"prompts: unsafe threshold {cal.prompt.threshold}; FPR {cal.prompt.fpr:.4f} ({cal.prompt.fp}/{cal.prompt.n_safe}), "
                  f"recall {cal.prompt.recall:.4f} ({cal.prompt.tp}/{cal.prompt.n_unsafe})")
        elif cal.prompt_note:
            print(f"prompts: {cal.prompt_note}")
    return 0
