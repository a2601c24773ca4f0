"""Re-apply a policy's decision rule to recorded per-token probabilities.

The model runs once per item (:mod:`guardkit.evaluation.runner`); every other
policy, threshold or prefix length is a replay of the rule that
:class:`~guardkit.StreamSession` applies (:func:`guardkit.decision.judge` and
:class:`guardkit.decision.Debouncer`), vectorised with numpy. The test suite
checks it against the scalar functions and against real sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from guardkit.policy import Policy

__all__ = ["Outcome", "TokenScores", "replay", "replay_prompt", "with_thresholds"]

_HALT, _FLAG, _ALLOW = 0, 1, 2
_ACTIONS = {"block": _HALT, "flag": _FLAG, "allow": _ALLOW}  # a policy's action word -> token action code


@dataclass(frozen=True)
class TokenScores:
    """One response's guard tokens: risk probabilities (safe, controversial, unsafe), category index, char spans.

    ``category`` is the index of the most likely category in ``categories`` (-1 when
    the model has none).
    """

    risk: np.ndarray  # float64 [n, 3]
    category: np.ndarray  # int [n]
    starts: np.ndarray  # int [n]
    ends: np.ndarray  # int [n]

    def __len__(self) -> int:
        return int(self.risk.shape[0])

    def token_at(self, char: int) -> int:
        """Index of the token covering (or first after) character ``char``; len() if none."""
        return int(np.searchsorted(self.ends, char, side="right"))


@dataclass(frozen=True)
class Outcome:
    """What the rule concludes on one response: detected = blocked or flagged."""

    blocked: bool
    flagged: bool
    onset: int | None  # token index where the blocking harm begins
    block_index: int | None  # token index at which the stream is stopped

    @property
    def detected(self) -> bool:
        return self.blocked or self.flagged


def _category_tables(policy: Policy, categories: Sequence[str], global_unsafe: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per category index (+1 slot at the end for "no category"): unsafe threshold, action code and
    whether a controversial token of that category counts as harmful."""
    thr = np.full(len(categories) + 1, global_unsafe, dtype=np.float64)
    act = np.full(len(categories) + 1, _HALT, dtype=np.int8)
    strict = np.full(len(categories) + 1, policy.controversial == "strict", dtype=bool)
    for i, cat in enumerate(categories):
        rule = policy.category_rule(cat)
        if rule.threshold is not None:
            thr[i] = rule.threshold
        if rule.action is not None:
            act[i] = _ACTIONS[rule.action]
        if rule.controversial is not None:
            strict[i] = rule.controversial == "strict"
    return thr, act, strict


def token_actions(policy: Policy, scores: TokenScores, categories: Sequence[str], unsafe: float | None = None) -> np.ndarray:
    """Per token: 0 halt, 1 flag, 2 allow (safe or allowed), as :func:`guardkit.decision.judge` decides.

    ``unsafe`` replaces the policy's global unsafe threshold (``inf``: no token reaches it);
    per-category thresholds still apply.
    """
    global_unsafe = policy.thresholds.unsafe if unsafe is None else float(unsafe)
    thr, act, strict = _category_tables(policy, categories, global_unsafe)
    cat = scores.category
    p = scores.risk
    t = thr[cat]  # cat == -1 picks the "no category" slot
    is_unsafe = p[:, 2] >= t
    is_contro = ~is_unsafe & (p[:, 1] + p[:, 2] >= policy.thresholds.controversial)
    harmful = is_unsafe | (is_contro & strict[cat])
    return np.where(harmful, act[cat], _ALLOW)


def first_block(halts: np.ndarray, rule: str, count: int) -> tuple[int, int] | None:
    """(onset, block_index) of the first block under the debounce rule, or None."""
    idx = np.flatnonzero(halts)
    if len(idx) < count:
        return None
    if rule == "cumulative":
        return int(idx[0]), int(idx[count - 1])
    if count == 1:
        return int(idx[0]), int(idx[0])
    # consecutive: first i where idx[i] - idx[i-count+1] == count-1
    span = idx[count - 1 :] - idx[: len(idx) - count + 1]
    hits = np.flatnonzero(span == count - 1)
    if not len(hits):
        return None
    j = int(hits[0])
    return int(idx[j]), int(idx[j + count - 1])


def replay(policy: Policy, scores: TokenScores, categories: Sequence[str], *, unsafe: float | None = None,
           upto: int | None = None) -> Outcome:
    """The session's verdict on ``scores`` (optionally only the first ``upto`` tokens, or another global threshold)."""
    if upto is not None and upto < len(scores):
        scores = TokenScores(scores.risk[:upto], scores.category[:upto], scores.starts[:upto], scores.ends[:upto])
    if len(scores) == 0:
        return Outcome(False, False, None, None)
    actions = token_actions(policy, scores, categories, unsafe)
    block = first_block(actions == _HALT, policy.debounce.rule, policy.debounce.count)
    flags = np.flatnonzero(actions == _FLAG)
    if block is not None:
        return Outcome(True, bool(len(flags) and flags[0] <= block[1]), block[0], block[1])
    return Outcome(False, bool(len(flags)), None, None)


def replay_prompt(policy: Policy, risk: np.ndarray, category: int, categories: Sequence[str], *,
                  unsafe: float | None = None, action: str | None = None) -> str:
    """The prompt check's action ("block" | "flag" | "allow"), as :func:`guardkit.decision.judge_prompt` decides."""
    cat = categories[category] if 0 <= category < len(categories) else None
    rule = policy.category_rule(cat)
    thresholds = policy.prompt.thresholds
    global_unsafe = thresholds.unsafe if unsafe is None else unsafe
    threshold = rule.threshold if rule.threshold is not None else global_unsafe
    p = (float(risk[0]), float(risk[1]), float(risk[2]))
    if p[2] >= threshold:
        level = "unsafe"
    elif p[1] + p[2] >= thresholds.controversial:
        level = "controversial"
    else:
        level = "safe"
    harmful = level == "unsafe" or (level == "controversial" and (rule.controversial or policy.controversial) == "strict")
    if not harmful or rule.action == "allow":
        return "allow"
    result = action or policy.prompt.action
    if rule.action == "flag" and result == "block":
        result = "flag"
    return result


def with_thresholds(policy: Policy, **changes: object) -> Policy:
    """A copy of ``policy`` with top-level fields replaced (e.g. ``controversial="strict"``)."""
    return policy.model_copy(update=changes)
