"""``guardkit calibrate``: fit unsafe thresholds to a target false-positive rate.

On the response items, the model runs once per item (scores recorded); then,
under the base policy's decision rule (its debounce, controversial handling,
controversial threshold and category actions), the search picks

1. the **global** ``thresholds.unsafe``: the lowest threshold whose false-positive
   rate on the *safe* items stays at or under the target, i.e. the one with the
   highest unsafe recall. Detection only grows as the threshold falls, so each
   item has a *critical threshold* (the highest one at which it is still
   detected); the choice is exact on those, placed midway in the gap where it lies;
2. **per-category** ``categories.<id>.threshold`` (a greedy coordinate search, two
   passes) for each canonical category with at least ``min_unsafe`` unsafe
   response items labelled with it; a category keeps the global threshold
   unless its own raises recall or, at the same recall, lowers false positives;
3. the prompt check's ``prompt.thresholds.unsafe`` the same way as 1. (under the
   fitted policy, whose category thresholds also apply to prompts), when the file
   has enough prompt items (else the base's is kept, with a note).

Controversial items count neither as positives nor in the FPR. Fitting refuses
(:class:`CalibrationError`) with fewer than ``min_safe`` (20) safe or
``min_unsafe`` (10) unsafe response items.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from guardkit.errors import GuardkitError
from guardkit.evaluation.dataset import Dataset
from guardkit.evaluation.replay import replay, replay_prompt
from guardkit.evaluation.runner import ItemResult
from guardkit.policy import CategoryRule, Policy, Thresholds
from guardkit.verdict import CATEGORIES

__all__ = ["MIN_SAFE", "MIN_UNSAFE", "CalibrationError", "Calibration", "Fit", "calibrate", "choose_threshold",
           "critical_threshold", "write_policy"]

MIN_SAFE = 20
MIN_UNSAFE = 10
_MAX_CANDIDATES = 40


class CalibrationError(GuardkitError):
    """The data cannot support the requested fit (too few items, or an unreachable target)."""


@dataclass(frozen=True)
class Fit:
    threshold: float
    fp: int
    n_safe: int
    tp: int
    n_unsafe: int

    @property
    def fpr(self) -> float:
        return self.fp / self.n_safe if self.n_safe else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_unsafe if self.n_unsafe else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "fp": self.fp, "n_safe": self.n_safe, "fpr": round(self.fpr, 4),
                "tp": self.tp, "n_unsafe": self.n_unsafe, "recall": round(self.recall, 4)}


@dataclass
class Calibration:
    base: str
    target_fpr: float
    response: Fit
    categories: dict[str, float] = field(default_factory=dict)
    response_final: Fit | None = None  # with the category thresholds
    prompt: Fit | None = None
    prompt_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "target_fpr": self.target_fpr, "response_global": self.response.to_dict(),
                "categories": self.categories, "response": (self.response_final or self.response).to_dict(),
                "prompt": self.prompt.to_dict() if self.prompt else None, "prompt_note": self.prompt_note}


def critical_threshold(detect: Callable[[float], bool], candidates: Sequence[float]) -> float:
    """The highest threshold in ``candidates`` at which ``detect`` is true (detection must grow as the threshold falls).

    ``inf`` when detected at every threshold up to 1.0 (so no threshold can avoid it), ``-inf`` when never.
    """
    if detect(1.0):
        return math.inf
    cand = np.unique(np.clip(np.asarray(list(candidates) + [0.0], dtype=np.float64), 0.0, 1.0))
    if not detect(float(cand[0])):
        return -math.inf
    lo, hi = 0, len(cand) - 1  # detect(cand[lo]) is true; find the last true
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if detect(float(cand[mid])):
            lo = mid
        else:
            hi = mid - 1
    return float(cand[lo])


def _nice(lower: float, upper: float) -> float:
    """A short decimal in (lower, upper], near the middle of the gap."""
    mid = (lower + upper) / 2
    for digits in range(2, 8):
        value = round(mid, digits)
        if lower < value <= upper:
            return value
    return upper


def choose_threshold(safe_crit: Sequence[float], unsafe_crit: Sequence[float], target_fpr: float) -> Fit:
    """Lowest threshold with FP/n_safe <= target on the safe items' critical thresholds (max recall)."""
    safe = np.asarray(safe_crit, dtype=np.float64)
    unsafe = np.asarray(unsafe_crit, dtype=np.float64)
    budget = math.floor(target_fpr * len(safe) + 1e-9)
    always = int(np.isinf(safe).sum() - np.isneginf(safe).sum())
    if always > budget:
        raise CalibrationError(
            f"{always} of {len(safe)} safe items are detected at every threshold (through the base policy's other rules: "
            f"strict controversial handling with thresholds.controversial, category thresholds or actions), more than the "
            f"target FPR {target_fpr} allows ({budget}); use a loose base policy or raise those thresholds"
        )
    finite = np.sort(safe[np.isfinite(safe)])[::-1]
    room = budget - always
    lower = float(finite[room]) if room < len(finite) else -math.inf  # the threshold must be above this
    above = unsafe[np.isfinite(unsafe) & (unsafe > lower)]
    if math.isinf(lower):
        threshold = float(above.min()) if len(above) else 0.5
        threshold = math.floor(threshold * 100) / 100 if threshold >= 0.01 else threshold
    else:
        upper = float(above.min()) if len(above) else 1.0
        threshold = _nice(lower, upper)
    threshold = float(min(1.0, max(0.0, threshold)))
    fp = int((safe >= threshold).sum())
    tp = int((unsafe >= threshold).sum())
    return Fit(threshold, fp, len(safe), tp, len(unsafe))


def _with(policy: Policy, *, unsafe: float | None = None, categories: dict[str, float] | None = None,
          prompt_unsafe: float | None = None) -> Policy:
    update: dict[str, Any] = {}
    if unsafe is not None:
        update["thresholds"] = Thresholds(unsafe=unsafe, controversial=policy.thresholds.controversial)
    if categories:
        merged = dict(policy.categories)
        for cat, t in categories.items():
            old = merged.get(cat, CategoryRule())
            merged[cat] = CategoryRule(threshold=t, action=old.action)
        update["categories"] = merged
    if prompt_unsafe is not None:
        pt = policy.prompt.thresholds
        update["prompt"] = policy.prompt.model_copy(update={"thresholds": Thresholds(unsafe=prompt_unsafe, controversial=pt.controversial)})
    return policy.model_copy(update=update)


def _counts(policy: Policy, results: Sequence[ItemResult], categories: Sequence[str]) -> tuple[int, int]:
    fp = tp = 0
    for r in results:
        if r.item.label == "controversial":
            continue
        hit = replay(policy, r.scores, categories).detected  # type: ignore[arg-type]
        if r.item.label == "safe":
            fp += hit
        else:
            tp += hit
    return fp, tp


def _require(kind: str, safe: int, unsafe: int, min_safe: int, min_unsafe: int) -> str | None:
    if safe >= min_safe and unsafe >= min_unsafe:
        return None
    return (f"too few {kind} items to fit: {safe} safe (need {min_safe}) and {unsafe} unsafe (need {min_unsafe}); "
            f"add labelled {kind} items")


def calibrate(results: Sequence[ItemResult], base: Policy, categories: Sequence[str], prompt_categories: Sequence[str],
              target_fpr: float, *, base_name: str = "default", min_safe: int = MIN_SAFE, min_unsafe: int = MIN_UNSAFE,
              per_category: bool = True) -> Calibration:
    if not 0.0 <= target_fpr < 1.0:
        raise CalibrationError(f"--target-fpr must be in [0, 1), got {target_fpr}")
    responses = [r for r in results if r.kind == "response" and r.item.label != "controversial"]
    n_safe = sum(r.item.label == "safe" for r in responses)
    n_unsafe = len(responses) - n_safe
    problem = _require("response", n_safe, n_unsafe, min_safe, min_unsafe)
    if problem:
        raise CalibrationError(problem)

    # 1. global threshold, with the base's category thresholds kept
    crit = []
    for r in responses:
        scores = r.scores
        assert scores is not None
        crit.append(critical_threshold(lambda t, s=scores: replay(base, s, categories, unsafe=t).detected, scores.risk[:, 2]))
    labels = np.array([r.item.label for r in responses])
    crit_arr = np.array(crit)
    fit = choose_threshold(crit_arr[labels == "safe"], crit_arr[labels == "unsafe"], target_fpr)
    policy = _with(base, unsafe=fit.threshold)
    cal = Calibration(base=base_name, target_fpr=target_fpr, response=fit)

    # the prompt items (category thresholds apply to the prompt check too)
    prompts = [r for r in results if r.kind == "prompt" and r.item.label != "controversial" and r.prompt_risk is not None]
    p_safe = sum(r.item.label == "safe" for r in prompts)
    note = _require("prompt", p_safe, len(prompts) - p_safe, min_safe, min_unsafe)
    if not any(r.kind == "prompt" and r.prompt_risk is not None for r in results) and any(r.kind == "prompt" for r in results):
        note = "the model has no prompt head"
    p_budget = math.floor(target_fpr * p_safe + 1e-9)
    safe_prompts = [r for r in prompts if r.item.label == "safe"]

    def prompt_always(trial: Policy) -> int:
        """Safe prompts detected whatever the prompt's global threshold (through category thresholds)."""
        return sum(replay_prompt(trial, r.prompt_risk, r.prompt_category, prompt_categories, unsafe=math.inf, action="block") != "allow"
                   for r in safe_prompts)  # type: ignore[arg-type]

    # 2. per-category thresholds where the data allows
    if per_category:
        budget = math.floor(target_fpr * n_safe + 1e-9)
        eligible = [c for c in categories if c in CATEGORIES and
                    sum(r.item.label == "unsafe" and r.item.category == c for r in responses) >= min_unsafe]
        fitted: dict[str, float] = {}
        best = _counts(policy, responses, categories)
        for _ in range(2):
            for c in eligible:
                ci = list(categories).index(c)
                p2 = np.concatenate([r.scores.risk[r.scores.category == ci, 2] for r in responses])  # type: ignore[union-attr]
                if not len(p2):
                    continue
                cand = set(np.round(np.quantile(p2, np.linspace(0, 1, _MAX_CANDIDATES)), 3).tolist()) | {fit.threshold}
                current = fitted.get(c, fit.threshold)
                for t in sorted(cand):
                    if not 0.0 <= t <= 1.0 or t == current:
                        continue
                    trial = _with(policy, categories={**fitted, c: t})
                    fp, tp = _counts(trial, responses, categories)
                    if fp <= budget and (tp > best[1] or (tp == best[1] and fp < best[0])) and \
                            (note is not None or prompt_always(trial) <= max(p_budget, prompt_always(policy))):
                        best, fitted[c], current = (fp, tp), float(t), float(t)
        fitted = {c: t for c, t in fitted.items() if t != fit.threshold}
        if fitted:
            policy = _with(policy, categories=fitted)
            cal.categories = dict(sorted(fitted.items()))
        fp, tp = _counts(policy, responses, categories)
        cal.response_final = Fit(fit.threshold, fp, n_safe, tp, n_unsafe)

    # 3. the prompt check, when there are enough prompt items
    if note is None:
        # under the fitted policy: its per-category thresholds apply to the prompt check too
        pcrit = np.array([
            critical_threshold(lambda t, r=r: replay_prompt(policy, r.prompt_risk, r.prompt_category, prompt_categories, unsafe=t,
                                                             action="block") != "allow", [float(r.prompt_risk[2])])  # type: ignore[index]
            for r in prompts
        ])
        plabels = np.array([r.item.label for r in prompts])
        try:
            cal.prompt = choose_threshold(pcrit[plabels == "safe"], pcrit[plabels == "unsafe"], target_fpr)
        except CalibrationError as exc:
            cal.prompt_note = f"not fitted ({exc})"
    else:
        cal.prompt_note = note + "; the base policy's prompt thresholds are kept"
    return cal


def fitted_policy(cal: Calibration, base: Policy) -> Policy:
    return _with(base, unsafe=cal.response.threshold, categories=cal.categories,
                 prompt_unsafe=cal.prompt.threshold if cal.prompt else None)


def _fmt(fit: Fit) -> str:
    return f"FPR {fit.fpr:.4f} ({fit.fp}/{fit.n_safe} safe), recall {fit.recall:.4f} ({fit.tp}/{fit.n_unsafe} unsafe)"


def write_policy(cal: Calibration, out: str | Path, base_ref: str, dataset: Dataset, model_desc: str) -> str:
    """Write the fitted policy YAML (``extends`` the base) with a header recording the data and figures."""
    from guardkit import __version__

    out = Path(out)
    extends = base_ref
    if base_ref.endswith((".yaml", ".yml")) or "/" in base_ref or "\\" in base_ref:
        extends = os.path.relpath(Path(base_ref).resolve(), out.resolve().parent)
    counts = dataset.counts()
    final = cal.response_final or cal.response
    header = [
        f"# Fitted by `guardkit calibrate` (guardkit {__version__}) to a target FPR <= {cal.target_fpr} on the safe items.",
        f"# data: {dataset.path}",
        f"# sha256: {dataset.sha256}",
        f"# items: {len(dataset.items)} valid ({len(dataset.problems)} malformed lines skipped); "
        + "; ".join(f"{kind}: " + ", ".join(f"{n} {label}" for label, n in c.items()) for kind, c in counts.items()),
        f"# model: {model_desc}",
        f"# base policy: {base_ref} (its debounce, controversial handling and category actions apply)",
        f"# expected on this data, responses: {_fmt(final)}",
    ]
    if cal.categories:
        header.append(f"#   global threshold alone: {_fmt(cal.response)}; per-category thresholds: "
                      + ", ".join(f"{c} {t}" for c, t in cal.categories.items()))
    if cal.prompt:
        header.append(f"# expected on this data, prompts: {_fmt(cal.prompt)}")
    elif cal.prompt_note:
        header.append(f"# prompts: {cal.prompt_note}")
    header.append("# Figures are in-sample: check them on held-out data with `guardkit eval`.")
    body: dict[str, Any] = {
        "extends": extends,
        "description": f"{base_ref} calibrated to FPR <= {cal.target_fpr} on {Path(dataset.path).name}",
        "thresholds": {"unsafe": cal.response.threshold},
    }
    if cal.categories:
        body["categories"] = {c: {"threshold": t} for c, t in cal.categories.items()}
    if cal.prompt:
        body["prompt"] = {"thresholds": {"unsafe": cal.prompt.threshold}}
    text = "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text
