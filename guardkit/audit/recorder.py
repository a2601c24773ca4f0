"""The part of a :class:`~guardkit.StreamSession` that writes its decision records.

The session calls :meth:`SessionAudit.record` at its decision points (the
prompt judged, the response finished, blocked or closed); this builds the
:class:`~guardkit.audit.records.DecisionRecord` and hands it to the
:class:`~guardkit.audit.sinks.Auditor`. Nothing here may raise into the
stream: a failure to build a record is logged once and the record skipped.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from guardkit.audit.records import DecisionRecord, excerpt, iso_utc, model_identity, new_id, policy_sha256

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.audit.sinks import Auditor
    from guardkit.model import StreamModel
    from guardkit.policy import Policy
    from guardkit.verdict import Verdict

__all__ = ["SessionAudit", "taken"]

logger = logging.getLogger("guardkit.audit")
_failed_once = False


def taken(decision: str, enforcement: str) -> str:
    """What the guard did about ``decision``: in monitor mode a would-be block is only a flag."""
    if enforcement == "monitor" and decision == "block":
        return "flag"
    return decision


class SessionAudit:
    """One session's ids, start time, trace context and flag times."""

    __slots__ = ("auditor", "begun", "conversation_id", "flag_times", "request_id", "session_id", "start_ns")

    def __init__(self, auditor: Auditor, request_id: str | None, conversation_id: str | None) -> None:
        from guardkit.audit import current_ids

        rid, cid = current_ids()
        self.auditor = auditor
        self.request_id = request_id if request_id is not None else rid
        self.conversation_id = conversation_id if conversation_id is not None else cid
        self.session_id = new_id()
        self.start_ns = time.time_ns()
        self.begun = auditor.begin()
        self.flag_times: list[int] = []

    def flagged(self) -> None:
        self.flag_times.append(time.time_ns())

    def record(
        self,
        *,
        channel: str,
        verdict: Verdict,
        end: str,
        policy: Policy,
        model: StreamModel,
        text: str,
        chars_released: int,
        tokens_judged: int,
        flags: list[Verdict],
        guard_seconds: float,
        model_calls: int,
        reprefills: int,
        failure: str | None,
        model_errors: int,
        unjudged_tokens: int,
    ) -> None:
        global _failed_once
        t0 = time.perf_counter()
        try:
            rec = self._build(channel, verdict, end, policy, model, text, chars_released, tokens_judged, flags, guard_seconds,
                              model_calls, reprefills, failure, model_errors, unjudged_tokens)
        except Exception:  # a record must never break the stream
            if not _failed_once:
                _failed_once = True
                logger.exception("guardkit audit: could not build a decision record; skipped")
            return
        self.auditor.emit(rec, self.begun)
        self.auditor.seconds += time.perf_counter() - t0
        self.auditor.records += 1

    def _build(self, channel: str, verdict: Verdict, end: str, policy: Policy, model: StreamModel, text: str, chars_released: int,
               tokens_judged: int, flags: list[Verdict], guard_seconds: float, model_calls: int, reprefills: int,
               failure: str | None, model_errors: int, unjudged_tokens: int) -> DecisionRecord:
        end_ns = time.time_ns()
        name, version, sha = model_identity(model)
        include = policy.audit.include_text
        shown: str | None = None
        shown_start: int | None = None
        if include == "full":
            shown, shown_start = text, 0
        elif include == "excerpt":
            shown, shown_start = excerpt(text, verdict.char_offset)
        flag_list: list[dict[str, Any]] = []
        if channel != "prompt":
            for flag, at in zip(flags, self.flag_times):
                flag_list.append({"level": flag.level, "category": flag.category, "token_index": flag.token_index,
                                  "char_offset": flag.char_offset, "time_unix_nano": at})
        guard_ms = guard_seconds * 1e3
        return DecisionRecord(
            id=new_id(),
            session_id=self.session_id,
            request_id=self.request_id,
            conversation_id=self.conversation_id,
            timestamp=iso_utc(end_ns),
            started_at=iso_utc(self.start_ns),
            channel=channel,
            enforcement=policy.enforcement,
            end=end,
            level=verdict.level,
            category=verdict.category,
            decision=verdict.action,
            action_taken=taken(verdict.action, policy.enforcement),
            scores=dict(verdict.scores),
            token_index=verdict.token_index,
            char_offset=verdict.char_offset,
            chars_seen=len(text),
            chars_released=chars_released,
            tokens_judged=tokens_judged,
            flags=flag_list,
            guard_ms=round(guard_ms, 4),
            per_token_ms=round(guard_ms / tokens_judged, 4) if channel != "prompt" and tokens_judged else None,
            model_calls=model_calls,
            reprefills=reprefills,
            failure=failure,
            model_errors=model_errors,
            unjudged_tokens=unjudged_tokens,
            reason=verdict.reason,
            policy=policy.name,
            policy_sha256=policy_sha256(policy),
            model=name,
            model_version=version,
            model_sha256=sha,
            text=shown,
            text_start=shown_start,
            start_time_unix_nano=self.start_ns,
            end_time_unix_nano=end_ns,
        )
