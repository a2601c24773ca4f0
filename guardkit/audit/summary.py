"""``guardkit audit summarize``: counts and latency percentiles from JSON-lines decision records."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Summary", "percentile", "summarize", "summarize_files"]

_GROUPS = ("channel", "decision", "action_taken", "end", "category", "policy", "enforcement", "failure")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Summary:
    records: int = 0
    malformed: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=lambda: {g: Counter() for g in _GROUPS})
    guard_ms: list[float] = field(default_factory=list)
    per_token_ms: list[float] = field(default_factory=list)
    monitor_would_block: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        for group in _GROUPS:
            value = record.get(group)
            self.counts[group][str(value) if value is not None else "none"] += 1
        if isinstance(record.get("guard_ms"), (int, float)):
            self.guard_ms.append(float(record["guard_ms"]))
        if isinstance(record.get("per_token_ms"), (int, float)):
            self.per_token_ms.append(float(record["per_token_ms"]))
        if record.get("enforcement") == "monitor" and record.get("decision") == "block":
            self.monitor_would_block += 1

    def latency(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, values in (("guard_ms", self.guard_ms), ("per_token_ms", self.per_token_ms)):
            if values:
                out[name] = {f"p{q}": round(percentile(values, q), 4) for q in (50, 90, 99)}
                out[name]["max"] = round(max(values), 4)
                out[name]["n"] = len(values)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "malformed_lines": self.malformed,
            "monitor_would_block": self.monitor_would_block,
            **{f"by_{g}": dict(self.counts[g].most_common()) for g in _GROUPS},
            "latency": self.latency(),
        }

    def write(self, out: TextIO) -> None:
        w = out.write
        w(f"{self.records} decision records" + (f" ({self.malformed} malformed lines skipped)" if self.malformed else "") + "\n")
        for group in _GROUPS:
            counts = self.counts[group]
            if group == "failure" and set(counts) <= {"none"}:
                continue
            w(f"\nby {group.replace('_', ' ')}:\n")
            for value, count in counts.most_common():
                w(f"  {value:<28} {count:8d}  {100 * count / max(1, self.records):5.1f}%\n")
        if self.monitor_would_block:
            w(f"\nmonitor mode: {self.monitor_would_block} record(s) where enforcement would have blocked\n")
        latency = self.latency()
        if latency:
            w("\nguard latency (ms):        p50        p90        p99        max        n\n")
            for name, t in latency.items():
                label = "per check/stream" if name == "guard_ms" else "per token"
                w(f"  {label:<18} {t['p50']:10.3f} {t['p90']:10.3f} {t['p99']:10.3f} {t['max']:10.3f} {int(t['n']):8d}\n")


def summarize(lines: Iterable[str], summary: Summary | None = None) -> Summary:
    """Add every JSON record in ``lines`` to ``summary`` (blank lines ignored, malformed ones counted)."""
    summary = summary if summary is not None else Summary()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            summary.malformed += 1
            continue
        if not isinstance(record, dict) or "decision" not in record:
            summary.malformed += 1
            continue
        summary.add(record)
    return summary


def summarize_files(paths: Iterable[str | Path]) -> Summary:
    summary = Summary()
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            summarize(handle, summary)
    return summary


@dataclass
class LabelComparison:
    """Would-be (monitor) or real blocks per request against labels: is the policy ready to enforce?

    A request counts as blocked when any of its records (prompt or answer)
    has ``decision: block``; a label is ``unsafe`` (should be blocked) or ``safe``.
    """

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    true_negative: int = 0
    labels_without_records: int = 0
    records_without_labels: int = 0
    malformed_labels: int = 0

    def to_dict(self) -> dict[str, Any]:
        tp, fp, fn, tn = self.true_positive, self.false_positive, self.false_negative, self.true_negative
        return {
            "true_positive": tp, "false_positive": fp, "false_negative": fn, "true_negative": tn,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "false_positive_rate": round(fp / (fp + tn), 4) if fp + tn else None,
            "labels_without_records": self.labels_without_records,
            "records_without_labels": self.records_without_labels,
            "malformed_labels": self.malformed_labels,
        }

    def write(self, out: TextIO) -> None:
        d = self.to_dict()
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
        out.write("\nagainst the labels (per request; blocked = any record decided block):\n")
        out.write(f"  blocked & unsafe {d['true_positive']:6d}   blocked & safe {d['false_positive']:6d}\n")
        out.write(f"  passed & unsafe  {d['false_negative']:6d}   passed & safe  {d['true_negative']:6d}\n")
        out.write(f"  precision {fmt(d['precision'])}   recall {fmt(d['recall'])}   false-positive rate {fmt(d['false_positive_rate'])}\n")
        if self.labels_without_records or self.records_without_labels or self.malformed_labels:
            out.write(f"  ({self.labels_without_records} labels without records, {self.records_without_labels} requests without labels, "
                      f"{self.malformed_labels} malformed label lines)\n")


def compare_with_labels(record_paths: Iterable[str | Path], labels_path: str | Path) -> LabelComparison:
    """Join records (by ``request_id``) with a JSON-lines file of ``{"request_id": ..., "label": "safe" | "unsafe"}``."""
    blocked: dict[str, bool] = {}
    for path in record_paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("request_id"), str):
                    rid = record["request_id"]
                    blocked[rid] = blocked.get(rid, False) or record.get("decision") == "block"
    result = LabelComparison()
    labelled: set[str] = set()
    with open(labels_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                result.malformed_labels += 1
                continue
            if not isinstance(item, dict) or not isinstance(item.get("request_id"), str) or item.get("label") not in ("safe", "unsafe"):
                result.malformed_labels += 1
                continue
            rid = item["request_id"]
            labelled.add(rid)
            if rid not in blocked:
                result.labels_without_records += 1
                continue
            unsafe, was_blocked = item["label"] == "unsafe", blocked[rid]
            if unsafe and was_blocked:
                result.true_positive += 1
            elif was_blocked:
                result.false_positive += 1
            elif unsafe:
                result.false_negative += 1
            else:
                result.true_negative += 1
    result.records_without_labels = len(set(blocked) - labelled)
    return result
