"""The policy's decision rule: per-token judgement and the debounce that blocks.

Kept free of I/O and model code so it can be tested, reused by ``eval`` and
applied to logits from any source (e.g. a PyTorch reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from guardkit.policy import Policy, Thresholds
from guardkit.verdict import RiskLevel

__all__ = ["Debouncer", "TokenJudgement", "judge", "judge_prompt", "unblocked_reason"]

TokenAction = Literal["halt", "flag", "allow"]
# a policy's action word ("block" in every section) -> what a token does ("halt": counts toward the debounce)
_TOKEN_ACTION: dict[str, TokenAction] = {"block": "halt", "flag": "flag", "allow": "allow"}


@dataclass(frozen=True)
class TokenJudgement:
    level: RiskLevel
    category: str | None
    action: TokenAction  # what the policy does with this token ("allow" for safe tokens)
    scores: tuple[float, float, float]  # p(safe), p(controversial), p(unsafe)

    @property
    def halts(self) -> bool:
        return self.action == "halt"


def _classify(
    policy: Policy, thresholds: Thresholds, risk: np.ndarray, category: np.ndarray | None, categories: Sequence[str]
) -> tuple[tuple[float, float, float], str | None, RiskLevel, bool]:
    """Scores, most likely category, level and whether the policy counts the level as harmful."""
    p = (float(risk[0]), float(risk[1]), float(risk[2]))
    cat = categories[int(np.argmax(category))] if category is not None and len(categories) else None
    rule = policy.category_rule(cat)
    unsafe_threshold = rule.threshold if rule.threshold is not None else thresholds.unsafe
    if p[2] >= unsafe_threshold:
        level: RiskLevel = "unsafe"
    elif p[1] + p[2] >= thresholds.controversial:
        level = "controversial"
    else:
        level = "safe"
    handling = rule.controversial or policy.controversial
    harmful = level == "unsafe" or (level == "controversial" and handling == "strict")
    return p, cat, level, harmful


def judge(policy: Policy, risk: np.ndarray, category: np.ndarray | None, categories: Sequence[str]) -> TokenJudgement:
    """Judge one token from its canonical risk probabilities and category distribution."""
    p, cat, level, harmful = _classify(policy, policy.thresholds, risk, category, categories)
    if not harmful:
        return TokenJudgement(level, cat if level != "safe" else None, "allow", p)
    return TokenJudgement(level, cat, _TOKEN_ACTION[policy.category_rule(cat).action or "block"], p)


def judge_prompt(policy: Policy, risk: np.ndarray, category: np.ndarray | None, categories: Sequence[str]) -> TokenJudgement:
    """Judge the prompt at its last token with the prompt check's thresholds."""
    p, cat, level, harmful = _classify(policy, policy.prompt.thresholds, risk, category, categories)
    rule = policy.category_rule(cat)
    if not harmful or rule.action == "allow":
        return TokenJudgement(level, cat if level != "safe" else None, "allow", p)
    action: TokenAction = _TOKEN_ACTION[policy.prompt.action]
    if rule.action == "flag" and action == "halt":
        action = "flag"
    return TokenJudgement(level, cat, action, p)


class Debouncer:
    """Counts halting tokens and says when the response is blocked.

    ``consecutive``: blocked when ``count`` halting tokens follow each other; the
    harm begins at the first token of that run. ``cumulative``: blocked once
    ``count`` halting tokens were seen in all; the harm begins at the first.

    ``hold_from`` is the earliest token that could still turn out to be where
    harm begins: text from it on must not be released yet.
    """

    def __init__(self, rule: Literal["consecutive", "cumulative"], count: int) -> None:
        self.rule = rule
        self.count = count
        self._run_start: int | None = None
        self._run_length = 0
        self._first_halt: int | None = None
        self._total = 0

    def push(self, index: int, halts: bool) -> int | None:
        """Record token ``index``; return the onset token index if this token blocks."""
        if halts:
            self._total += 1
            if self._first_halt is None:
                self._first_halt = index
            if self._run_length == 0:
                self._run_start = index
            self._run_length += 1
        else:
            self._run_length = 0
            self._run_start = None
        if self.rule == "consecutive" and self._run_length >= self.count:
            return self._run_start
        if self.rule == "cumulative" and self._total >= self.count:
            return self._first_halt
        return None

    @property
    def halting_tokens(self) -> int:
        """How many halting tokens were seen in all."""
        return self._total

    @property
    def hold_from(self) -> int | None:
        if self.rule == "consecutive":
            return self._run_start if self._run_length else None
        return self._first_halt


def unblocked_reason(policy: Policy, peak: TokenJudgement | None, halting_tokens: int) -> str | None:
    """Why a response that was neither blocked nor flagged has a peak token at or over the unsafe threshold.

    ``None`` when its peak token is safe and under the global unsafe threshold
    (nothing to explain). Otherwise one sentence naming the rule that let it pass,
    so a ``safe``/``allow`` verdict never shows an unsafe score over the threshold
    without saying why.
    """
    if peak is None:
        return None
    p_unsafe = peak.scores[2]
    if peak.level == "safe" and p_unsafe < policy.thresholds.unsafe:
        return None
    where = f" ({peak.category})" if peak.category else ""
    if peak.halts:
        debounce = policy.debounce
        needed = f"{debounce.count} consecutive" if debounce.rule == "consecutive" else f"{debounce.count} in all"
        return (f"{halting_tokens} guard token(s) judged {peak.level}{where}, fewer than the debounce rule needs to block "
                f"({needed}); peak p(unsafe) {p_unsafe:.3f}")
    if peak.level == "unsafe":
        return f"the policy allows category {peak.category!r}; peak p(unsafe) {p_unsafe:.3f}"
    if peak.level == "controversial":
        return f"controversial text{where} is allowed (controversial: loose); peak p(unsafe) {p_unsafe:.3f}"
    return (f"peak p(unsafe) {p_unsafe:.3f} is over the global threshold {policy.thresholds.unsafe} but under the "
            "higher threshold the policy sets for its category")
