"""How a RemoteModel reaches the replicas: a Ray Serve handle, or HTTP through Serve's proxy.

Both send the session key as Serve's multiplexed model id, which the
deployment's :class:`~guardkit.serve.routing.SessionAffinityRouter` routes by.
A :class:`TransportError` means the step may not have run or its reply was
lost (a dead or unreachable replica, a time-out): the client retries it on a
new key. Replies that did arrive, failures included, are :class:`StepReply`.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from typing import Any, Protocol

from guardkit.errors import GuardConfigError
from guardkit.serve.wire import SESSION_HEADER, StepReply, StepRequest

__all__ = ["HttpTransport", "RayTransport", "Transport", "TransportError"]

_STATS_PROBES = 16  # calls on random keys to see every replica (rendezvous hashing spreads them)


class TransportError(Exception):
    """The step did not reach a replica, or its reply did not come back in time."""


class Transport(Protocol):
    def info(self, *, timeout_s: float) -> dict[str, Any]: ...

    def step(self, request: StepRequest, *, timeout_s: float) -> StepReply: ...

    async def astep(self, request: StepRequest, *, timeout_s: float) -> StepReply: ...

    def classify(self, windows: list[list[int]], *, timeout_s: float, reply: bool = False) -> list[Any]: ...

    def close_key(self, key: str, *, timeout_s: float) -> None: ...

    def stats(self, *, timeout_s: float) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def _by_pid(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({r.get("pid"): r for r in replies}.values())


class RayTransport:
    """Calls the deployment's methods through a Serve ``DeploymentHandle``."""

    def __init__(self, handle: Any) -> None:
        if not hasattr(handle, "options") or not hasattr(handle, "step"):
            raise GuardConfigError(f"RemoteModel needs a Serve DeploymentHandle or an http(s) address, got {type(handle).__name__}")
        self.handle = handle

    def _for(self, key: str) -> Any:
        return self.handle.options(multiplexed_model_id=key)

    def info(self, *, timeout_s: float) -> dict[str, Any]:
        return dict(self.handle.info.remote().result(timeout_s=timeout_s))

    def step(self, request: StepRequest, *, timeout_s: float) -> StepReply:
        try:
            response = self._for(request.key).step.remote(request)
        except Exception as exc:  # Ray raises several unrelated types
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return response.result(timeout_s=timeout_s)  # type: ignore[no-any-return]
        except TimeoutError as exc:
            response.cancel()
            raise TransportError(f"no reply within {timeout_s} s") from exc
        except Exception as exc:  # the replica died, was unreachable, or the request was dropped
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def astep(self, request: StepRequest, *, timeout_s: float) -> StepReply:
        try:
            response = self._for(request.key).step.remote(request)
        except Exception as exc:  # a transport failure: the caller retries on a new key
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

        async def reply() -> StepReply:
            return await response  # type: ignore[no-any-return]

        try:
            return await asyncio.wait_for(reply(), timeout_s)
        except asyncio.TimeoutError as exc:
            response.cancel()
            raise TransportError(f"no reply within {timeout_s} s") from exc
        except asyncio.CancelledError:
            response.cancel()
            raise
        except Exception as exc:  # a transport failure: the caller retries on a new key
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    def classify(self, windows: list[list[int]], *, timeout_s: float, reply: bool = False) -> list[Any]:
        try:
            return list(self.handle.classify.remote(windows, reply).result(timeout_s=timeout_s))
        except Exception as exc:  # a transport failure: the caller retries on a new key
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    def close_key(self, key: str, *, timeout_s: float) -> None:
        self._for(key).close.remote(key)  # fire and forget: an unclosed key expires on its replica

    def stats(self, *, timeout_s: float) -> list[dict[str, Any]]:
        responses = [self._for(uuid.uuid4().hex).stats.remote() for _ in range(_STATS_PROBES)]
        return _by_pid([r.result(timeout_s=timeout_s) for r in responses])

    def close(self) -> None:
        pass


class HttpTransport:
    """Calls the deployment's HTTP routes (``/info``, ``/step``, ``/close``, ``/stats``) with httpx."""

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise GuardConfigError(f"RemoteModel needs a Serve DeploymentHandle or an http(s) address, got {url!r}")
        try:
            import httpx
        except ImportError:  # pragma: no cover - httpx comes with guardkit[serve] and guardkit[serve-client]
            raise GuardConfigError("RemoteModel over HTTP needs httpx: pip install 'guardkit[serve-client]'") from None
        self._httpx = httpx
        self.url = url.rstrip("/")
        self._limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        self._client = httpx.Client(limits=self._limits)
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def info(self, *, timeout_s: float) -> dict[str, Any]:
        response = self._client.get(f"{self.url}/info", timeout=timeout_s)
        response.raise_for_status()
        return dict(response.json())

    def _reply(self, response: Any) -> StepReply:
        if response.status_code in (200, 400, 500, 507):
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, dict) and "status" in data:
                return StepReply.from_json(data)
        raise TransportError(f"HTTP {response.status_code} from {self.url}/step")

    def step(self, request: StepRequest, *, timeout_s: float) -> StepReply:
        try:
            response = self._client.post(f"{self.url}/step", json=request.to_json(), headers={SESSION_HEADER: request.key}, timeout=timeout_s)
        except self._httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return self._reply(response)

    async def astep(self, request: StepRequest, *, timeout_s: float) -> StepReply:
        client = self._aclient()
        try:
            response = await client.post(f"{self.url}/step", json=request.to_json(), headers={SESSION_HEADER: request.key}, timeout=timeout_s)
        except self._httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return self._reply(response)

    def _aclient(self) -> Any:
        """One AsyncClient per event loop (an httpx AsyncClient's connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = self._httpx.AsyncClient(limits=self._limits)
        return client

    def classify(self, windows: list[list[int]], *, timeout_s: float, reply: bool = False) -> list[Any]:
        try:
            response = self._client.post(f"{self.url}/classify", json={"windows": windows, "reply": reply}, timeout=timeout_s)
        except self._httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise TransportError(f"HTTP {response.status_code} from {self.url}/classify")
        return list(response.json()["scores"])

    def close_key(self, key: str, *, timeout_s: float) -> None:
        self._client.post(f"{self.url}/close", json={"key": key}, headers={SESSION_HEADER: key}, timeout=timeout_s)

    def stats(self, *, timeout_s: float) -> list[dict[str, Any]]:
        replies = []
        for _ in range(_STATS_PROBES):
            response = self._client.get(f"{self.url}/stats", headers={SESSION_HEADER: uuid.uuid4().hex}, timeout=timeout_s)
            response.raise_for_status()
            replies.append(response.json())
        return _by_pid(replies)

    def close(self) -> None:
        self._client.close()
