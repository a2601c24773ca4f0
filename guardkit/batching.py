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
for 32 threads), yet runs at once when the others have nothing to say. A step that fails in a batch of several is retried alone, so one
bad session cannot fail the others; a step that fails alone is not retried
(as on the lone-stream path: one failed step is one failed step everywhere).

A session's state after a batched step is a view of that batch's output. Once
at most half of a batch's rows are still held (the others finished or moved
on to a later batch), the states still holding it get copies of their own rows
(checked after every batch and whenever a session leaves), so an idle session
left over from a big batch keeps its own KV cache alive, not the batch's.

Two cohorts keep both cores busy. With ``workers=2`` (the default on a machine
with two or more cores) and at least ``2 * min_cohort`` active sessions, a batch
holds at most half of them: while one cohort's batch runs in ONNX Runtime
(which releases the GIL, one intra-op thread per call by default), the other
cohort's sessions do their Python work (judging, releasing, re-tokenizing) and
hand in their next steps, which the second worker runs as soon as they are in.
Without it every batch waits for every session, and ONNX Runtime and the
sessions' Python take turns on one core. Which steps share a call never changes
a result (see :meth:`StreamModel.step_many`), so verdicts are the same.

Threads call :meth:`BatchScheduler.step` and block; asyncio tasks await
:meth:`BatchScheduler.astep`, whose results come back to their event loop in one
wake-up per batch, so an async server needs no thread per stream.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

from guardkit.errors import GuardConfigError, SchedulerClosedError
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
        self.state: KVState | None = state
        self.ids, self.prompt_head = ids, prompt_head
        self.output: StepOutput | None = None
        self.error: BaseException | None = None
        self.future = future
        self.done: threading.Lock | None = None
        if future is None:
            self.done = threading.Lock()
            self.done.acquire()

    def finish(self, output: StepOutput | None = None, error: BaseException | None = None) -> None:
        """Record the outcome; wakes a blocked thread (async callers are woken by :func:`_settle_on_loop`).

        The input state is let go first: the worker may still hold this request
        for a moment, and an old state kept alive that long would count as a
        holder of its batch's KV storage when a session leaves (and keep an idle
        session on a mostly dead batch).
        """
        self.state = None
        self.output, self.error = output, error
        if self.done is not None:
            self.done.release()

    def result(self) -> StepOutput:
        assert self.done is not None
        self.done.acquire()
        if self.error is not None:
            raise self.error
        output, self.output = self.output, None  # the request keeps no state alive once handed over
        assert output is not None
        return output


def _settle(requests: list[_Request]) -> None:
    """Hand finished async requests their outcomes (runs on their event loop)."""
    for request in requests:
        future = request.future
        assert future is not None
        request.future = None  # the request keeps neither the future nor its result alive once settled
        if future.done():  # its task was cancelled meanwhile: nobody wants the result
            continue
        if request.error is not None:
            future.set_exception(request.error)
        elif request.output is None:  # the worker stopped before reaching it
            future.set_exception(SchedulerClosedError("the batch scheduler stopped before running this step"))
        else:
            future.set_result(request.output)
            request.output = None  # the request keeps no state alive once handed over


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


def _forget(views: dict[int, weakref.ref[KVState]], key: int, _ref: object) -> None:
    """A handed-out state died: drop its entry (a weakref callback; dict ops need no lock)."""
    views.pop(key, None)


def _snapshot(views: dict[int, weakref.ref[KVState]]) -> list[weakref.ref[KVState]]:
    """The dict's values, retried if a weakref callback (a state dying) changed it meanwhile."""
    while True:
        try:
            return list(views.values())
        except RuntimeError:  # pragma: no cover - "dictionary changed size during iteration"
            continue


def _own_rows(state: KVState) -> None:
    """Give a state copies of its rows instead of views of a whole batch's output.

    KVState is frozen for its users; the scheduler alone swaps the storage of
    states it handed out, for equal copies (``row`` stays: a concurrent reader
    that saw ``batch`` still finds the same row there).
    """
    object.__setattr__(state, "arrays", tuple(a.copy() for a in state.arrays))
    object.__setattr__(state, "batch", None)


class BatchScheduler:
    """Collects pending steps from many sessions and runs them in one call.

    Args:
        model: the shared model.
        max_wait_ms: the batch runs once no further step has arrived for this long.
        max_batch: most steps in one call.
        max_delay_ms: longest the first step of a batch waits for company, however
            steadily others keep arriving (default: 20 ms, or ``max_wait_ms`` if longer).
        workers: batches that may run at once, each in its own worker thread
            (default: 2 on a machine with two or more cores, else 1).
        min_cohort: with several workers, active sessions are split into cohorts
            of at least this many (fewer sessions: one cohort, since a small batch
            costs about what a single step does).
    """

    def __init__(
        self,
        model: StreamModel,
        *,
        max_wait_ms: float = 2.0,
        max_batch: int = 64,
        max_delay_ms: float | None = None,
        workers: int | None = None,
        min_cohort: int = 8,
    ) -> None:
        if max_delay_ms is None:
            max_delay_ms = max(20.0, max_wait_ms)
        if workers is None:
            workers = min(2, os.cpu_count() or 1)
        if max_wait_ms < 0 or max_batch < 1 or max_delay_ms < max_wait_ms:
            raise GuardConfigError("max_wait_ms must be >= 0, max_batch >= 1 and max_delay_ms >= max_wait_ms")
        if workers < 1 or min_cohort < 1:
            raise GuardConfigError(f"workers and min_cohort must be >= 1, got {workers} and {min_cohort}")
        self.workers = workers
        self.min_cohort = min_cohort
        self.model = model
        self.max_wait = max_wait_ms / 1000.0
        self.max_delay = max_delay_ms / 1000.0
        self.max_batch = max_batch
        self.stats = BatchStats()
        self._pending: list[_Request] = []
        self._last_arrival = 0.0
        self._active = 0
        self._in_flight = 0  # steps in batches that workers are running now
        self._departures: deque[None] = deque()  # unregister() never locks: it appends here (see _settle_departures)
        self._cond = threading.Condition()
        self._closed = False
        self._views: dict[int, weakref.ref[KVState]] = {}  # handed-out states that are views of a batch output, by id
        # reentrant: a finalizer that runs during a compaction (and unregisters a session) compacts inline
        self._views_lock = threading.RLock()
        self._collecting = threading.Lock()  # one worker at a time collects a batch; the others run theirs
        self._workers = [threading.Thread(target=self._loop, name=f"guardkit-batcher-{i}", daemon=True) for i in range(workers)]
        for worker in self._workers:
            worker.start()

    # -- session bookkeeping: how many could still join a batch ----------
    def register(self) -> None:
        with self._cond:
            self._settle_departures()
            self._active += 1

    def unregister(self) -> None:
        """A session left. Safe from a finalizer anywhere: never waits on a lock its own thread may hold."""
        self._departures.append(None)
        if self._cond.acquire(blocking=False):  # wake the worker if we can; it also sees departures on its own
            try:
                self._cond.notify()
            finally:
                self._cond.release()
        self._compact_views()

    def _settle_departures(self) -> None:
        """Count departed sessions out (called with the lock held)."""
        while True:
            try:
                self._departures.popleft()
            except IndexError:
                return
            self._active = max(0, self._active - 1)

    @property
    def active_sessions(self) -> int:
        return max(0, self._active - len(self._departures))

    # -- stepping --------------------------------------------------------
    def step(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        """Blocking step through the batcher (same result as ``model.step``)."""
        request = None
        with self._cond:
            if self._closed:
                raise SchedulerClosedError("the batch scheduler is closed")
            self._settle_departures()
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
                raise SchedulerClosedError("the batch scheduler is closed")
            self._settle_departures()
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
        """Steps that make a full batch (called with the lock held).

        Every active session's that is not in a running batch, at most
        ``max_batch``, and with several workers at most one cohort's share.
        """
        return min(self._cap(), max(1, self._active - self._in_flight))

    def _cap(self) -> int:
        """Most steps in one batch: ``max_batch``, and with several workers one cohort's share."""
        if self.workers > 1 and self._active >= 2 * self.min_cohort:
            return min(self.max_batch, math.ceil(self._active / self.workers))
        return self.max_batch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout=5)

    def _take_batch(self) -> list[_Request] | None:
        """The next batch; ``[]`` when woken by departures only (to compact views); ``None`` once closed."""
        with self._cond:
            while not self._pending and not self._closed and not self._departures:
                self._cond.wait()
            self._settle_departures()
            if self._closed and not self._pending:
                return None
            if not self._pending:
                return []
            latest = time.monotonic() + self.max_delay
            while len(self._pending) < self._wanted():
                remaining = min(latest, self._last_arrival + self.max_wait) - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
                self._settle_departures()
            size = min(len(self._pending), self._cap())
            batch, self._pending = self._pending[:size], self._pending[size:]
            self._in_flight += len(batch)
            self._count(len(batch))
            if self._pending:  # more than one cohort's share is in: the next collecting worker takes it at once
                self._cond.notify()
            return batch

    def _loop(self) -> None:
        while True:
            with self._collecting:
                batch = self._take_batch()
            if batch is None:
                return
            if batch:
                try:
                    self._run(batch)
                finally:
                    with self._cond:
                        self._in_flight -= len(batch)
            else:  # woken by departures: states left idle may now hold a mostly dead batch
                self._compact_views()
            del batch  # hold no request (nor the states in it) while waiting for the next batch

    def _count(self, size: int) -> None:
        """Record a batch of ``size`` steps (called with the lock held)."""
        self.stats.batches += 1
        self.stats.steps += size
        self.stats.largest = max(self.stats.largest, size)
        self.stats.sizes[size] = self.stats.sizes.get(size, 0) + 1

    def _run(self, batch: list[_Request]) -> None:
        stepped = {id(r.state) for r in batch}
        try:
            self._run_batch(batch)
            # before async callers get their results: a session left out of this batch
            # holds its own rows from now on if its batch is mostly gone
            self._compact_views(skip=stepped)
        finally:
            _settle_on_loop(batch)

    def _run_batch(self, batch: list[_Request]) -> None:
        # rows in the order of the batched call that made the states, so that a
        # cohort stepping together is fed that call's output without a copy
        batch.sort(key=lambda r: (id(r.state.batch), r.state.row))
        try:
            prompt_head = any(r.prompt_head for r in batch)
            outputs = self.model.step_many([r.state for r in batch], [r.ids for r in batch], prompt_head=prompt_head)
        except Exception as exc:  # noqa: BLE001 - isolate the failing request(s)
            if len(batch) == 1:  # alone it failed as it is: no retry (the same as a lone stream's step)
                batch[0].finish(error=exc)
                return
            for request in batch:
                self.stats.retried_alone += len(batch) > 1
                try:
                    request.finish(self.model.step(request.state, request.ids, prompt_head=request.prompt_head))
                except Exception as exc:  # noqa: BLE001
                    request.finish(error=exc)
            return
        views = self._views
        with self._views_lock:
            for output in outputs:
                if output.state.batch is not None:  # dict ops are atomic: the callback needs no lock
                    key = id(output.state)
                    views[key] = weakref.ref(output.state, functools.partial(_forget, views, key))
        for request, output in zip(batch, outputs):
            request.finish(output)

    def _compact_views(self, *, skip: set[int] | frozenset[int] = frozenset()) -> None:
        """States still viewing a batch output of which at most half the rows are held get their own rows.

        Copies are equal to the views, so a session stepping meanwhile gets the
        same result either way. ``skip``: ids of the states just stepped (about
        to be dropped by their sessions). The lock is held only here, where no
        other lock is waited for, so waiting for it cannot deadlock.
        """
        with self._views_lock:
            if not self._views:
                return
            held: dict[int, list[KVState]] = {}
            for ref in _snapshot(self._views):
                state = ref()
                if state is not None and state.batch is not None:
                    held.setdefault(id(state.batch), []).append(state)
            for states in held.values():
                rows = states[0].batch.arrays[0].shape[0]  # type: ignore[union-attr]
                kept = [state for state in states if id(state) not in skip]  # the stepped ones are on their way out
                # rows, not states: with an in-place cache a session's older states view its same row
                if len({state.row for state in kept}) * 2 > rows:
                    continue
                for state in kept:
                    _own_rows(state)
                    self._views.pop(id(state), None)

    def __enter__(self) -> BatchScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
