"""How a session runs its model steps, and the resources one session holds.

A :class:`StreamSession` gets exactly one stepper, built by :class:`~guardkit.Guard`:
a :class:`DirectStepper` (steps run on the model, async ones in a worker
thread) or a :class:`BatchedStepper` (steps go through the Guard's
:class:`~guardkit.batching.BatchScheduler`). The stepper *owns* what the session
holds while it lives: the model's session slot and, when batching, the
scheduler registration. ``acquire()`` takes both (or neither), ``release()``
gives both back and is idempotent, takes no lock and never blocks, so it is
safe to call from a finalizer at any point of any thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Sequence

from guardkit.errors import GuardConfigError, SessionLimitError

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.batching import BatchScheduler
    from guardkit.model import KVState, StepOutput, StreamModel

__all__ = ["BatchedStepper", "DirectStepper", "SlotPool", "Stepper", "stepper_for"]


class SlotPool:
    """Counts live sessions against an optional cap.

    Releasing never takes a lock: it appends to a deque (atomic in CPython), and
    the next acquire (under the pool's lock) settles the releases. A finalizer
    that releases a slot while the same thread is inside :meth:`acquire` (the
    garbage collector may run any finalizer on any allocation) therefore cannot
    deadlock, by construction.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise GuardConfigError(f"max_sessions must be >= 1, got {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._taken = 0
        self._returned: deque[None] = deque()

    def acquire(self) -> None:
        with self._lock:
            self._settle()
            if self.limit is not None and self._taken >= self.limit:
                raise SessionLimitError(f"{self._taken} live sessions already; the model's max_sessions is {self.limit}")
            self._taken += 1

    def release(self) -> None:
        """Give a slot back: lock-free, never blocks (finalizer-safe)."""
        self._returned.append(None)

    def _settle(self) -> None:
        while True:
            try:
                self._returned.popleft()
            except IndexError:
                return
            self._taken = max(0, self._taken - 1)

    @property
    def live(self) -> int:
        return max(0, self._taken - len(self._returned))


class Stepper:
    """Runs one session's model steps and owns its slot (see the module docstring)."""

    def __init__(self, model: StreamModel) -> None:
        self.model = model
        self._lease: list[None] = []  # one item while the slot is held; list.pop() is atomic

    @property
    def held(self) -> bool:
        return bool(self._lease)

    def acquire(self) -> None:
        """Take the session slot (``SessionLimitError`` past the cap; then nothing is held)."""
        if self._lease:
            return
        self.model.acquire_slot()
        self._lease.append(None)
        self._joined()

    def release(self) -> None:
        """Give everything back; idempotent even across threads, lock-free (finalizer-safe)."""
        try:
            self._lease.pop()
        except IndexError:
            return
        self._leaving()
        self.model.release_slot()

    def _joined(self) -> None:
        pass

    def _leaving(self) -> None:
        pass

    def step(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        raise NotImplementedError

    async def astep(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        raise NotImplementedError


class DirectStepper(Stepper):
    """Steps on the model itself; async steps run in ``executor`` (asyncio's default pool when ``None``)."""

    def __init__(self, model: StreamModel, executor: Executor | None = None) -> None:
        super().__init__(model)
        self.executor = executor

    def step(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        return self.model.step(state, token_ids, prompt_head=prompt_head)

    async def astep(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        native = getattr(self.model, "astep", None)  # a served model (guardkit.serve.RemoteModel) awaits its steps itself
        if native is not None:
            return await native(state, token_ids, prompt_head=prompt_head)  # type: ignore[no-any-return]
        call = functools.partial(self.model.step, state, token_ids, prompt_head=prompt_head)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)


class BatchedStepper(Stepper):
    """Steps through a batch scheduler; holds the session's registration there while it holds the slot."""

    def __init__(self, scheduler: BatchScheduler) -> None:
        super().__init__(scheduler.model)
        self.scheduler = scheduler

    def _joined(self) -> None:
        self.scheduler.register()

    def _leaving(self) -> None:
        self.scheduler.unregister()

    def step(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        return self.scheduler.step(state, token_ids, prompt_head=prompt_head)

    async def astep(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        return await self.scheduler.astep(state, token_ids, prompt_head=prompt_head)


def stepper_for(model: StreamModel, scheduler: BatchScheduler | None = None, executor: Executor | None = None) -> Stepper:
    """The stepper for a session on ``model`` (through ``scheduler`` when batching)."""
    if scheduler is not None:
        if scheduler.model is not model:
            raise GuardConfigError("the batch scheduler serves another model")
        return BatchedStepper(scheduler)
    return DirectStepper(model, executor)
