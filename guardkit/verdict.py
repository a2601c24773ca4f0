"""Verdicts and the events a :class:`~guardkit.StreamSession` emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Mapping

__all__ = [
    "CATEGORIES",
    "RISK_LEVELS",
    "Action",
    "Blocked",
    "Event",
    "Flagged",
    "Released",
    "Retracted",
    "RiskLevel",
    "Source",
    "Verdict",
]

RiskLevel = Literal["safe", "controversial", "unsafe"]
Action = Literal["allow", "flag", "block"]
Source = Literal["prompt", "response"]

#: Canonical risk levels, in increasing order of severity.
RISK_LEVELS: tuple[RiskLevel, ...] = ("safe", "controversial", "unsafe")

#: Canonical harm categories (Qwen3Guard's taxonomy; ``jailbreak`` is prompt-only).
CATEGORIES: tuple[str, ...] = (
    "violent",
    "non_violent_illegal_acts",
    "sexual_content",
    "pii",
    "suicide_self_harm",
    "unethical_acts",
    "politically_sensitive",
    "copyright_violation",
    "jailbreak",
)


@dataclass(frozen=True)
class Verdict:
    """What the guard concluded about a prompt or a response.

    Attributes:
        level: ``"safe"``, ``"controversial"`` or ``"unsafe"``.
        category: canonical harm category, or ``None`` (safe, or unknown).
        scores: probabilities of the three levels at the deciding token.
        action: what the policy did: ``"allow"``, ``"flag"`` or ``"block"``.
        token_index: guard-token index in the response where the harm begins.
        char_offset: character offset in the response where the harm begins;
            for a blocked stream nothing at or after it was released.
        policy: name of the policy that decided.
        source: ``"prompt"`` or ``"response"``.
        reason: free text: why a verdict was not made by the model (e.g. a model
            error), why an unsafe peak did not block, or that the reply check
            (the bundle's classifier reading the reply so far) decided.
    """

    level: RiskLevel
    category: str | None = None
    scores: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    action: Action = "allow"
    token_index: int | None = None
    char_offset: int | None = None
    policy: str = "default"
    source: Source = "response"
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable dict of the verdict."""
        return {
            "level": self.level,
            "category": self.category,
            "scores": dict(self.scores),
            "action": self.action,
            "token_index": self.token_index,
            "char_offset": self.char_offset,
            "policy": self.policy,
            "source": self.source,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Released:
    """Text judged safe and handed to the consumer; ``start`` is its offset in the response."""

    text: str
    start: int


@dataclass(frozen=True)
class Flagged:
    """The policy flags (but does not stop) the stream; the text keeps flowing."""

    verdict: Verdict


@dataclass(frozen=True)
class Blocked:
    """The policy stops the stream. No more events follow."""

    verdict: Verdict


@dataclass(frozen=True)
class Retracted:
    """Pass-through mode only: text from ``char_offset`` on was released but is now withdrawn."""

    char_offset: int
    verdict: Verdict


Event = Released | Flagged | Blocked | Retracted
