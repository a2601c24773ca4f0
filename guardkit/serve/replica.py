"""What one guard-model replica does, without Ray: a model, its batcher and a session store.

The Serve deployment (:mod:`guardkit.serve.deployment`) is a thin shell around
:class:`GuardReplica`, so the replica's logic is tested in-process too.

A session's KV state lives here, under the session key the client chose. A
step names the state it continues by its length (``base``); when the store
does not hold that state (the replica restarted, the session was evicted or
expired, or it was routed elsewhere meanwhile) the reply is ``missing`` and the
client resends the step with the state's token ids, which rebuilds the state
here in the same call (one prefill). Every step goes through the replica's
:class:`~guardkit.batching.BatchScheduler`, so concurrent sessions share
ONNX Runtime calls; the sessions the store holds count as the batcher's
active sessions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

import numpy as np

from guardkit.batching import BatchScheduler
from guardkit.errors import SessionStoreFullError
from guardkit.model import StreamModel
from guardkit.serve.store import SessionStore
from guardkit.serve.wire import StepReply, StepRequest

__all__ = ["GuardReplica"]

logger = logging.getLogger("guardkit.serve")


class GuardReplica:
    """One model, its batcher and its bounded session store.

    Args:
        model: the loaded model this replica serves.
        max_sessions, ttl_s, max_bytes: the session store's bounds (see :class:`SessionStore`).
        max_wait_ms, max_batch: the batcher's (see :class:`BatchScheduler`).
    """

    def __init__(
        self,
        model: StreamModel,
        *,
        max_sessions: int = 10_000,
        ttl_s: float = 300.0,
        max_bytes: int | None = None,
        max_wait_ms: float = 2.0,
        max_batch: int = 64,
    ) -> None:
        self.model = model
        self.scheduler = BatchScheduler(model, max_wait_ms=max_wait_ms, max_batch=max_batch)
        self.store = SessionStore(max_sessions=max_sessions, ttl_s=ttl_s, max_bytes=max_bytes,
                                  on_add=lambda _key: self.scheduler.register(), on_remove=lambda _key: self.scheduler.unregister())
        self.misses = 0  # steps whose state this replica did not hold (the client resent them with history)
        self.rebuilt = 0  # states rebuilt here from a client's history
        self._sweeper: asyncio.Task[None] | None = None

    def info(self) -> dict[str, Any]:
        """What a client needs to tokenize and render locally: the manifest and the tokenizer file."""
        tokenizer = (self.model.path / self.model.manifest.tokenizer_file).read_text(encoding="utf-8")
        return {"manifest": self.model.manifest.model_dump(mode="json"), "tokenizer": tokenizer, "providers": self.model.providers,
                "has_prompt_head": self.model.has_prompt_head, "prompt_categories": list(self.model.prompt_categories),
                "prompt_classifier": getattr(self.model, "prompt_classifier", None) is not None}

    async def step(self, request: StepRequest) -> StepReply:
        """Run one step of a session (see the module docstring); errors come back as a reply, never raised."""
        self._ensure_sweeper()
        try:
            return await self._step(request)
        except SessionStoreFullError as exc:
            return StepReply("full", message=str(exc))
        except Exception as exc:  # noqa: BLE001 - the client's policy decides what a failed step means
            logger.warning("guardkit replica: step failed: %s", exc)
            return StepReply("error", message=f"{type(exc).__name__}: {exc}")

    async def _step(self, request: StepRequest) -> StepReply:
        store, ids = self.store, request.ids
        if request.base == 0:
            store.admit(request.key)
            state, run = self.model.empty_state(), ids
        else:
            held = store.get(request.key)
            if held is not None and held.length == request.base:
                state, run = held, ids
            elif request.history is None:
                self.misses += 1
                return StepReply("missing")
            else:
                if len(request.history) != request.base:
                    raise ValueError(f"history has {len(request.history)} ids for a state of length {request.base}")
                store.admit(request.key)
                state, run = self.model.empty_state(), request.history + ids
                self.rebuilt += 1
        out = await self.scheduler.astep(state, run, prompt_head=request.prompt_head)
        store.put(request.key, out.state)
        k = len(ids)
        tail = (lambda a: None if a is None else a[len(a) - k :])
        return StepReply("ok", out.state.length, tail(out.risk), tail(out.category), tail(out.prompt_risk), tail(out.prompt_category))

    async def classify(self, windows: list[list[int]], reply: bool = False) -> list[tuple[list[float], list[float]]]:
        """The bundle's prompt (or, with ``reply``, reply) classifier on rendered windows (stateless: any replica), off the serving loop."""
        classify = self.model.classify_reply_windows if reply else self.model.classify_prompt  # type: ignore[attr-defined]
        scored = await asyncio.to_thread(classify, windows)
        return [(np.asarray(risk, dtype=np.float32).tolist(), np.asarray(category, dtype=np.float32).tolist()) for risk, category in scored]

    def close(self, key: str) -> bool:
        """Free a session's state (``False``: not held here)."""
        return self.store.close(key)

    def stats(self) -> dict[str, Any]:
        self.store.expire()
        batches = self.scheduler.stats
        return {**asdict(self.store.stats), "misses": self.misses, "rebuilt": self.rebuilt,
                "batches": batches.batches, "steps": batches.steps, "mean_batch": round(batches.mean_batch, 2)}

    def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.store.clear()
        self.scheduler.close()

    def _ensure_sweeper(self) -> None:
        """Expire idle sessions even when no step arrives (started on the first step, on the serving loop)."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        period = min(30.0, max(0.05, self.store.ttl_s / 4))
        while True:
            await asyncio.sleep(period)
            self.store.expire()
