"""``guardkit serve``: run the guard-model deployment on a local or existing Ray cluster."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from typing import Any

__all__ = ["add_serve_parser", "cmd_serve"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port_in_use(host: str, port: int) -> str | None:
    """Why Serve's proxy could not bind ``host:port`` here, or None when it can.

    Probed before a local cluster starts, so a taken port is one clear line instead of Ray's
    proxy traceback after the cluster came up.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve --host {host!r}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the proxy's server does
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another with --port)"
    return None


def add_serve_parser(sub: Any) -> None:
    from guardkit.cli import _positive_int as _count  # called from guardkit.cli's parser: no import cycle

    serve = sub.add_parser(
        "serve", help="serve the guard model on Ray Serve for many app processes (needs guardkit[serve])",
        description="Start a local Ray cluster with the guard-model deployment (or deploy it on a running cluster with --address). "
                    "Apps use it with Guard(model=RemoteModel(URL or handle)).",
    )
    serve.add_argument("--model", default=None, help="model bundle directory, readable on every node (default: the shipped guardkit-mini)")
    serve.add_argument("--replicas", type=_count, default=1, help="replicas, each holding the model (default 1)")
    serve.add_argument("--device", default="cpu", choices=["cpu", "cuda", "tensorrt"], help="each replica's device (cuda reserves one GPU per replica)")
    serve.add_argument("--address", default=None,
                       help="a running Ray cluster to deploy on ('auto' on one of its nodes); default: start a local one")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host of Serve's proxy (0.0.0.0 to accept other machines)")
    serve.add_argument("--port", type=_port, default=8000, help="HTTP port of Serve's proxy (default 8000)")
    serve.add_argument("--name", default="guardkit", help="Serve application name (default guardkit)")
    serve.add_argument("--route", default="/guardkit", help="HTTP route prefix (default /guardkit)")
    serve.add_argument("--threads", type=_count, default=None, help="ONNX Runtime intra-op threads per replica")
    serve.add_argument("--num-cpus", type=_positive_float, default=1.0, help="CPUs Ray reserves per replica (default 1)")
    serve.add_argument("--max-sessions", type=_count, default=10_000, help="sessions a replica holds before evicting the least recently used")
    serve.add_argument("--ttl", type=_positive_float, default=300.0, help="seconds an idle session's state is kept (default 300)")
    serve.add_argument("--max-kv-mb", type=_positive_float, default=None,
                       help="KV memory cap per replica in MiB: new sessions past it are refused (SessionStoreFullError)")
    serve.add_argument("--detach", action="store_true", help="with --address: leave the deployment running and exit")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from guardkit.cli import EXIT_OK, UsageError

    if args.detach and args.address is None:
        raise UsageError("--detach needs --address: a local cluster ends with this command")
    if not args.route.startswith("/"):
        raise UsageError(f"--route must start with '/', got {args.route!r}")
    try:
        import ray
        from ray import serve
    except ImportError:
        raise UsageError("guardkit serve needs Ray Serve: pip install 'guardkit[serve]'") from None
    from guardkit.serve.deployment import ServeOptions, run

    options = ServeOptions(
        model=args.model, replicas=args.replicas, device=args.device, threads=args.threads, num_cpus=args.num_cpus,
        max_sessions=args.max_sessions, ttl_s=args.ttl, max_bytes=None if args.max_kv_mb is None else int(args.max_kv_mb * 2**20),
    )
    if args.address is None:
        taken = _port_in_use(args.host, args.port)
        if taken is not None:
            raise UsageError(taken)
        ray.init(include_dashboard=False)
    else:
        ray.init(address=args.address)
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
    except Exception as exc:  # Ray reports a proxy that cannot bind as a RayTaskError with a remote traceback
        if args.address is None:
            ray.shutdown()
        lines = str(exc).strip().splitlines()
        reason = lines[-1] if lines else type(exc).__name__
        raise UsageError(f"Serve's HTTP proxy did not start on {args.host}:{args.port}: {reason}") from None
    run(options, name=args.name, route_prefix=args.route)
    url = f"http://{args.host}:{args.port}{args.route}"
    print(f"guardkit serve: {args.replicas} replica(s) of {args.model or 'guardkit-mini'} on {args.device}, ready at {url}", flush=True)
    print(f"  python: Guard(model=RemoteModel({url!r}))  or, in the cluster, "
          f"RemoteModel(serve.get_deployment_handle('GuardModel', {args.name!r}))", flush=True)
    if args.detach:
        return EXIT_OK
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("  Ctrl-C stops it", flush=True)
    while not stop.wait(1.0):
        pass
    print("guardkit serve: stopping", file=sys.stderr, flush=True)
    serve.delete(args.name)
    if args.address is None:
        serve.shutdown()
        ray.shutdown()
    return EXIT_OK
