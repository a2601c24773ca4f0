"""Run evaluation items through the guard, recording what the metrics need.

Per response item:

* a **scoring run**: one :class:`~guardkit.StreamSession` fed the whole response
  at once (as :meth:`Guard.check_response` does) under a policy that never
  halts, recording every guard token's probabilities. Full-text verdicts,
  curves and calibration replay the decision rule on these scores.
* a **streaming run** per controversial mode (strict, loose): a session under
  the policy being evaluated, fed the response in small deltas (1-8 characters,
  seeded by the line number) exactly as ``Guard.stream`` feeds its chunks,
  recording whether and where it stopped and what it released.

Per prompt item: one session per mode, whose prompt check gives the verdict;
the prompt head's probabilities are recorded for threshold curves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from guardkit.errors import GuardkitError
from guardkit.evaluation.dataset import EvalItem
from guardkit.evaluation.replay import TokenScores
from guardkit.model import StreamModel
from guardkit.policy import CategoryRule, Debounce, Policy
from guardkit.session import StreamSession
from guardkit.verdict import CATEGORIES

__all__ = ["MODES", "ItemResult", "StreamRun", "run_items", "mode_policy", "response_only", "scoring_policy"]

MODES = ("strict", "loose")


class EvaluationError(GuardkitError):
    """An item could not be evaluated (e.g. the model failed on it)."""


@dataclass(frozen=True)
class StreamRun:
    """One streaming session's outcome on a response item."""

    blocked: bool
    flagged: bool
    onset_token: int | None  # guard token where the blocking harm begins
    onset_char: int | None  # its character offset (nothing at or after it was released)
    tokens_seen: int  # guard tokens judged when the stream stopped (all of them if it did not)
    released_chars: int  # characters of the response released to the consumer
    category: str | None

    @property
    def detected(self) -> bool:
        return self.blocked or self.flagged


@dataclass
class ItemResult:
    item: EvalItem
    scores: TokenScores | None = None  # response items
    stream: dict[str, StreamRun] = field(default_factory=dict)  # mode -> run (response items)
    prompt_risk: np.ndarray | None = None  # prompt items: p(safe, controversial, unsafe) at the prompt's last token
    prompt_category: int = -1  # index into the model's prompt categories
    prompt_action: dict[str, str] = field(default_factory=dict)  # mode -> "block" | "flag" | "allow"

    @property
    def kind(self) -> str:
        return self.item.kind


class _Recorder:
    """Wraps a StreamModel and keeps each step's risk probabilities and category argmax."""

    def __init__(self, model: StreamModel) -> None:
        self._model = model
        self.calls: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def step(self, state, ids, **kwargs):  # type: ignore[no-untyped-def]
        out = self._model.step(state, ids, **kwargs)
        cats = np.argmax(out.category, axis=-1) if out.category.shape[-1] else np.full(len(ids), -1)
        pcats = np.argmax(out.prompt_category, axis=-1) if out.prompt_category is not None and out.prompt_category.shape[-1] else None
        self.calls.append((state.length, len(ids), out.risk.astype(np.float64), cats, out.prompt_risk, pcats))
        return out


def mode_policy(policy: Policy, mode: str) -> Policy:
    return policy if policy.controversial == mode else policy.model_copy(update={"controversial": mode})


def response_only(policy: Policy) -> Policy:
    """The prompt is context only (as in :meth:`Guard.check_response`)."""
    if policy.prompt.action == "allow":
        return policy
    return policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"action": "allow"})})


def scoring_policy(policy: Policy) -> Policy:
    """A policy that never halts or flags (so every token gets scored), with the same long-stream window."""
    allow = {c: CategoryRule(action="allow") for c in CATEGORIES}
    return response_only(policy).model_copy(update={"categories": allow, "debounce": Debounce(rule="cumulative", count=1000)})


def _deltas(text: str, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    i = 0
    while i < len(text):
        n = rng.randint(1, 8)
        yield text[i : i + n]
        i += n


def score_response(model: StreamModel, policy: Policy, prompt: str | None, response: str) -> TokenScores:
    """Per-token probabilities of ``response`` (after ``prompt``), as a session sees them."""
    rec = _Recorder(model)
    with StreamSession(rec, scoring_policy(policy), prompt) as session:  # type: ignore[arg-type]
        session.feed(response)
        session.finish()
        if session.blocked:
            raise EvaluationError(f"the model failed while scoring: {session.verdict.reason or session.verdict}")
        tokens = session.tokens
    rows = [(risk, cats) for length, _, risk, cats, _, _ in rec.calls if length > 0]
    risk = np.concatenate([r for r, _ in rows]) if rows else np.zeros((0, 3))
    cats = np.concatenate([c for _, c in rows]).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
    if len(risk) != len(tokens):  # pragma: no cover - a contract violation
        raise EvaluationError(f"scored {len(risk)} rows for {len(tokens)} guard tokens")
    return TokenScores(
        risk=risk, category=cats,
        starts=np.array([t.start for t in tokens], dtype=np.int64), ends=np.array([t.end for t in tokens], dtype=np.int64),
    )


def stream_response(model: StreamModel, policy: Policy, prompt: str | None, response: str, seed: int) -> StreamRun:
    """Feed ``response`` in small deltas through a session, as ``Guard.stream`` does."""
    with StreamSession(model, response_only(policy), prompt) as session:
        for delta in _deltas(response, seed):
            session.feed(delta)
            if session.blocked:
                break
        session.finish()
        verdict = session.verdict
        return StreamRun(
            blocked=session.blocked, flagged=verdict.action == "flag",
            onset_token=verdict.token_index if session.blocked else None,
            onset_char=verdict.char_offset if session.blocked else None,
            tokens_seen=len(session.tokens), released_chars=len(session.released_text),
            category=verdict.category if verdict.action != "allow" else None,
        )


def check_prompt(model: StreamModel, policy: Policy, prompt: str, result: ItemResult, record: bool) -> None:
    rec = _Recorder(model) if record else model
    with StreamSession(rec, policy, prompt) as session:  # type: ignore[arg-type]
        session.start()
        verdict = session.prompt_verdict
    result.prompt_action[policy.controversial] = verdict.action if verdict is not None else "allow"
    if record and session.prompt_risk is not None:  # the judged window's (the worst, for a prompt longer than the model sees)
        result.prompt_risk = session.prompt_risk
        result.prompt_category = session.prompt_category_index


def run_item(model: StreamModel, policy: Policy, item: EvalItem, modes: Sequence[str] = MODES) -> ItemResult:
    result = ItemResult(item)
    if item.kind == "prompt":
        for i, mode in enumerate(modes):
            check_prompt(model, mode_policy(policy, mode), item.prompt or "", result, record=i == 0)
        return result
    assert item.response is not None
    result.scores = score_response(model, policy, item.prompt, item.response)
    for mode in modes:
        result.stream[mode] = stream_response(model, mode_policy(policy, mode), item.prompt, item.response, seed=item.line)
    return result


def run_items(model: StreamModel, policy: Policy, items: Sequence[EvalItem],
              progress: Callable[[int, int], None] | None = None) -> list[ItemResult]:
    """Evaluate every item; ``progress(done, total)`` is called after each."""
    results = []
    for i, item in enumerate(items):
        try:
            results.append(run_item(model, policy, item))
        except EvaluationError as exc:
            raise EvaluationError(f"line {item.line}: {exc}") from None
        if progress is not None:
            progress(i + 1, len(items))
    return results
