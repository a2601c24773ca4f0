"""Text summary, Markdown report and PNG plots of ``guardkit eval``.

Plotting needs matplotlib (``pip install 'guardkit[plot]'``); it is imported
only when a report is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from guardkit.errors import GuardkitError

__all__ = ["PlotUnavailableError", "format_summary", "write_report"]


class PlotUnavailableError(GuardkitError):
    """``--report`` needs matplotlib: install the ``plot`` extra."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _row(name: str, m: dict[str, Any]) -> str:
    return (f"| {name} | {_pct(m['precision'])} | {_pct(m['recall'])} | {_pct(m['f1'])} | {_pct(m['fpr'])} | {_pct(m['fpr_safe'])} "
            f"| {m['tp']}/{m['fp']}/{m['fn']}/{m['tn']} |")


def _category_table(title: str, cats: dict[str, Any]) -> list[str]:
    if not cats:
        return []
    rows = [f"| {c} | {v['n']} | {v['detected']} | {_pct(v['recall'])} |" for c, v in cats.items()]
    return ["", f"{title} (unsafe items, by their labelled category):", "", "| category | unsafe | detected | recall |",
            "|---|---|---|---|", *rows]


def _source_table(title: str, sources: dict[str, Any]) -> list[str]:
    if not sources:
        return []
    rows = [f"| {k} | {v['detected']}/{v['unsafe']} | {_pct(v['recall'])} | {v['false_positives']}/{v['safe']} | {_pct(v['fpr_safe'])} |"
            for k, v in sources.items()]
    return ["", f"{title} (the items' `source` key; controversial items left out):", "",
            "| source | unsafe detected | recall | safe flagged | FPR (safe) |", "|---|---|---|---|---|", *rows]


def format_summary(result: dict[str, Any]) -> str:
    """The evaluation as Markdown tables (also what the CLI prints)."""
    metrics = result["metrics"]
    lines = [f"data: {result['data']['path']} ({result['data']['items']} items, {result['data']['skipped']} malformed lines skipped)",
             f"model: {result['model']}  policy: {metrics['policy']} (controversial: {metrics['mode']})", ""]
    head = ["| | precision | recall | F1 | FPR | FPR (safe) | TP/FP/FN/TN |", "|---|---|---|---|---|---|---|"]
    p = metrics.get("prompt")
    if p:
        lines += [f"**Prompts** ({p['n']}: {p['labels']['safe']} safe, {p['labels']['controversial']} controversial, "
                  f"{p['labels']['unsafe']} unsafe)" + ("" if p["has_prompt_head"] else " - the model has no prompt head"), "", *head]
        lines += [_row(f"prompt, {mode}", p[mode]) for mode in ("strict", "loose")]
        lines.append("")
    r = metrics.get("response")
    if r:
        lines += [f"**Responses** ({r['n']}: {r['labels']['safe']} safe, {r['labels']['controversial']} controversial, "
                  f"{r['labels']['unsafe']} unsafe)", "", *head]
        for mode in ("strict", "loose"):
            lines.append(_row(f"full text, {mode}", r["full_text"][mode]))
            lines.append(_row(f"streaming, {mode}", r["streaming"][mode]))
        lines.append("")
        agree = ", ".join(f"{mode} {a['same_verdict']}/{a['of']}" for mode, a in r["agreement"].items())
        lines.append(f"- streaming and full-text verdicts agree: {agree}")
        h = r["halted"]
        fs = h["fraction_seen_true_positives"]
        fa = h["fraction_seen"]
        lines.append(f"- halted streams: {h['blocked']}; mean fraction of the response's tokens seen when halted: "
                     f"{_pct(fa['mean'])} (all halts), {_pct(fs['mean'])} (unsafe items; median {_pct(fs['median'])})")
        o = r["onset"]
        if o["items"]:
            leak = o["chars_released_after_onset"]
            delay = o["detection_delay_tokens"]
            lines.append(f"- items with a known onset: {o['items']}; halted {o['blocked']}; nothing released after the onset in "
                         f"{o['nothing_released_after_onset']}; characters released after the onset: mean {_num(leak['mean'])}, "
                         f"median {_num(leak['median'])}, max {o['chars_released_after_onset_max']}")
            lines.append(f"- detection delay (halt token - onset token, halted items; < 0: before the labelled onset): "
                         f"mean {_num(delay['mean'])}, median {_num(delay['median'])} tokens")
        else:
            lines.append("- no item has a known onset: no detection-delay or leak figures")
        lines += _category_table("Per-category recall, streaming responses", r["per_category_recall"]["streaming"])
        lines += _source_table("Per source, streaming responses", r.get("per_source", {}))
    if p:
        lines += _category_table("Per-category recall, prompts", p["per_category_recall"])
        lines += _source_table("Per source, prompts", p.get("per_source", {}))
    return "\n".join(lines) + "\n"


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailableError("--report needs matplotlib: pip install 'guardkit[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ys(series: list[dict[str, Any]], key: str) -> list[float]:
    return [float("nan") if m[key] is None else m[key] for m in series]


def write_report(result: dict[str, Any], curves: dict[str, Any], out_dir: str | Path, log: TextIO | None = None) -> list[Path]:
    """Write the PNG plots and ``summary.md`` to ``out_dir``; return the paths written."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    has_responses = bool(result["metrics"].get("response"))
    pngs: list[tuple[str, str]] = []  # (caption, file name) for summary.md

    def save(fig: Any, name: str, caption: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
        pngs.append((caption, name))

    if has_responses:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [100 * f for f in curves["fractions"]]
        for mode, style in (("strict", "-o"), ("loose", "-s")):
            ax.plot(xs, _ys(curves["f1_vs_fraction"][mode], "f1"), style, label=f"F1, {mode}", markersize=3)
        own = result["metrics"]["mode"]
        ax.plot(xs, _ys(curves["f1_vs_fraction"][own], "recall"), ":", color="grey", label=f"recall, {own}")
        ax.set_xlabel("% of the response's guard tokens seen")
        ax.set_ylabel("score")
        ax.set_ylim(0, 1.02)
        ax.set_title("Streaming detection vs fraction of the response seen")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        save(fig, "f1_vs_fraction.png", "F1 against the fraction of the response seen (SCM-style: each response cut after the first x% of its tokens)")

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        delays = curves["delays"]
        if delays:
            lo, hi = min(delays), max(delays)
            bins = range(lo, hi + 2) if hi - lo <= 60 else 40
            axes[0].hist(delays, bins=bins, color="tab:red", alpha=0.8, align="left")
            axes[0].axvline(0, color="black", lw=1)
        else:
            axes[0].text(0.5, 0.5, "no halted item with a known onset", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_xlabel("halt token - onset token (guard tokens; < 0: halted before the labelled onset)")
        axes[0].set_ylabel("items")
        axes[0].set_title(f"Detection delay ({len(delays)} halted items with an onset)", fontsize=10)
        fractions = curves["fraction_seen"]
        axes[1].hist([100 * f for f in fractions], bins=[5 * i for i in range(21)], color="tab:blue", alpha=0.8)
        axes[1].set_xlabel("% of the response's tokens seen when halted")
        axes[1].set_title(f"Where unsafe streams were halted ({len(fractions)} items)", fontsize=10)
        save(fig, "detection_delay.png", "Detection delay relative to the labelled onset, and how much of each unsafe response was seen when it was halted")

    fig, ax = plt.subplots(figsize=(6, 4))
    ts = curves["thresholds"]
    if has_responses:
        ax.plot(ts, _ys(curves["response_vs_threshold"], "precision"), "-", color="tab:blue", label="precision, responses")
        ax.plot(ts, _ys(curves["response_vs_threshold"], "recall"), "-", color="tab:red", label="recall, responses")
        ax.axvline(curves["policy_unsafe"], color="grey", ls=":", lw=1)
    if curves["prompt_vs_threshold"]:
        ax.plot(ts, _ys(curves["prompt_vs_threshold"], "precision"), "--", color="tab:blue", label="precision, prompts")
        ax.plot(ts, _ys(curves["prompt_vs_threshold"], "recall"), "--", color="tab:red", label="recall, prompts")
    ax.set_xlabel("unsafe threshold (dotted: the policy's)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision and recall against the unsafe threshold")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    save(fig, "threshold_pr.png", "Precision and recall against the unsafe threshold (the policy's other rules unchanged)")

    md = ["# guardkit eval", "", format_summary(result)]
    for caption, name in pngs:
        md += [f"## {caption}", "", f"![{caption}]({name})", ""]
    summary = out / "summary.md"
    summary.write_text("\n".join(md), encoding="utf-8")
    written.append(summary)
    return written
