"""Batching concurrent streams into one ONNX Runtime call.

Single-token steps at batch 1 are bound by reading the weights: 32 streams
stepped one by one read them 32 times, one batched call about once. The
scheduler collects the steps that live sessions (threads or asyncio tasks via
worker threads) have pending and runs them together with
:meth:`StreamModel.step_many`, which gives every stream exactly what a lone step
would (ragged lengths are masked out), so no verdict changes.

The wait is bounded: a batch runs as soon as every active session has a step
pending, it holds ``max_batch`` steps, no further step arrived for ``max_wait_ms``,
or its first step has waited ``max_delay_ms``. A lone stream never waits: with no
other active session it steps in its own thread. The gap rule keeps a cohort
whole while its sessions are still handing in their next steps one after
another (their Python work between steps is serialised by the GIL: about 5 ms
for 32 threads), yet runs at once when the others have nothing to say. A step that fails in a batch is retried alone, so one
bad session cannot fail the others.

Threads call :meth:`BatchScheduler.step` and block; asyncio tasks await
:meth:`BatchScheduler.astep`, whose results come back to their event loop in one
wake-up per batch, so an async server needs no thread per stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from guardkit.model import KVState, StepOutput, StreamModel

__all__ = ["BatchScheduler", "BatchStats"]


@dataclass
class BatchStats:
    batches: int = 0
    steps: int = 0
    largest: int = 0
    retried_alone: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    @property
    def mean_batch(self) -> float:
        return self.steps / self.batches if self.batches else 0.0


class _Request:
    """One pending step. A thread's caller blocks on ``done`` (a plain lock: the cheapest
    wake-up); an asyncio caller awaits ``future``, settled on its own loop."""

    __slots__ = ("state", "ids", "prompt_head", "output", "error", "done", "future")

    def __init__(self, state: KVState, ids: list[int], prompt_head: bool, future: asyncio.Future[StepOutput] | None = None) -> None:
        self.state, self.ids, self.prompt_head = state, ids, prompt_head
        self.output: StepOutput | None = None
        self.error: BaseException | None = None
        self.future = future
        self.done: threading.Lock | None = None
        if future is None:
            self.done = threading.Lock()
            self.done.acquire()

    def finish(self, output: StepOutput | None = None, error: BaseException | None = None) -> None:
        """Record the outcome; wakes a blocked thread (async callers are woken by :func:`_settle_on_loop`)."""
        self.output, self.error = output, error
        if self.done is not None:
            self.done.release()

    def result(self) -> StepOutput:
        assert self.done is not None
        self.done.acquire()
        if self.error is not None:
            raise self.error
        assert self.output is not None
        return self.output


def _settle(requests: list[_Request]) -> None:
    """Hand finished async requests their outcomes (runs on their event loop)."""
    for request in requests:
        future = request.future
        assert future is not None
        if future.done():  # its task was cancelled meanwhile: nobody wants the result
            continue
        if request.error is not None:
            future.set_exception(request.error)
        elif request.output is None:  # the worker stopped before reaching it
            future.set_exception(RuntimeError("the batch scheduler stopped before running this step"))
        else:
            future.set_result(request.output)


def _settle_on_loop(requests: list[_Request]) -> None:
    """One wake-up per event loop for a whole batch, not one per stream."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
    for request in requests:
        if request.future is not None:
            by_loop.setdefault(request.future.get_loop(), []).append(request)
    for loop, waiting in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, waiting)
        except RuntimeError:  # that loop is closed: its tasks are gone
            pass


class BatchScheduler:
    """Collects pending steps from many sessions and runs them in one call.

    Args:
        model: the shared model.
        max_wait_ms: the batch runs once no further step has arrived for this long.
        max_batch: most steps in one call.
        max_delay_ms: longest the first step of a batch waits for company, however
            steadily others keep arriving (default: 20 ms, or ``max_wait_ms`` if longer).
    """

    def __init__(self, model: StreamModel, *, max_wait_ms: float = 2.0, max_batch: int = 64, max_delay_ms: float | None = None) -> None:
        if max_delay_ms is None:
            max_delay_ms = max(20.0, max_wait_ms)
        if max_wait_ms < 0 or max_batch < 1 or max_delay_ms < max_wait_ms:
            raise ValueError("max_wait_ms must be >= 0, max_batch >= 1 and max_delay_ms >= max_wait_ms")
        self.model = model
        self.max_wait = max_wait_ms / 1000.0
        self.max_delay = max_delay_ms / 1000.0
        self.max_batch = max_batch
        self.stats = BatchStats()
        self._pending: list[_Request] = []
        self._last_arrival = 0.0
        self._active = 0
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="guardkit-batcher", daemon=True)
        self._worker.start()

    # -- session bookkeeping: how many could still join a batch ----------
    def register(self) -> None:
        with self._cond:
            self._active += 1

    def unregister(self) -> None:
        with self._cond:
            self._active = max(0, self._active - 1)
            self._cond.notify()

    @property
    def active_sessions(self) -> int:
        return self._active

    # -- stepping --------------------------------------------------------
    def step(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        """Blocking step through the batcher (same result as ``model.step``)."""
        request = None
        with self._cond:
            if self._closed:
                raise RuntimeError("the batch scheduler is closed")
            if self._pending or self._active > 1:
                request = _Request(state, list(token_ids), prompt_head)
                self._enqueue(request)
            else:
                self._count(1)
        if request is None:  # nobody to batch with: step in the caller's thread, no hand-off to the worker and back
            return self.model.step(state, token_ids, prompt_head=prompt_head)
        return request.result()

    async def astep(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        """Await a step through the batcher (same result as ``model.step``).

        The event loop never runs the model: even a lone stream's step goes to
        the worker, which runs it at once when no other session could join.
        """
        future: asyncio.Future[StepOutput] = asyncio.get_running_loop().create_future()
        request = _Request(state, list(token_ids), prompt_head, future)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batch scheduler is closed")
            self._enqueue(request)
        return await future

    def _enqueue(self, request: _Request) -> None:
        """Queue a step (called with the lock held)."""
        self._pending.append(request)
        self._last_arrival = time.monotonic()
        # wake the worker only when this step starts a batch or completes one: a
        # wake-up per arriving step costs a GIL hand-off each, with nothing to do
        if len(self._pending) == 1 or len(self._pending) >= self._wanted():
            self._cond.notify()

    def _wanted(self) -> int:
        """Steps that make a full batch: every active session's, at most ``max_batch``."""
        return min(self.max_batch, max(1, self._active))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._worker.join(timeout=5)

    def _take_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed and not self._pending:
                return None
            latest = time.monotonic() + self.max_delay
            while len(self._pending) < self._wanted():
                remaining = min(latest, self._last_arrival + self.max_wait) - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._count(len(batch))
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._run(batch)

    def _count(self, size: int) -> None:
        """Record a batch of ``size`` steps (called with the lock held)."""
        self.stats.batches += 1
        self.stats.steps += size
        self.stats.largest = max(self.stats.largest, size)
        self.stats.sizes[size] = self.stats.sizes.get(size, 0) + 1

    def _run(self, batch: list[_Request]) -> None:
        try:
            self._run_batch(batch)
        finally:
            _settle_on_loop(batch)

    def _run_batch(self, batch: list[_Request]) -> None:
        # rows in the order of the batched call that made the states, so that a
        # cohort stepping together is fed that call's output without a copy
        batch.sort(key=lambda r: (id(r.state.batch), r.state.row))
        try:
            prompt_head = any(r.prompt_head for r in batch)
            outputs = self.model.step_many([r.state for r in batch], [r.ids for r in batch], prompt_head=prompt_head)
        except Exception:  # noqa: BLE001 - isolate the failing request(s)
            for request in batch:
                self.stats.retried_alone += len(batch) > 1
                try:
                    request.finish(self.model.step(request.state, request.ids, prompt_head=request.prompt_head))
                except Exception as exc:  # noqa: BLE001
                    request.finish(error=exc)
            return
        for request, output in zip(batch, outputs):
            request.finish(output)

    def __enter__(self) -> BatchScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
