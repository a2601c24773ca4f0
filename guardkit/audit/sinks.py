"""Where decision records go: a callback, the ``logging`` module (JSON) or a JSON-lines file.

A sink is any object with ``emit(record)``. Sinks must never block or break
the stream they observe, so the :class:`Auditor` that fans records out to them
catches every error: a failing sink is logged once (with its traceback) and
skipped; it is tried again with the next record, silently, and its failures are
counted in :attr:`Auditor.sink_errors`. The JSON-lines sink writes from its own
thread: ``emit`` only puts the line on a bounded queue.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from guardkit.audit.records import DecisionRecord
from guardkit.errors import GuardConfigError

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.audit.otel import OTelSink
    from guardkit.batching import BatchScheduler
    from guardkit.model import StreamModel

__all__ = ["Auditor", "CallbackSink", "JsonlSink", "LoggingSink", "Sink", "auditor_for"]

logger = logging.getLogger("guardkit.audit")


@runtime_checkable
class Sink(Protocol):
    """Receives each decision record. ``emit`` must return quickly (it runs on the stream's thread)."""

    def emit(self, record: DecisionRecord) -> None: ...


class CallbackSink:
    """Calls ``callback(record)`` for each record (a plain callable given as ``audit=`` becomes one)."""

    def __init__(self, callback: Callable[[DecisionRecord], Any]) -> None:
        if not callable(callback):
            raise GuardConfigError(f"audit callback must be callable, got {type(callback).__name__}")
        self.callback = callback

    def emit(self, record: DecisionRecord) -> None:
        self.callback(record)


class LoggingSink:
    """Logs each record as one line of JSON on ``logger`` (default ``guardkit.audit.records``) at ``level``.

    The record's fields are also attached to the log record as ``guardkit_record``
    (a dict), for handlers that format structured data themselves.
    """

    def __init__(self, logger: str | logging.Logger = "guardkit.audit.records", level: int = logging.INFO) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def emit(self, record: DecisionRecord) -> None:
        if self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "%s", record.to_json(), extra={"guardkit_record": record.to_dict()})


_STOP = object()


class JsonlSink:
    """Appends one JSON line per record to ``path``, rotating it at ``max_bytes``.

    On rotation ``path`` becomes ``path.1`` (``path.1`` becomes ``path.2`` ...),
    keeping ``backups`` old files. Writing happens on a background thread that
    wakes every ``interval`` seconds; ``emit`` only appends the line to a deque
    (no lock, no wake-up: waking a thread per record cost more than building
    it), and when ``queue_size`` lines are already waiting the record is
    dropped and counted in :attr:`dropped` (logged once). Call :meth:`flush` to
    wait until everything emitted so far is on disk, and :meth:`close` at the
    end (done by ``Guard.close()`` for a sink made from a path, and at
    interpreter exit).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, max_bytes: int = 100 * 1024 * 1024, backups: int = 5, queue_size: int = 10_000,
        interval: float = 0.2,
    ) -> None:
        if max_bytes < 1024:
            raise GuardConfigError(f"JsonlSink max_bytes must be at least 1024, got {max_bytes}")
        if backups < 0:
            raise GuardConfigError(f"JsonlSink backups must be >= 0, got {backups}")
        self.path = Path(path)
        if self.path.is_dir():
            raise GuardConfigError(f"audit file {self.path} is a directory")
        if not self.path.parent.is_dir():
            raise GuardConfigError(f"audit file {self.path}: directory {self.path.parent} does not exist")
        self.max_bytes = max_bytes
        self.backups = backups
        self.dropped = 0
        self.write_errors = 0
        self.queue_size = queue_size
        self.interval = interval
        self._pending: deque[Any] = deque()  # lines, flush markers (Events) and _STOP; append/popleft are thread-safe
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._from_path = False
        atexit.register(_close_at_exit, weakref.ref(self))

    def emit(self, record: DecisionRecord) -> None:
        if self._closed:
            raise RuntimeError(f"JsonlSink({self.path}) is closed")
        if self._thread is None:
            self._start()
        if len(self._pending) >= self.queue_size:
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("guardkit audit: %s cannot keep up; dropping records (counted in JsonlSink.dropped)", self.path)
            return
        self._pending.append(record.to_json() + "\n")

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every record emitted so far is written; False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._pending.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self) -> None:
        """Write what is queued and stop the writer thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._pending.append(_STOP)
            self._wake.set()
            thread.join()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_loop, name=f"guardkit-audit-{self.path.name}", daemon=True)
                self._thread.start()

    def _write_loop(self) -> None:
        handle = None
        try:
            while True:
                self._wake.wait(self.interval)
                self._wake.clear()
                batch = []
                while True:  # take whatever is waiting: one write, one flush
                    try:
                        batch.append(self._pending.popleft())
                    except IndexError:
                        break
                lines = [x for x in batch if isinstance(x, str)]
                if lines:
                    handle = self._write(handle, lines)
                for x in batch:
                    if isinstance(x, threading.Event):
                        x.set()
                if _STOP in batch:
                    return
        finally:
            if handle is not None:
                handle.close()

    def _write(self, handle: Any, lines: list[str]) -> Any:
        try:
            if handle is None:
                handle = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115 - kept open by the writer thread
            for line in lines:
                if handle.tell() + len(line.encode("utf-8", "backslashreplace")) > self.max_bytes and handle.tell() > 0:
                    handle.close()
                    self._rotate()
                    handle = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
                handle.write(line)
            handle.flush()
        except Exception as exc:  # noqa: BLE001 - the writer thread must live on (OSError: disk full, permissions ...)
            self.write_errors += 1
            if self.write_errors == 1:
                logger.error("guardkit audit: cannot write %s: %s (records are lost until it works again)", self.path, exc)
            if handle is not None:
                try:
                    handle.close()
                except OSError:
                    pass
            return None
        return handle

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def _close_at_exit(ref: weakref.ref[JsonlSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.close()


class Auditor:
    """Fans each record out to the sinks; one per :class:`~guardkit.Guard` that audits.

    ``otel`` (an :class:`~guardkit.audit.otel.OTelSink`) also gets the caller's
    trace context captured when a session starts, so its span nests under the
    request's span.
    """

    def __init__(self, sinks: list[Sink], otel: OTelSink | None = None, owned: list[JsonlSink] | None = None) -> None:
        self.sinks = sinks
        self.otel = otel
        self.owned = owned or []  # sinks made here from paths: closed by close_owned() (Guard.close())
        self.sink_errors: dict[int, int] = {}  # id(sink) -> failures
        #: time spent building and emitting records (the auditing's own cost; approximate under threads)
        self.seconds = 0.0
        self.records = 0

    def close_owned(self) -> None:
        for sink in self.owned:
            sink.close()

    def begin(self) -> Any:
        """What a session keeps from its start for its records (the OpenTelemetry context)."""
        return self.otel.capture() if self.otel is not None else None

    def watch(self, model: StreamModel, scheduler: BatchScheduler | None) -> None:
        """Let the OpenTelemetry sink observe live sessions and batch sizes."""
        if self.otel is not None:
            self.otel.watch(model, scheduler)

    def emit(self, record: DecisionRecord, begun: Any = None) -> None:
        for sink in self.sinks:
            try:
                sink.emit(record)
            except Exception:  # noqa: BLE001 - a sink must never break the stream
                self._failed(sink)
        if self.otel is not None:
            try:
                self.otel.emit(record, begun)
            except Exception:  # noqa: BLE001
                self._failed(self.otel)

    def _failed(self, sink: object) -> None:
        count = self.sink_errors.get(id(sink), 0) + 1
        self.sink_errors[id(sink)] = count
        if count == 1:
            logger.exception("guardkit audit: sink %r failed; skipped (later failures of this sink are not logged)", sink)


def _as_sinks(audit: Any) -> list[Sink]:
    if audit is None:
        return []
    if isinstance(audit, (str, os.PathLike)):
        sink = JsonlSink(audit)
        sink._from_path = True  # made here: the Guard closes it
        return [sink]
    if hasattr(audit, "emit"):
        return [audit]
    if callable(audit):
        return [CallbackSink(audit)]
    if isinstance(audit, Iterable) and not isinstance(audit, (bytes, dict)):
        return [sink for item in audit for sink in _as_sinks(item)]
    raise GuardConfigError(f"audit= takes a sink (an object with emit(record)), a callable, a JSON-lines path or a list of them; got {type(audit).__name__}")


def auditor_for(audit: Any, otel: bool | None) -> Auditor | None:
    """The Auditor for ``Guard(audit=..., otel=...)``; ``None`` when there is nothing to record to.

    ``otel=None`` (the default) turns OpenTelemetry on when ``opentelemetry-api``
    is installed (its global providers: a no-op until the application configures
    the SDK); ``True`` requires it; ``False`` leaves it off. An
    :class:`~guardkit.audit.otel.OTelSink` given in ``audit`` is used as is.
    """
    from guardkit.audit.otel import OTelSink, default_otel_sink

    sinks = _as_sinks(audit)
    owned = [s for s in sinks if isinstance(s, JsonlSink) and getattr(s, "_from_path", False)]
    otel_sinks = [s for s in sinks if isinstance(s, OTelSink)]
    sinks = [s for s in sinks if not isinstance(s, OTelSink)]
    if len(otel_sinks) > 1:
        raise GuardConfigError("give at most one OTelSink in audit=")
    otel_sink: OTelSink | None = otel_sinks[0] if otel_sinks else None
    if otel_sink is None and otel is not False:
        otel_sink = default_otel_sink(required=otel is True)
    if not sinks and otel_sink is None:
        return None
    return Auditor(sinks, otel_sink, owned)
