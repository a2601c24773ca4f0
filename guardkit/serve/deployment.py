"""The Ray Serve deployment: replicas that each hold one StreamModel, its batcher and a session store.

Python callers use a deployment handle (``handle.options(multiplexed_model_id=key).step.remote(...)``,
which :class:`~guardkit.serve.RemoteModel` does for them); processes outside the
Ray cluster use the same methods over HTTP through Serve's proxy (a FastAPI
ingress on the same deployment): ``GET {route}/info``, ``POST {route}/step``,
``POST {route}/close``, ``GET {route}/stats``, with the session key in the
``serve_multiplexed_model_id`` header so the proxy routes it like a handle would.
"""

# no `from __future__ import annotations` here: FastAPI reads the route methods' annotations at run time
import os
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.config import RequestRouterConfig

from guardkit.model import StreamModel
from guardkit.serve.replica import GuardReplica
from guardkit.serve.routing import SessionAffinityRouter
from guardkit.serve.wire import StepReply, StepRequest

__all__ = ["DEFAULT_APP", "DEFAULT_ROUTE", "GuardModelServer", "ServeOptions", "build_app", "run"]

DEFAULT_APP = "guardkit"
DEFAULT_ROUTE = "/guardkit"

_api = FastAPI(title="guardkit guard model", docs_url=None, redoc_url=None)

_HTTP_STATUS = {"ok": 200, "missing": 200, "full": 507, "error": 500}


@dataclass(frozen=True)
class ServeOptions:
    """How the deployment is built: the model, replicas, and each replica's bounds.

    ``num_cpus``/``num_gpus`` are what Ray reserves per replica (``device="cuda"``
    reserves one GPU unless ``num_gpus`` says otherwise); ``threads`` are ONNX
    Runtime's intra-op threads per replica.
    """

    model: str | None = None
    replicas: int = 1
    device: str = "cpu"
    threads: int | None = None
    num_cpus: float = 1.0
    num_gpus: float | None = None
    max_sessions: int = 10_000
    ttl_s: float = 300.0
    max_bytes: int | None = None
    max_ongoing_requests: int = 512
    max_wait_ms: float = 2.0
    max_batch: int = 64
    access_log: bool = False


@serve.ingress(_api)
class GuardModelServer:
    """One replica: see :class:`~guardkit.serve.replica.GuardReplica` for what a step does."""

    def __init__(self, options: ServeOptions) -> None:
        model = StreamModel(options.model, device=options.device, threads=options.threads)
        self.replica = GuardReplica(model, max_sessions=options.max_sessions, ttl_s=options.ttl_s, max_bytes=options.max_bytes,
                                    max_wait_ms=options.max_wait_ms, max_batch=options.max_batch)

    # -- the handle interface (RemoteModel over Ray) --------------------
    async def info(self) -> dict[str, Any]:
        return {**self.replica.info(), "pid": os.getpid()}

    async def step(self, request: StepRequest) -> StepReply:
        return await self.replica.step(request)

    async def classify(self, windows: list[list[int]], reply: bool = False) -> list[tuple[list[float], list[float]]]:
        return await self.replica.classify(windows, reply)

    async def close(self, key: str) -> bool:
        return self.replica.close(key)

    async def stats(self) -> dict[str, Any]:
        return {**self.replica.stats(), "pid": os.getpid()}

    # -- the HTTP interface (RemoteModel over HTTP, any language) --------
    @_api.get("/info")
    async def http_info(self) -> dict[str, Any]:
        return await self.info()

    @_api.post("/step")
    async def http_step(self, request: Request) -> JSONResponse:
        try:
            step = StepRequest.from_json(await request.json())
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            return JSONResponse({"status": "error", "message": f"bad step request: {exc}"}, status_code=400)
        reply = await self.replica.step(step)
        return JSONResponse(reply.to_json(), status_code=_HTTP_STATUS[reply.status])

    @_api.post("/classify")
    async def http_classify(self, request: Request) -> JSONResponse:
        data = await request.json()
        windows = data.get("windows") if isinstance(data, dict) else None
        if not isinstance(windows, list) or not all(isinstance(w, list) and w and all(isinstance(i, int) for i in w) for w in windows):
            return JSONResponse({"message": "windows must be a list of non-empty lists of token ids"}, status_code=400)
        reply = data.get("reply", False)
        if not isinstance(reply, bool):
            return JSONResponse({"message": "reply must be true or false"}, status_code=400)
        return JSONResponse({"scores": await self.replica.classify(windows, reply)})

    @_api.post("/close")
    async def http_close(self, request: Request) -> dict[str, Any]:
        data = await request.json()
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(key, str):
            return {"closed": False}
        return {"closed": self.replica.close(key)}

    @_api.get("/stats")
    async def http_stats(self) -> dict[str, Any]:
        return await self.stats()

    def __del__(self) -> None:
        replica = getattr(self, "replica", None)
        if replica is not None:
            replica.scheduler.close()


def build_app(options: ServeOptions) -> Any:
    """The bound Serve application for ``options`` (pass it to ``serve.run``)."""
    num_gpus = options.num_gpus if options.num_gpus is not None else (1.0 if options.device in ("cuda", "tensorrt") else 0.0)
    deployment = serve.deployment(
        GuardModelServer,
        name="GuardModel",
        num_replicas=options.replicas,
        max_ongoing_requests=options.max_ongoing_requests,
        ray_actor_options={"num_cpus": options.num_cpus, "num_gpus": num_gpus},
        request_router_config=RequestRouterConfig(request_router_class=SessionAffinityRouter),
        logging_config={"enable_access_log": options.access_log},  # one line per step is too much by default
    )
    return deployment.bind(options)


def run(options: ServeOptions, *, name: str = DEFAULT_APP, route_prefix: str = DEFAULT_ROUTE, blocking: bool = False) -> Any:
    """Deploy the guard model on the connected Ray cluster (``ray.init`` first); returns its deployment handle."""
    return serve.run(build_app(options), name=name, route_prefix=route_prefix, blocking=blocking)
