"""Audit trail and observability: decision records, sinks, OpenTelemetry.

Attach sinks to a guard with ``Guard(..., audit=...)``: a sink object (anything
with ``emit(record)``), a plain callable, a path (a :class:`JsonlSink`) or a
list of them. Every prompt check and every guarded stream then ends with one
:class:`DecisionRecord`, whichever driver ran it (``stream``/``astream``, the
checks, batching, the provider adapters). Tag the records of a request with
:func:`ids`::

    with guardkit.audit.ids(request_id=req_id, conversation_id=conv_id):
        stream = guard.astream(llm_deltas, prompt=prompt)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from guardkit.audit.otel import OTelSink
from guardkit.audit.records import RECORD_SCHEMA, SCHEMA_VERSION, DecisionRecord
from guardkit.audit.sinks import Auditor, CallbackSink, JsonlSink, LoggingSink, Sink

__all__ = [
    "RECORD_SCHEMA",
    "SCHEMA_VERSION",
    "Auditor",
    "CallbackSink",
    "DecisionRecord",
    "JsonlSink",
    "LoggingSink",
    "OTelSink",
    "Sink",
    "current_ids",
    "ids",
]

_IDS: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar("guardkit_audit_ids", default=(None, None))


@contextlib.contextmanager
def ids(request_id: str | None = None, conversation_id: str | None = None) -> Iterator[None]:
    """Sessions created inside this block carry these ids in their records (asyncio tasks inherit them)."""
    for name, value in (("request_id", request_id), ("conversation_id", conversation_id)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be str or None, got {type(value).__name__}")
    token = _IDS.set((request_id, conversation_id))
    try:
        yield
    finally:
        _IDS.reset(token)


def current_ids() -> tuple[str | None, str | None]:
    """(request_id, conversation_id) set by the innermost :func:`ids` block."""
    return _IDS.get()
