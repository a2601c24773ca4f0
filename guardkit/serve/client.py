"""RemoteModel: a guard model served by ``guardkit serve``, used like a local StreamModel.

``Guard(model=RemoteModel(handle_or_url))`` works with every driver, policy,
integration and batching mode, sync and async: the session tokenizes, renders
and judges here exactly as in-process; only the model steps cross the network.

The KV state stays on the replica. What the session holds instead is a
:class:`RemoteState`: the state's length, the token ids it was built from and
a lease on its session key. That makes faults lose nothing:

- the replica does not hold the state (it restarted, evicted or expired it):
  it answers ``missing`` and the step is resent with the ids, which rebuilds
  the state there (one prefill; the logits agree with the incremental ones to
  float rounding);
- the replica died, or the step failed in transit or timed out: the session
  gets a new key (so the router picks a replica by the new key: usually
  another one) and the step is resent with its ids, up to ``retries`` times;
  after that it raises :class:`~guardkit.errors.RemoteModelError` and the
  session's policy decides (``failure_mode``), for that session alone.

The ids are at most ``max_positions`` per state (the session's
:class:`~guardkit.kvwindow.KVWindow` re-prefills before that), so what a client
keeps per session is bounded. When a session's last state is dropped (the
session finished, closed, blocked or was garbage collected) its lease dies and
the key is closed on its replica by a background thread (a finalizer only
appends to a queue: it never blocks or takes a lock).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from tokenizers import Tokenizer

from guardkit.errors import GuardConfigError, ModelLoadError, RemoteModelError, SessionStoreFullError
from guardkit.manifest import Manifest
from guardkit.model import StepOutput, StreamModel
from guardkit.serve.transport import HttpTransport, RayTransport, Transport, TransportError
from guardkit.serve.wire import StepReply, StepRequest
from guardkit.stepper import SlotPool

__all__ = ["RemoteModel", "RemoteState"]


@dataclass(frozen=True)
class _RemoteClassifier:
    """Stands for a served bundle's prompt classifier (the session only checks it is there and reads its categories)."""

    categories: tuple[str, ...]


class _Lease:
    """One session key; its replica's state is closed once no RemoteState refers to it any more."""

    __slots__ = ("key", "__weakref__")

    def __init__(self, closing: deque[str]) -> None:
        self.key = uuid.uuid4().hex
        finalizer = weakref.finalize(self, closing.append, self.key)  # deque.append: atomic, lock-free
        finalizer.atexit = False


@dataclass(frozen=True)
class RemoteState:
    """A session's state on a replica: its length, the ids it was built from, and its key's lease.

    ``batch``/``row`` exist so the client-side batcher treats it as an unbatched state.
    """

    length: int
    ids: tuple[int, ...] = ()
    lease: _Lease | None = None
    batch: None = None
    row: int = 0

    @property
    def nbytes(self) -> int:
        return 0  # the KV cache is on the replica

    @property
    def key(self) -> str | None:
        return self.lease.key if self.lease is not None else None


class RemoteModel:
    """A guard model on a Ray Serve deployment, through a handle or over HTTP.

    Args:
        target: a Serve ``DeploymentHandle`` of the guard-model deployment (inside
            the Ray cluster), or the HTTP address of its route, e.g.
            ``"http://guard-head:8000/guardkit"`` (anywhere).
        timeout_s: longest wait for one step attempt.
        retries: further attempts after a failed or timed-out one, each on a new
            session key (see the module docstring); then ``RemoteModelError``.
        max_sessions: cap on this client's live sessions (``SessionLimitError`` past it).
    """

    def __init__(self, target: Any, *, timeout_s: float = 10.0, retries: int = 3, max_sessions: int | None = None) -> None:
        if timeout_s <= 0 or retries < 0:
            raise GuardConfigError("timeout_s must be > 0 and retries >= 0")
        self.timeout_s = timeout_s
        self.retries = retries
        self._transport: Transport = HttpTransport(target) if isinstance(target, str) else RayTransport(target)
        self.target = str(target) if isinstance(target, str) else "ray-serve-handle"
        try:
            info = self._transport.info(timeout_s=max(timeout_s, 30.0))
            self.manifest: Manifest = Manifest.model_validate(info["manifest"])
        except Exception as exc:  # noqa: BLE001 - transport and validation errors alike
            raise ModelLoadError(f"cannot read the served model's manifest: {exc}", path=self.target) from None
        self.tokenizer, self._control_tokenizer = _tokenizers(info["tokenizer"], self.target)
        self.remote_providers: list[str] = list(info.get("providers", []))
        m = self.manifest
        self.categories: tuple[str, ...] = m.categories
        self.prompt_categories: tuple[str, ...] = tuple(info.get("prompt_categories", m.prompt_categories or ()))
        # the bundle's prompt classifier (a second graph), if it has one, runs on the replicas too
        self.prompt_classifier: _RemoteClassifier | None = (
            _RemoteClassifier(self.prompt_categories) if info.get("prompt_classifier") else None
        )
        self.has_prompt_head = bool(info.get("has_prompt_head", False))
        self.device = "remote"
        self.max_sessions = max_sessions
        self._slots = SlotPool(max_sessions)
        self._closing: deque[str] = deque()
        self._closed = False
        self._closer = threading.Thread(target=self._close_keys, name="guardkit-remote-closer", daemon=True)
        self._closer.start()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self.rebuilds = 0  # steps resent with their state's ids (the replica did not hold the state)
        self.moves = 0  # steps retried on a new key after a failure or time-out

    # -- what the session reads (the StreamModel interface) -------------
    @property
    def path(self) -> str:
        return self.target

    @property
    def max_positions(self) -> int:
        return self.manifest.max_positions

    @property
    def providers(self) -> list[str]:
        return [f"remote:{p}" for p in self.remote_providers]

    # rendering is StreamModel's own code (it reads only manifest, tokenizer and _control_tokenizer),
    # so a served model renders prompts exactly as a local one does
    prompt_token_ids = StreamModel.prompt_token_ids
    response_prefix_ids = StreamModel.response_prefix_ids
    special_token_ids = StreamModel.special_token_ids

    def template_head_tail(self) -> tuple[list[int], list[int]]:
        return StreamModel.template_head_tail(self)  # type: ignore[arg-type, attr-defined, no-any-return]

    # the reply check is StreamModel's too: it reads the manifest and runs classify_reply_windows (on a replica)
    reply_window = StreamModel.reply_window
    classify_reply = StreamModel.classify_reply

    def classify_prompt(self, windows: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The bundle's prompt classifier on the rendered prompt's windows, run on a replica (any: it keeps no state)."""
        return self._classify(windows, reply=False)

    def classify_reply_windows(self, windows: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The bundle's reply classifier on rendered reply windows, run on a replica."""
        return self._classify(windows, reply=True)

    def _classify(self, windows: Sequence[Sequence[int]], *, reply: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.prompt_classifier is None:
            raise RuntimeError("this bundle has no prompt classifier")
        failures = 0
        while True:
            try:
                scored = self._transport.classify([list(map(int, w)) for w in windows], timeout_s=self.timeout_s, reply=reply)
                break
            except TransportError as exc:
                failures += 1
                if failures > self.retries:
                    raise RemoteModelError(f"the prompt classifier failed {failures} times; last: {exc}") from exc
                time.sleep(min(1.0, 0.05 * 2 ** (failures - 1)))
        return [(np.asarray(risk, dtype=np.float32), np.asarray(category, dtype=np.float32)) for risk, category in scored]

    def acquire_slot(self) -> None:
        self._slots.acquire()

    def release_slot(self) -> None:
        self._slots.release()

    @property
    def live_sessions(self) -> int:
        return self._slots.live

    def empty_state(self) -> RemoteState:
        return RemoteState(0)

    # -- steps -----------------------------------------------------------
    def step(self, state: RemoteState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        """One step on the replica that holds ``state`` (rebuilt elsewhere when it is lost; see the module docstring)."""
        attempt = _Attempt(self, state, token_ids, prompt_head)
        while True:
            request = attempt.request()
            try:
                reply = self._transport.step(request, timeout_s=self.timeout_s)
            except TransportError as exc:
                time.sleep(attempt.failed(exc))
                continue
            if attempt.done(reply):
                return attempt.output(reply)

    async def astep(self, state: RemoteState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        """:meth:`step` for asyncio: awaited on the caller's loop, no thread per stream."""
        attempt = _Attempt(self, state, token_ids, prompt_head)
        while True:
            request = attempt.request()
            try:
                reply = await self._transport.astep(request, timeout_s=self.timeout_s)
            except TransportError as exc:
                await asyncio.sleep(attempt.failed(exc))
                continue
            if attempt.done(reply):
                return attempt.output(reply)

    def step_many(self, states: Sequence[RemoteState], token_lists: Sequence[Sequence[int]], *, prompt_head: bool = False) -> list[StepOutput]:
        """Several sessions' steps, sent concurrently (a client-side batcher's batch); each one's result as :meth:`step`'s."""
        if len(states) != len(token_lists):
            raise ValueError("states and token_lists differ in length")

        async def gather() -> list[StepOutput]:
            return list(await asyncio.gather(*(self.astep(s, ids, prompt_head=prompt_head) for s, ids in zip(states, token_lists))))

        return asyncio.run_coroutine_threadsafe(gather(), self._private_loop()).result()

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        """Close the keys still pending and stop the background threads (the replicas' TTL frees anything left)."""
        self._closed = True
        self._closer.join(timeout=5)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._transport.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> list[dict[str, Any]]:
        """The replicas' counters, as many calls as it takes to see each replica at least once (best effort)."""
        return self._transport.stats(timeout_s=self.timeout_s)

    def __repr__(self) -> str:
        return f"RemoteModel({self.manifest.name!r} {self.manifest.version}, target={self.target!r})"

    # -- internals -------------------------------------------------------
    def _new_lease(self) -> _Lease:
        return _Lease(self._closing)

    def _close_keys(self) -> None:
        """Background thread: close the keys whose sessions were dropped (polls: finalizers only append)."""
        while True:
            stopping = self._closed
            while self._closing:
                key = self._closing.popleft()
                try:
                    self._transport.close_key(key, timeout_s=min(self.timeout_s, 5.0))
                except Exception:  # noqa: BLE001 - the replica's TTL frees it anyway
                    pass
            if stopping:
                return
            time.sleep(0.05)

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop in a daemon thread, for :meth:`step_many` called from a plain thread."""
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="guardkit-remote-loop", daemon=True).start()
                self._loop = loop
            return self._loop


class _Attempt:
    """One step's attempts: which request to send next, and what a reply or a failure means."""

    def __init__(self, model: RemoteModel, state: RemoteState, token_ids: Sequence[int], prompt_head: bool) -> None:
        if not isinstance(state, RemoteState):
            raise TypeError(f"a RemoteModel steps RemoteState, got {type(state).__name__}")
        ids = [int(i) for i in token_ids]
        if not ids:
            raise ValueError("run() needs at least one token")
        if state.length + len(ids) > model.max_positions:
            raise ValueError(f"{state.length + len(ids)} positions exceed the model's max_positions {model.max_positions}")
        self.model, self.state, self.ids, self.prompt_head = model, state, ids, prompt_head
        self.lease = state.lease if state.length and state.lease is not None else model._new_lease()
        self.history: list[int] | None = None
        self.failures = 0

    def request(self) -> StepRequest:
        return StepRequest(self.lease.key, self.state.length, self.ids, self.prompt_head, self.history)

    def failed(self, exc: Exception) -> float:
        """A transport failure or time-out: move to a new key (and rebuild there); the pause before the next attempt."""
        self.failures += 1
        if self.failures > self.model.retries:
            raise RemoteModelError(f"the guard model step failed {self.failures} times; last: {exc}") from exc
        self.model.moves += 1
        self.lease = self.model._new_lease()
        if self.state.length:
            self.history = list(self.state.ids)
        return min(1.0, 0.05 * 2 ** (self.failures - 1))

    def done(self, reply: StepReply) -> bool:
        if reply.status == "ok":
            return True
        if reply.status == "missing" and self.history is None:
            self.model.rebuilds += 1
            self.history = list(self.state.ids)
            return False
        if reply.status == "full":
            raise SessionStoreFullError(reply.message)
        raise RemoteModelError(f"the guard model step failed on its replica: {reply.message or reply.status}")

    def output(self, reply: StepReply) -> StepOutput:
        if reply.risk is None or reply.category is None or len(reply.risk) != len(self.ids):
            raise RemoteModelError("the replica's reply does not match the step")
        state = RemoteState(reply.length, self.state.ids + tuple(self.ids), self.lease)
        return StepOutput(reply.risk, reply.category, reply.prompt_risk, reply.prompt_category, state=state)  # type: ignore[arg-type]


def _tokenizers(tokenizer_json: str, target: str) -> tuple[Tokenizer, Tokenizer]:
    """The text tokenizer (special tokens read as text) and the template's own, as :class:`StreamModel` builds them."""
    try:
        control = Tokenizer.from_str(tokenizer_json)
        text = Tokenizer.from_str(tokenizer_json)
    except Exception as exc:  # tokenizers raises a bare Exception
        raise ModelLoadError(f"cannot load the served model's tokenizer: {exc}", path=target) from None
    for tok in (control, text):
        tok.no_truncation()
        tok.no_padding()
    text.encode_special_tokens = True
    return text, control
