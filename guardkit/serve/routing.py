"""Session affinity: every step of a session goes to the replica that holds its KV state.

A request carries its session key as Serve's *multiplexed model id*
(``handle.options(multiplexed_model_id=key)``, or the ``serve_multiplexed_model_id``
HTTP header, which Serve's proxy maps to the same field). This router picks the
replica by rendezvous (highest-random-weight) hashing of that key over the
replicas it currently sees:

- every router (each client process, Serve's HTTP proxy) computes the same
  replica from the key alone: no table to share or propagate, nothing to look
  up per step;
- when a replica dies, only its sessions move (each to its own next choice);
  a new replica takes over about 1/N of the sessions. A moved session misses
  once and is rebuilt from the client's token ids.

Serve's own multiplexing routing (``@serve.multiplexed``) was not used: it learns
which replica holds an id from the replicas' reports to the controller (pushed
every 0.1 s and broadcast to every router), so a session's second step, sent
milliseconds after its first, usually goes to a replica chosen by load and
misses; and every session opened or closed would be a controller update.

The router waits for the chosen replica (it never spills a session to another
replica while the chosen one is only busy: moving a KV state costs a full
re-prefill, twice). A slow replica's sessions are moved by the *client*
instead, which re-keys a session whose step timed out (see
:mod:`guardkit.serve.client`). Requests without a key (``info``, ``stats``) go
to the least loaded replica, as Serve's default router would send them.
"""

from __future__ import annotations

import hashlib
from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

__all__ = ["SessionAffinityRouter", "rendezvous_order"]


def _weight(key: str, replica: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}\x00{replica}".encode(), digest_size=8).digest(), "big")


def rendezvous_order(key: str, replicas: list[str]) -> list[str]:
    """The replicas in the order a session key prefers them (the first one holds the session)."""
    return sorted(replicas, key=lambda r: _weight(key, r), reverse=True)


class SessionAffinityRouter(RequestRouter):
    """Routes each session key to one replica by rendezvous hashing (see the module docstring)."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # the chosen replica is busy: wait, do not spin
        key = pending_request.metadata.multiplexed_model_id if pending_request is not None else ""
        if not key or not candidate_replicas:
            return [candidate_replicas]
        best = max(candidate_replicas, key=lambda r: _weight(key, r.replica_id.unique_id))
        return [[best]]
