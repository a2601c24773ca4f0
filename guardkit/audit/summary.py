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
