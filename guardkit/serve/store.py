"""A replica's bounded store of session KV states: LRU past a count, TTL, and a memory cap.

Three bounds, each with its own job:

- ``max_sessions``: past it the least recently used session is evicted. Its
  client loses nothing (it re-prefills on its next step, see
  :mod:`guardkit.serve.client`), so this bound never refuses anyone.
- ``ttl_s``: a session idle for longer is dropped (a client that vanished
  without closing).
- ``max_bytes``: admission control. A *new* session that would take the KV
  bytes held past the cap is refused with :class:`~guardkit.errors.SessionStoreFullError`;
  the sessions already held keep stepping (a session grows by at most
  ``max_positions`` positions, so the cap is exceeded by at most that much per
  session held: size it with that margin).

The store is used from one event loop (a Serve replica's), so it takes no lock.
``clock`` is injectable so the bounds are tested without sleeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from guardkit.errors import GuardConfigError, SessionStoreFullError
from guardkit.model import KVState

__all__ = ["SessionStore", "StoreStats"]


@dataclass
class StoreStats:
    """Counters of one store (returned by a replica's ``stats``)."""

    sessions: int = 0
    bytes: int = 0
    opened: int = 0
    closed: int = 0
    expired: int = 0
    evicted: int = 0
    refused: int = 0


class _Entry:
    __slots__ = ("state", "nbytes", "used")

    def __init__(self, state: KVState, used: float) -> None:
        self.state = state
        self.nbytes = state.nbytes
        self.used = used


class SessionStore:
    """Session key -> KV state, least recently used first."""

    def __init__(
        self,
        *,
        max_sessions: int = 10_000,
        ttl_s: float = 300.0,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_add: Callable[[str], None] | None = None,
        on_remove: Callable[[str], None] | None = None,
    ) -> None:
        if max_sessions < 1:
            raise GuardConfigError(f"max_sessions must be >= 1, got {max_sessions}")
        if ttl_s <= 0:
            raise GuardConfigError(f"ttl_s must be > 0, got {ttl_s}")
        if max_bytes is not None and max_bytes < 1:
            raise GuardConfigError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._on_add = on_add  # a key entered the store (the replica registers it with its batcher)
        self._on_remove = on_remove  # a key left the store: closed, expired or evicted
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self.stats = StoreStats()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """KV bytes held by the sessions in the store."""
        return self._bytes

    def get(self, key: str) -> KVState | None:
        """The session's state (marking it used), or ``None`` if the store does not hold it."""
        self.expire()
        entry = self._entries.get(key)
        if entry is None:
            return None
        entry.used = self._clock()
        self._entries.move_to_end(key)
        return entry.state

    def admit(self, key: str) -> None:
        """Refuse a new session at the memory cap (``SessionStoreFullError``); a held key is always admitted."""
        self.expire()
        if key in self._entries or self.max_bytes is None or self._bytes < self.max_bytes:
            return
        self.stats.refused += 1
        raise SessionStoreFullError(
            f"this guard replica holds {len(self._entries)} sessions in {self._bytes} KV bytes, at its memory cap of"
            f" {self.max_bytes} bytes; retry later, or add replicas or memory (guardkit serve --max-kv-mb)"
        )

    def put(self, key: str, state: KVState) -> None:
        """Store (or replace) the session's state; a new key past ``max_sessions`` evicts the least recently used."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        else:
            while len(self._entries) >= self.max_sessions:
                victim, gone = self._entries.popitem(last=False)
                self._forget(victim, gone.nbytes)
                self.stats.evicted += 1
            self.stats.opened += 1
            if self._on_add is not None:
                self._on_add(key)
        entry = _Entry(state, self._clock())
        self._entries[key] = entry
        self._bytes += entry.nbytes
        self.stats.sessions = len(self._entries)
        self.stats.bytes = self._bytes

    def close(self, key: str) -> bool:
        """Free the session's state; ``False`` if the store did not hold it."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._forget(key, entry.nbytes)
        self.stats.closed += 1
        return True

    def expire(self) -> int:
        """Drop the sessions idle for longer than ``ttl_s``; how many were dropped."""
        deadline = self._clock() - self.ttl_s
        dropped = 0
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.used > deadline:
                break
            del self._entries[key]
            self._forget(key, entry.nbytes)
            dropped += 1
        self.stats.expired += dropped
        return dropped

    def clear(self) -> None:
        for key in list(self._entries):
            self.close(key)

    # -- internals -------------------------------------------------------
    def _forget(self, key: str, nbytes: int) -> None:
        self._bytes -= nbytes
        self.stats.sessions = len(self._entries)
        self.stats.bytes = self._bytes
        if self._on_remove is not None:
            self._on_remove(key)
