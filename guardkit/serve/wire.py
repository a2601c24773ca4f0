"""What crosses the network per step, for both transports (Ray handle and HTTP).

A step request is the session key, the length of the state it continues
(``base``: 0 opens the session), the new token ids, whether the prompt head is
read, and only after a miss the ``history``: the ids the state was built from,
so any replica can rebuild it. A reply is the new length and the new tokens'
probabilities (``k`` rows of 3 risk levels and C categories), or a status that
says why there are none.

Over HTTP the arrays travel as JSON lists of floats: a float32 widened to a
Python float prints and parses back to the same float32, so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["SESSION_HEADER", "StepReply", "StepRequest"]

#: The HTTP header Serve's proxy reads as a request's multiplexed model id: our session key.
SESSION_HEADER = "serve_multiplexed_model_id"

Status = Literal["ok", "missing", "full", "error"]


@dataclass(frozen=True)
class StepRequest:
    key: str
    base: int
    ids: list[int]
    prompt_head: bool = False
    history: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "base": self.base, "ids": self.ids, "prompt_head": self.prompt_head, "history": self.history}

    @classmethod
    def from_json(cls, data: Any) -> StepRequest:
        if not isinstance(data, dict):
            raise ValueError("a step request is a JSON object")
        key, base, ids = data.get("key"), data.get("base"), data.get("ids")
        history = data.get("history")
        if not isinstance(key, str) or not key or len(key) > 128:
            raise ValueError("key must be a non-empty string of at most 128 characters")
        if not isinstance(base, int) or isinstance(base, bool) or base < 0:
            raise ValueError("base must be a whole number >= 0")
        if not _ids(ids) or not ids:
            raise ValueError("ids must be a non-empty list of token ids")
        if history is not None and not _ids(history):
            raise ValueError("history must be a list of token ids or null")
        return cls(key, base, list(ids), bool(data.get("prompt_head", False)), None if history is None else list(history))


def _ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)


@dataclass(frozen=True)
class StepReply:
    """``ok``: the step ran (arrays set); ``missing``: the replica does not hold that state (resend with
    ``history``); ``full``: the replica's memory cap refused a new session; ``error``: the step failed there."""

    status: Status
    length: int = 0
    risk: np.ndarray | None = None
    category: np.ndarray | None = None
    prompt_risk: np.ndarray | None = None
    prompt_category: np.ndarray | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "length": self.length}
        if self.message:
            out["message"] = self.message
        for name in ("risk", "category", "prompt_risk", "prompt_category"):
            value = getattr(self, name)
            if value is not None:
                out[name] = np.asarray(value, dtype=np.float32).tolist()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepReply:
        arrays = {name: None if data.get(name) is None else np.asarray(data[name], dtype=np.float32)
                  for name in ("risk", "category", "prompt_risk", "prompt_category")}
        return cls(status=data["status"], length=int(data.get("length", 0)), message=str(data.get("message", "")), **arrays)
