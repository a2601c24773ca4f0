"""Decision records: one structured record per prompt check and per guarded stream.

A record says who asked (the caller's request and conversation ids), which
policy and model decided (names and sha256), on which channel, what the policy
decided and what the guard did (they differ in monitor mode), where the harm
begins (guard-token index and character offset), how much text was released,
what the guard cost (latency, model calls) and whether a model error made it
fail open or closed. It carries text only when the policy's
``audit.include_text`` asks for it.

:data:`RECORD_SCHEMA` is the JSON Schema of :meth:`DecisionRecord.to_dict`;
``schema`` in each record names its version.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.model import StreamModel
    from guardkit.policy import Policy

__all__ = [
    "RECORD_SCHEMA",
    "SCHEMA_VERSION",
    "DecisionRecord",
    "excerpt",
    "model_identity",
    "policy_sha256",
]

SCHEMA_VERSION = "guardkit.audit/1"

Channel = Literal["prompt", "answer", "refusal", "reasoning", "tool_arguments", "other"]
End = Literal["checked", "finished", "blocked", "closed"]
ActionWord = Literal["allow", "flag", "block"]

#: characters of an ``excerpt``: this many before the onset and up to twice as many from it
EXCERPT_BEFORE = 60
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class DecisionRecord:
    """One decision, as written to every sink (see the module docstring and :data:`RECORD_SCHEMA`).

    ``decision`` is what the policy decided (``block`` included in monitor
    mode: what enforcement would have done); ``action_taken`` is what the
    guard did (never ``block`` in monitor mode, where a would-be block is
    reported to the stream as a flag). ``end`` says how the check or stream
    ended: ``checked`` (a prompt check that let the response go on),
    ``finished``, ``blocked`` or ``closed`` (stopped early by the consumer, or
    dropped). ``failure`` is ``open``/``closed`` when a model error made the
    guard fail that way.
    """

    id: str
    session_id: str
    timestamp: str
    started_at: str
    channel: str
    enforcement: str
    end: str
    level: str
    decision: str
    action_taken: str
    policy: str
    policy_sha256: str
    model: str
    model_version: str
    model_sha256: str
    request_id: str | None = None
    conversation_id: str | None = None
    category: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    token_index: int | None = None
    char_offset: int | None = None
    chars_seen: int = 0
    chars_released: int = 0
    tokens_judged: int = 0
    flags: list[dict[str, Any]] = field(default_factory=list)
    guard_ms: float = 0.0
    per_token_ms: float | None = None
    model_calls: int = 0
    reprefills: int = 0
    failure: str | None = None
    model_errors: int = 0
    unjudged_tokens: int = 0
    reason: str | None = None
    text: str | None = None
    text_start: int | None = None
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    schema: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the line a JSON-lines sink writes).

        Built field by field, not with ``dataclasses.asdict`` (its deep copies cost ~0.2 ms a record).
        """
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["scores"] = dict(self.scores)
        data["flags"] = [dict(flag) for flag in self.flags]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionRecord:
        """Read a record back (unknown keys, e.g. from a newer schema, are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(DecisionRecord))


def new_id() -> str:
    """A random 128-bit id in uuid4 form, without a system call per id (ids, not secrets)."""
    return uuid.UUID(int=random.getrandbits(128), version=4).hex


def iso_utc(unix_nano: int) -> str:
    return datetime.fromtimestamp(unix_nano / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def excerpt(text: str, onset: int | None) -> tuple[str, int]:
    """Up to :data:`EXCERPT_CHARS` characters around ``onset`` (from the start when ``None``) and where they begin."""
    start = 0 if onset is None else max(0, min(onset, len(text)) - EXCERPT_BEFORE)
    return text[start : start + EXCERPT_CHARS], start


_LOCK = threading.Lock()
_POLICY_SHA: dict[int, tuple[Any, str]] = {}
_MODEL_ID: dict[int, tuple[Any, tuple[str, str, str]]] = {}
_CACHE_MAX = 256


def policy_sha256(policy: Policy) -> str:
    """sha256 of the resolved policy (``extends`` applied) as canonical JSON: equal policies, equal hashes."""
    hit = _POLICY_SHA.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    with _LOCK:
        if len(_POLICY_SHA) >= _CACHE_MAX:
            _POLICY_SHA.clear()
        _POLICY_SHA[id(policy)] = (policy, digest)  # holding the policy keeps its id from being reused
    return digest


def model_identity(model: StreamModel) -> tuple[str, str, str]:
    """(name, version, sha256 of the ONNX file) from the bundle's manifest."""
    hit = _MODEL_ID.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    manifest = model.manifest
    entry = manifest.files.get(manifest.model_file)
    identity = (manifest.name, manifest.version, entry.sha256 if entry is not None else "")
    with _LOCK:
        if len(_MODEL_ID) >= _CACHE_MAX:
            _MODEL_ID.clear()
        _MODEL_ID[id(model)] = (model, identity)
    return identity


_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}

#: JSON Schema (draft 2020-12) of one record as :meth:`DecisionRecord.to_dict` writes it.
RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/guardkit/guardkit/audit-record-1.json",
    "title": "guardkit decision record",
    "type": "object",
    "required": ["schema", "id", "session_id", "timestamp", "channel", "enforcement", "end", "level", "decision",
                 "action_taken", "policy", "policy_sha256", "model", "model_version", "model_sha256"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "id": {"type": "string", "description": "unique id of this record (uuid4, hex)"},
        "session_id": {"type": "string", "description": "shared by the prompt and the answer record of one session"},
        "request_id": {**_NULLABLE_STR, "description": "the caller's request id (guardkit.audit.ids or Guard.stream(request_id=...))"},
        "conversation_id": {**_NULLABLE_STR, "description": "the caller's conversation id"},
        "timestamp": {"type": "string", "format": "date-time", "description": "when the decision was final (UTC)"},
        "started_at": {"type": "string", "format": "date-time", "description": "when the session started (UTC)"},
        "policy": {"type": "string", "description": "the policy's name"},
        "policy_sha256": {"type": "string", "description": "sha256 of the resolved policy as canonical JSON"},
        "model": {"type": "string", "description": "the model bundle's name"},
        "model_version": {"type": "string"},
        "model_sha256": {"type": "string", "description": "sha256 of the bundle's ONNX file (from its manifest)"},
        "channel": {"enum": ["prompt", "answer", "refusal", "reasoning", "tool_arguments", "other"]},
        "enforcement": {"enum": ["enforce", "monitor"]},
        "end": {"enum": ["checked", "finished", "blocked", "closed"],
                "description": "checked: a prompt check that let the response go on; closed: stopped early by the consumer"},
        "level": {"enum": ["safe", "controversial", "unsafe"]},
        "category": _NULLABLE_STR,
        "decision": {"enum": ["allow", "flag", "block"], "description": "what the policy decided (in monitor mode: what enforcement would have done)"},
        "action_taken": {"enum": ["allow", "flag", "block"], "description": "what the guard did (never block in monitor mode)"},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "token_index": {**_NULLABLE_INT, "description": "guard-token index where the harm begins"},
        "char_offset": {**_NULLABLE_INT, "description": "character offset where the harm begins"},
        "chars_seen": {"type": "integer", "minimum": 0},
        "chars_released": {"type": "integer", "minimum": 0},
        "tokens_judged": {"type": "integer", "minimum": 0},
        "flags": {"type": "array", "items": {"type": "object"}, "description": "each flag: level, category, token_index, char_offset, time_unix_nano"},
        "guard_ms": {"type": "number", "minimum": 0, "description": "time spent in the guard's calls (start/feed/finish)"},
        "per_token_ms": {"type": ["number", "null"], "minimum": 0},
        "model_calls": {"type": "integer", "minimum": 0},
        "reprefills": {"type": "integer", "minimum": 0},
        "failure": {"enum": [None, "open", "closed"], "description": "a model error made the guard fail open or closed"},
        "model_errors": {"type": "integer", "minimum": 0},
        "unjudged_tokens": {"type": "integer", "minimum": 0},
        "reason": _NULLABLE_STR,
        "text": {**_NULLABLE_STR, "description": "only with audit.include_text excerpt or full"},
        "text_start": _NULLABLE_INT,
        "start_time_unix_nano": {"type": "integer", "minimum": 0},
        "end_time_unix_nano": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
