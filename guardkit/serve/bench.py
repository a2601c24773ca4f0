"""``guardkit bench --serve``: the guard in-process vs through Ray Serve (1 and 2 replicas), side by side.

One local Ray cluster holds two applications (1 replica, 2 replicas) of the
same model. Each round runs the same workload on every contender in turn
(in-process first, then 1 replica, then 2), so machine noise hits them alike:
``streams`` concurrent asyncio sessions, each fed ``tokens`` one-word deltas
after its prompt was checked. A delta costs about one model step, so the time
one ``afeed`` takes is the per-token latency a stream sees; tokens/s is all
streams' tokens over the wall time of the round. The overhead per step is the
served median latency minus the in-process one at the same concurrency: what
the network hop, Serve's router and the replica's event loop add.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from guardkit.guard import Guard
from guardkit.model import StreamModel
from guardkit.policy import Policy, policy_from_dict

__all__ = ["ServeBench", "print_serve_report", "run_serve_bench"]

_PROMPT = "tell me about the history of medicine"
_TEXT = ("the history of medicine is a long story about people who tried to help the sick with what they knew at the time "
         "and many of their ideas were wrong but some of them were right and we still use them today")


@dataclass
class Figures:
    tokens_per_s: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies_ms)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return {"tokens_per_s": round(statistics.median(self.tokens_per_s), 1),
                "p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3)}


@dataclass
class ServeBench:
    model: str
    tokens: int
    rounds: int
    machine: str
    rows: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "tokens": self.tokens, "rounds": self.rounds, "machine": self.machine, "rows": self.rows},
                          indent=2)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _policy() -> Policy:
    """Nothing may block: a blocked session stops stepping, and the benchmark measures steady steps."""
    return policy_from_dict({"name": "bench", "thresholds": {"unsafe": 1.0, "controversial": 1.0}, "prompt": {"action": "allow"}})


def _words(model: StreamModel, count: int) -> list[str]:
    words = [w for w in dict.fromkeys(_TEXT.split()) if len(model.tokenizer.encode(w, add_special_tokens=False).ids) == 1]
    if not words:
        raise RuntimeError("no single-token words in the benchmark text for this tokenizer")
    return [words[i % len(words)] for i in range(count)]


async def _workload(guard: Guard, streams: int, words: list[str]) -> tuple[float, list[float]]:
    """Seconds for all streams' deltas, and every delta's latency in ms."""
    sessions = [guard.session(_PROMPT) for _ in range(streams)]
    await asyncio.gather(*(s.astart() for s in sessions))

    async def feed(session: Any) -> list[float]:
        latencies = []
        for word in words:
            began = time.perf_counter()
            await session.afeed(word + " ")
            latencies.append((time.perf_counter() - began) * 1000.0)
        await session.afinish()
        return latencies

    began = time.perf_counter()
    per_stream = await asyncio.gather(*(feed(s) for s in sessions))
    elapsed = time.perf_counter() - began
    for s in sessions:
        s.close()
    return elapsed, [ms for stream in per_stream for ms in stream]


def run_serve_bench(
    model_path: str | None = None,
    *,
    tokens: int = 64,
    rounds: int = 3,
    streams: list[int] | None = None,
    threads: int | None = 1,
    num_cpus: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> ServeBench:
    """Deploy 1- and 2-replica applications on a local Ray cluster and time them against the in-process guard."""
    import ray
    from ray import serve

    from guardkit.serve.client import RemoteModel
    from guardkit.serve.deployment import ServeOptions, run

    say = progress or (lambda _m: None)
    streams = streams or [1, 8]
    local_model = StreamModel(model_path, device="cpu", threads=threads)
    words = _words(local_model, tokens)
    policy = _policy()
    cpus = os.cpu_count() or 1
    owns = not ray.is_initialized()  # a caller's cluster (e.g. the tests') is used as is and left running
    say(f"{'starting a local Ray cluster and ' if owns else ''}deploying 1 and 2 replicas of {local_model.manifest.name}")
    if owns:
        ray.init(num_cpus=max(3, cpus), include_dashboard=False, log_to_driver=False, configure_logging=False)
        serve.start(http_options={"host": "127.0.0.1", "port": _free_port()})
    apps = {1: "guardkit-bench-1", 2: "guardkit-bench-2"}
    try:
        handles = {}
        for n, app in apps.items():
            options = ServeOptions(model=str(local_model.path), replicas=n, device="cpu", threads=threads, num_cpus=num_cpus)
            handles[n] = run(options, name=app, route_prefix=f"/{app}")
        remotes = {n: RemoteModel(h) for n, h in handles.items()}
        local = Guard(local_model, policy, batching=True)
        contenders: dict[str, Guard] = {"in-process": local, **{f"serve, {n} replica{'s' if n > 1 else ''}": Guard(remotes[n], policy)
                                                                 for n in (1, 2)}}
        figures = {(name, s): Figures() for name in contenders for s in streams}
        for name, guard in contenders.items():  # warm-up: first calls load, route and compile
            asyncio.run(_workload(guard, max(streams), words[:8]))
        for r in range(rounds):
            for s in streams:
                for name, guard in contenders.items():  # alternating: every contender in every round
                    elapsed, latencies = asyncio.run(_workload(guard, s, words))
                    figures[(name, s)].tokens_per_s.append(s * len(words) / elapsed)
                    figures[(name, s)].latencies_ms.extend(latencies)
            say(f"round {r + 1}/{rounds} done")
        local.close()
        for remote in remotes.values():
            remote.close()
    finally:
        if owns:
            ray.shutdown()  # the local cluster, Serve with it
        else:
            for app in apps.values():
                serve.delete(app)
    rows = []
    for s in streams:
        base = figures[("in-process", s)].summary()
        for name in contenders:
            row = {"contender": name, "streams": s, **figures[(name, s)].summary()}
            row["overhead_per_step_ms"] = round(row["p50_ms"] - base["p50_ms"], 3)
            rows.append(row)
    machine = f"{cpus} CPUs, ray {ray.__version__}"
    return ServeBench(local_model.manifest.name, tokens, rounds, machine, rows)


def print_serve_report(result: ServeBench, out: TextIO | None = None) -> None:
    import sys

    out = out or sys.stdout
    out.write(f"guardkit bench --serve: {result.model}, {result.tokens} one-token deltas per stream, {result.rounds} alternating rounds,"
              f" {result.machine}\n")
    out.write(f"{'contender':<20} {'streams':>7} {'tokens/s':>10} {'p50 ms/token':>13} {'p99 ms/token':>13} {'overhead/step ms':>17}\n")
    for row in result.rows:
        out.write(f"{row['contender']:<20} {row['streams']:>7} {row['tokens_per_s']:>10.1f} {row['p50_ms']:>13.3f} {row['p99_ms']:>13.3f}"
                  f" {row['overhead_per_step_ms']:>17.3f}\n")
