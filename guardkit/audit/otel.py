"""OpenTelemetry for guardkit: one span per guarded stream or prompt check, and metrics.

Needs only ``opentelemetry-api`` (``pip install 'guardkit[otel]'``), imported
when first used; without it everything here is a no-op. With the API but no SDK
configured by the application, the API's own no-op providers make it one too.

- Span ``guardkit.check_prompt`` (prompt records) or ``guardkit.stream`` (a
  response channel), a child of the context current when the session was
  created (e.g. the web request's span), from the session's start to its
  decision. Attributes: the record's fields as ``guardkit.*`` (never any text);
  events ``guardkit.flag`` per flag and ``guardkit.block`` (or
  ``guardkit.would_block`` in monitor mode) at the onset.
- Metrics: ``guardkit.decisions`` (counter by channel, level, category,
  decision, action taken, policy, enforcement), ``guardkit.guard.latency`` and
  ``guardkit.guard.token_latency`` (histograms, ms), ``guardkit.sessions.live``
  (per model) and, for batching guards, ``guardkit.batch.steps``,
  ``guardkit.batch.runs`` (counters) and ``guardkit.batch.mean_size``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from guardkit.audit.records import DecisionRecord
from guardkit.errors import GuardConfigError

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.batching import BatchScheduler
    from guardkit.model import StreamModel

__all__ = ["OTelSink", "available", "default_otel_sink", "span_attributes"]

_TEXT_FIELDS = frozenset({"text", "text_start", "flags", "scores", "schema", "start_time_unix_nano", "end_time_unix_nano"})


def available() -> bool:
    """True when ``opentelemetry-api`` can be imported."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


def span_attributes(record: DecisionRecord) -> dict[str, Any]:
    """The record's fields as ``guardkit.*`` span attributes: no text, no ``None`` values."""
    attributes: dict[str, Any] = {}
    for name, value in record.to_dict().items():
        if name in _TEXT_FIELDS or value is None:
            continue
        attributes[f"guardkit.{name}"] = value
    for level, score in record.scores.items():
        attributes[f"guardkit.score.{level}"] = float(score)
    attributes["guardkit.flag_count"] = len(record.flags)
    return attributes


class OTelSink:
    """Turns decision records into spans and metrics (see the module docstring).

    ``tracer_provider`` / ``meter_provider``: the providers to use (default:
    the global ones the application configured). Raises
    :class:`~guardkit.GuardConfigError` when ``opentelemetry-api`` is missing.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError:
            raise GuardConfigError("OpenTelemetry is not installed: pip install 'guardkit[otel]'") from None
        from guardkit import __version__

        self._context = context
        self._trace = trace
        self.tracer = trace.get_tracer("guardkit", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("guardkit", __version__, meter_provider=meter_provider)
        self._decisions = meter.create_counter("guardkit.decisions", unit="{decision}", description="guard decisions")
        self._latency = meter.create_histogram("guardkit.guard.latency", unit="ms", description="time spent in the guard per check or stream")
        self._token_latency = meter.create_histogram("guardkit.guard.token_latency", unit="ms", description="guard time per judged token")
        self._models: weakref.WeakSet[StreamModel] = weakref.WeakSet()
        self._schedulers: weakref.WeakSet[BatchScheduler] = weakref.WeakSet()
        self._lock = threading.Lock()
        meter.create_observable_up_down_counter("guardkit.sessions.live", callbacks=[self._observe_live], unit="{session}",
                                                description="live guard sessions (holding a model slot)")
        meter.create_observable_counter("guardkit.batch.steps", callbacks=[self._observe("steps")], unit="{step}",
                                        description="session steps run through the batch scheduler")
        meter.create_observable_counter("guardkit.batch.runs", callbacks=[self._observe("batches")], unit="{batch}",
                                        description="batched ONNX Runtime calls")
        meter.create_observable_gauge("guardkit.batch.mean_size", callbacks=[self._observe("mean_batch")], unit="{step}",
                                      description="mean steps per batched call")

    def capture(self) -> Any:
        """The current OpenTelemetry context (the parent of the session's span)."""
        return self._context.get_current()

    def watch(self, model: StreamModel, scheduler: BatchScheduler | None) -> None:
        with self._lock:
            self._models.add(model)
            if scheduler is not None:
                self._schedulers.add(scheduler)

    def emit(self, record: DecisionRecord, parent: Any = None) -> None:
        name = "guardkit.check_prompt" if record.channel == "prompt" else "guardkit.stream"
        span = self.tracer.start_span(name, context=parent, start_time=record.start_time_unix_nano or None,
                                      attributes=span_attributes(record))
        try:
            for flag in record.flags:
                attrs = {f"guardkit.{k}": v for k, v in flag.items() if v is not None and k != "time_unix_nano"}
                span.add_event("guardkit.flag", attrs, timestamp=flag.get("time_unix_nano"))
            if record.decision == "block":
                event = "guardkit.block" if record.action_taken == "block" else "guardkit.would_block"
                attrs = {f"guardkit.{k}": v for k, v in (("category", record.category), ("level", record.level),
                         ("token_index", record.token_index), ("char_offset", record.char_offset)) if v is not None}
                span.add_event(event, attrs, timestamp=record.end_time_unix_nano or None)
            if record.failure is not None:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"model error: failed {record.failure}"))
        finally:
            span.end(end_time=record.end_time_unix_nano or None)
        labels = {"guardkit.channel": record.channel, "guardkit.level": record.level, "guardkit.category": record.category or "none",
                  "guardkit.decision": record.decision, "guardkit.action_taken": record.action_taken,
                  "guardkit.policy": record.policy, "guardkit.enforcement": record.enforcement}
        self._decisions.add(1, labels)
        where = {"guardkit.channel": record.channel, "guardkit.policy": record.policy}
        self._latency.record(record.guard_ms, where)
        if record.per_token_ms is not None:
            self._token_latency.record(record.per_token_ms, where)

    def _observe_live(self, options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        with self._lock:
            models = list(self._models)
        return [Observation(m.live_sessions, {"guardkit.model": m.manifest.name}) for m in models]

    def _observe(self, field: str) -> Any:
        def callback(options: Any) -> list[Any]:
            from opentelemetry.metrics import Observation

            with self._lock:
                schedulers = list(self._schedulers)
            return [Observation(getattr(s.stats, field), {"guardkit.model": s.model.manifest.name}) for s in schedulers]

        return callback


_DEFAULT: OTelSink | None = None
_DEFAULT_LOCK = threading.Lock()


def default_otel_sink(*, required: bool = False) -> OTelSink | None:
    """One process-wide sink on the global providers; ``None`` without ``opentelemetry-api`` (unless ``required``)."""
    global _DEFAULT
    if _DEFAULT is not None:
        return _DEFAULT
    if not available():
        if required:
            raise GuardConfigError("otel=True but OpenTelemetry is not installed: pip install 'guardkit[otel]'")
        return None
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = OTelSink()
    return _DEFAULT
