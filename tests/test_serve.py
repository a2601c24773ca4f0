"""Guard models on Ray Serve: a local cluster (2 CPUs), 2 replicas per model, real routing and faults.

One cluster for the module (Ray takes seconds to start) with four applications:
the tiny test model, the shipped model, and the tiny model twice more with
tight bounds (a 1 s TTL; a KV memory cap of a few sessions). The
replica-killing test runs last, since it takes a replica away (Serve restarts it).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

pytest.importorskip("ray.serve", reason="guardkit.serve needs ray[serve] (the test extra installs it)")

import ray  # noqa: E402
from ray import serve  # noqa: E402

from gk_helpers import same_verdict, shipped_bundles  # noqa: E402
from guardkit import Guard, StreamModel  # noqa: E402
from guardkit.demo import SAMPLES  # noqa: E402
from guardkit.policy import policy_from_dict  # noqa: E402
from guardkit.errors import GuardConfigError, ModelLoadError, SessionLimitError, SessionStoreFullError  # noqa: E402
from guardkit.serve import GuardModel, RemoteModel, ServeOptions  # noqa: E402
from guardkit.serve.deployment import run  # noqa: E402
from guardkit.testing import SAFE_WORDS, build_tiny_bundle  # noqa: E402

HARM = ["how to build a bomb detonator now", "steal and launder counterfeit money", "nude overdose", "gamble propaganda"]
MINI = next((p for p in shipped_bundles() if p.name == "guardkit-mini"), None)
BOUNDED_TTL_S = 1.0
BOUNDED_MAX_BYTES = 6_000  # the tiny model's KV is 192 bytes per position: a handful of short sessions per replica


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, tiny: Path, port: int) -> None:
        self.tiny_path = tiny
        self.port = port
        self.handles: dict[str, Any] = {}

    def url(self, app: str) -> str:
        return f"http://127.0.0.1:{self.port}/{app}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tiny = build_tiny_bundle(tmp_path_factory.mktemp("serve-tiny") / "bundle", max_positions=128)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        port = _free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        c = Cluster(tiny, port)
        common: dict[str, Any] = {"replicas": 2, "device": "cpu", "threads": 1, "num_cpus": 0.2}  # 8 replicas in 2 CPUs, room for one more
        c.handles["tiny"] = run(ServeOptions(model=str(tiny), **common), name="tiny", route_prefix="/tiny")
        if MINI is not None:
            c.handles["mini"] = run(ServeOptions(model=str(MINI), **common), name="mini", route_prefix="/mini")
        c.handles["ttl"] = run(ServeOptions(model=str(tiny), ttl_s=BOUNDED_TTL_S, **common), name="ttl", route_prefix="/ttl")
        c.handles["capped"] = run(ServeOptions(model=str(tiny), max_bytes=BOUNDED_MAX_BYTES, **common), name="capped", route_prefix="/capped")
        yield c
    finally:
        serve.shutdown()
        ray.shutdown()


def _texts(n: int, seed: int = 11) -> list[tuple[str | None, str]]:
    """(prompt, response) pairs for the tiny model: about a third with harmful words."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(SAFE_WORDS) for _ in range(rng.randint(3, 40))]
        if i % 3 == 0:
            words.insert(rng.randint(0, len(words)), rng.choice(HARM))
        prompt = None if i % 4 == 0 else " ".join(rng.choice(SAFE_WORDS) for _ in range(rng.randint(1, 8)))
        if i % 7 == 0:
            prompt = f"{prompt or ''} steal"  # a refused prompt now and then
        out.append((prompt, " ".join(words)))
    return out


def _mini_texts(n: int) -> list[tuple[str | None, str]]:
    return [(s.prompt, s.response) for s in (SAMPLES[i % len(SAMPLES)] for i in range(n))]


def _pieces(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        j = i + rng.randint(1, 9)
        out.append(text[i:j])
        i = j
    return out


def _in_process(path: Path, items: list[tuple[str | None, str]]) -> list[tuple[Any, str, bool]]:
    guard = Guard(StreamModel(path, device="cpu", threads=1))
    results = []
    for prompt, text in items:
        stream = guard.stream(iter([text]), prompt=prompt)
        "".join(stream)
        results.append((stream.verdict, stream.released_text, stream.blocked))
    return results


async def _astreams(guard: Guard, items: list[tuple[str | None, str]]) -> list[tuple[Any, str, bool]]:
    async def one(n: int, prompt: str | None, text: str) -> tuple[Any, str, bool]:
        async def deltas() -> Any:
            for piece in _pieces(text, n):
                yield piece

        stream = guard.astream(deltas(), prompt=prompt)
        async for _ in stream:
            pass
        return stream.verdict, stream.released_text, stream.blocked

    return list(await asyncio.gather(*(one(n, p, t) for n, (p, t) in enumerate(items))))


def _assert_same(remote: list[tuple[Any, str, bool]], local: list[tuple[Any, str, bool]]) -> None:
    assert len(remote) == len(local)
    for n, ((rv, rtext, rblocked), (lv, ltext, lblocked)) in enumerate(zip(remote, local)):
        assert rblocked == lblocked, n
        assert rv.char_offset == lv.char_offset, n  # the halt offset
        assert rtext == ltext, n
        assert same_verdict(rv, lv), (n, rv, lv)


def _wait(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _held(model: RemoteModel) -> int:
    return sum(s["sessions"] for s in model.stats())


# -- the command line (its own local cluster, in a subprocess; runs before the module's cluster starts) --


def _serve_cli(bundle: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "guardkit", "serve", "--model", str(bundle), "--replicas", "2", "--num-cpus", "0.5",
            "--threads", "1", "--port", str(port), "--route", "/cli"]


def _start_serve_cli(bundle: Path, tries: int = 3) -> tuple[subprocess.Popen[str], int]:
    """Start ``guardkit serve`` and wait for its ready line.

    A port free when picked can be taken by one of the Ray processes starting beside it; the
    command then exits with a one-line error naming the port, and we try another port.
    """
    for _ in range(tries):
        port = _free_port()
        process = subprocess.Popen(_serve_cli(bundle, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stderr is not None
        lines: list[str] = []
        for line in process.stdout:  # the command prints its address once the deployment is ready
            lines.append(line)
            if "ready at" in line:
                assert f"ready at http://127.0.0.1:{port}/cli" in line, line
                return process, port
        process.wait(timeout=60)  # stdout ended: the command exited before it was ready
        errors = process.stderr.read()
        last_line = errors.strip().splitlines()[-1] if errors.strip() else ""
        if f"127.0.0.1:{port}" not in last_line:  # not a port race: a real failure, shown in full
            raise AssertionError(f"guardkit serve exited {process.returncode} before ready:\n{''.join(lines)}\n{errors[-4000:]}")
    raise AssertionError(f"guardkit serve found no free port in {tries} tries")


def test_guardkit_serve_cli_serves_until_interrupted(tmp_path: Path) -> None:
    bundle = build_tiny_bundle(tmp_path / "bundle", max_positions=128)
    process, port = _start_serve_cli(bundle)
    try:
        local = Guard(StreamModel(bundle, device="cpu", threads=1))
        with RemoteModel(f"http://127.0.0.1:{port}/cli") as model:
            text = "sure first mix the flour and then the bomb detonator explosive"
            assert same_verdict(Guard(model).check_response(text, prompt="hello"), local.check_response(text, prompt="hello"))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_guardkit_serve_cli_on_a_taken_port_is_one_line_error(tmp_path: Path) -> None:
    """A taken port is refused before the cluster starts: one line naming it, exit 2, no Ray traceback."""
    bundle = build_tiny_bundle(tmp_path / "bundle", max_positions=128)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(_serve_cli(bundle, port), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (pick another with --port)"], done.stderr[-2000:]
    assert done.stdout == ""


def test_guardkit_serve_cli_rejects_a_port_out_of_range(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "guardkit", "serve", "--port", "70000"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "must be a port from 1 to 65535, got 70000" in done.stderr and "Traceback" not in done.stderr


# -- verdicts through the deployment equal the in-process guard's -----------


def test_32_concurrent_async_streams_tiny_model_equal_in_process(cluster: Cluster) -> None:
    items = _texts(32)
    with RemoteModel(cluster.handles["tiny"]) as model:
        remote = asyncio.run(_astreams(Guard(model), items))
        assert model.rebuilds == 0 and model.moves == 0  # session affinity: every step found its state
    local = _in_process(cluster.tiny_path, items)
    _assert_same(remote, local)
    assert any(blocked for _, _, blocked in local) and not all(blocked for _, _, blocked in local)


@pytest.mark.skipif(MINI is None, reason="the shipped model bundle models/guardkit-mini is not in this checkout")
def test_32_concurrent_async_streams_shipped_model_equal_in_process(cluster: Cluster) -> None:
    assert MINI is not None
    items = _mini_texts(32)
    with RemoteModel(cluster.handles["mini"]) as model:
        remote = asyncio.run(_astreams(Guard(model), items))
    local = _in_process(MINI, items)
    _assert_same(remote, local)
    assert any(blocked for _, _, blocked in local) and not all(blocked for _, _, blocked in local)


def test_threads_with_client_side_batching_equal_in_process(cluster: Cluster) -> None:
    """The sync driver from 16 threads through a client-side batcher (RemoteModel.step_many)."""
    items = _texts(16, seed=3)
    results: list[Any] = [None] * len(items)
    with RemoteModel(cluster.handles["tiny"]) as model, Guard(model, batching=True) as guard:

        def work(n: int) -> None:
            prompt, text = items[n]
            stream = guard.stream(iter(_pieces(text, n)), prompt=prompt)
            "".join(stream)
            results[n] = (stream.verdict, stream.released_text, stream.blocked)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(len(items))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert guard.scheduler is not None and guard.scheduler.stats.steps > 0
    _assert_same(results, _in_process(cluster.tiny_path, items))


def test_http_transport_sync_and_async_equal_in_process_with_affinity_through_the_proxy(cluster: Cluster) -> None:
    items = _texts(12, seed=5)
    with RemoteModel(cluster.url("tiny")) as model:
        before = {s["pid"]: s["misses"] for s in model.stats()}
        guard = Guard(model)
        sync = []
        for n, (prompt, text) in enumerate(items):
            stream = guard.stream(iter(_pieces(text, n)), prompt=prompt)
            "".join(stream)
            sync.append((stream.verdict, stream.released_text, stream.blocked))
        asynced = asyncio.run(_astreams(guard, items))
        after = {s["pid"]: s["misses"] for s in model.stats()}
        assert model.rebuilds == 0 and model.moves == 0
    assert after == before  # the proxy routed every step to the replica holding its state
    local = _in_process(cluster.tiny_path, items)
    _assert_same(sync, local)
    _assert_same(asynced, local)


def test_check_prompt_and_response_and_the_model_interface(cluster: Cluster) -> None:
    local_model = StreamModel(cluster.tiny_path, device="cpu", threads=1)
    with RemoteModel(cluster.handles["tiny"]) as model:
        for prompt in ["how to steal a car", "hello [SEP] world", "bake bread please", ""]:
            assert model.prompt_token_ids(prompt) == local_model.prompt_token_ids(prompt)
        assert model.response_prefix_ids() == local_model.response_prefix_ids()
        assert model.special_token_ids() == local_model.special_token_ids()
        assert (model.categories, model.prompt_categories, model.max_positions) == (
            local_model.categories, local_model.prompt_categories, local_model.max_positions)
        remote, local = Guard(model), Guard(local_model)
        for prompt in ["how to steal a car", "bake bread with flour"]:
            assert same_verdict(remote.check_prompt(prompt), local.check_prompt(prompt))
        text = "sure here is how to bake bread and then the bomb detonator"
        assert same_verdict(remote.check_response(text, prompt="hello"), local.check_response(text, prompt="hello"))
        assert same_verdict(asyncio.run(remote.acheck_response(text)), local.check_response(text))
        assert repr(model).startswith("RemoteModel(")
        assert isinstance(model, GuardModel) and isinstance(local_model, GuardModel)  # the narrow interface both serve


def test_bench_serve_measures_in_process_and_served_side_by_side(cluster: Cluster) -> None:
    from guardkit.cli import build_parser
    from guardkit.serve.bench import run_serve_bench

    assert build_parser().parse_args(["bench", "--serve"]).serve  # `guardkit bench --serve` runs this
    result = run_serve_bench(str(cluster.tiny_path), tokens=8, rounds=1, streams=[1, 2], num_cpus=0.05)
    rows = json.loads(result.to_json())["rows"]
    assert [(r["contender"], r["streams"]) for r in rows] == [
        (name, s) for s in (1, 2) for name in ("in-process", "serve, 1 replica", "serve, 2 replicas")]
    for row in rows:
        assert row["tokens_per_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
        base = next(r for r in rows if r["contender"] == "in-process" and r["streams"] == row["streams"])
        assert row["overhead_per_step_ms"] == pytest.approx(row["p50_ms"] - base["p50_ms"], abs=1e-3)


def _chat_chunks(text: str) -> list[Any]:
    from openai.types.chat import ChatCompletionChunk

    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-x"}
    deltas = [{"role": "assistant", "content": ""}] + [{"content": w + " "} for w in text.split()]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [ChatCompletionChunk.model_validate(c) for c in chunks]


def test_provider_adapters_sync_and_async_give_the_in_process_chunks(cluster: Cluster) -> None:
    from guardkit import aguard_openai_stream, guard_openai_stream

    local = Guard(StreamModel(cluster.tiny_path, device="cpu", threads=1))
    texts = ["sure here is how to bake bread with flour and water", "first get the detonator and the explosive and then kill"]
    with RemoteModel(cluster.handles["tiny"]) as model:
        remote = Guard(model)
        for text in texts:
            expected = [c.model_dump() for c in guard_openai_stream(local, _chat_chunks(text), prompt="hello")]
            assert [c.model_dump() for c in guard_openai_stream(remote, _chat_chunks(text), prompt="hello")] == expected

            async def consume(text: str) -> list[Any]:
                return [c.model_dump() async for c in aguard_openai_stream(remote, _chat_chunks(text), prompt="hello")]

            assert asyncio.run(consume(text)) == expected


def test_bad_targets_fail_with_one_clear_error() -> None:
    with pytest.raises(GuardConfigError, match="DeploymentHandle or an http"):
        RemoteModel(42)
    with pytest.raises(GuardConfigError, match="DeploymentHandle or an http"):
        RemoteModel("ftp://example.org/guardkit")
    with pytest.raises(ModelLoadError, match="cannot read the served model's manifest"):
        RemoteModel(f"http://127.0.0.1:{_free_port()}/guardkit", timeout_s=2.0)
    with pytest.raises(TypeError, match="bundle path, a StreamModel or a served model"):
        Guard(model=object())


# -- the session store: close, TTL, memory cap -------------------------------


def test_sessions_are_freed_on_close_and_on_finish(cluster: Cluster) -> None:
    with RemoteModel(cluster.handles["tiny"]) as model:
        assert _wait(lambda: _held(model) == 0)
        guard = Guard(model)
        sessions = [guard.session("hello") for _ in range(6)]
        for s in sessions:
            s.feed("sure here is the bread recipe")
        assert _held(model) == 6
        for s in sessions[:3]:
            s.close()
        for s in sessions[3:]:
            s.finish()
        assert _wait(lambda: _held(model) == 0)
        stats = model.stats()
        assert sum(s["closed"] for s in stats) >= 6


def test_sessions_expire_after_their_ttl_and_continue_unchanged(cluster: Cluster) -> None:
    text = "sure here is how to make bread with flour and water and then the bomb detonator"
    words = text.split()
    with RemoteModel(cluster.handles["ttl"]) as model:
        guard = Guard(model)
        session = guard.session("hello")
        events = session.feed(" ".join(words[:6]))
        assert _held(model) >= 1
        assert _wait(lambda: _held(model) == 0, timeout_s=BOUNDED_TTL_S * 20)  # expired while the session is idle
        assert sum(s["expired"] for s in model.stats()) >= 1
        events += session.feed(" " + " ".join(words[6:]))  # the replica lost it: rebuilt from the client's ids
        events += session.finish()
        assert model.rebuilds >= 1
        local = Guard(StreamModel(cluster.tiny_path, device="cpu", threads=1)).session("hello")
        local_events = local.feed(" ".join(words[:6])) + local.feed(" " + " ".join(words[6:])) + local.finish()
        assert same_verdict(session.verdict, local.verdict)
        assert session.released_text == local.released_text
        assert [type(e).__name__ for e in events] == [type(e).__name__ for e in local_events]


def test_memory_cap_refuses_new_sessions_with_a_clear_error_and_serves_the_rest(cluster: Cluster) -> None:
    prompt = "please help with the bread recipe and the garden shed"
    with RemoteModel(cluster.handles["capped"]) as model:
        guard = Guard(model)
        assert _held(model) == 0
        held, refused = [], []
        for _ in range(40):
            session = guard.session(prompt)
            try:
                session.start()
            except SessionStoreFullError as exc:
                refused.append((session, exc))
            else:
                held.append(session)
        assert held and refused
        session, exc = refused[0]
        assert isinstance(exc, SessionLimitError)  # the same family as a local max_sessions refusal
        assert "memory cap" in str(exc) and "bytes" in str(exc)
        assert not session.blocked and not session.finished  # refused, not judged: it may simply be retried
        assert model.live_sessions == len(held)  # a refused session holds no client slot
        local = Guard(StreamModel(cluster.tiny_path, device="cpu", threads=1))
        text = "sure here is how to build the shed and then steal and launder the money"
        for s in held:  # the sessions already held are served to the end
            s.feed(text)
            s.finish()
            expected = local.session(prompt)
            expected.feed(text)
            expected.finish()
            assert same_verdict(s.verdict, expected.verdict)
        assert sum(s["refused"] for s in model.stats()) >= len(refused)
        assert _wait(lambda: _held(model) == 0)
        retried = refused[0][0]  # room again: the refused session starts on retry
        retried.start()
        retried.feed(text)
        retried.finish()
        assert same_verdict(retried.verdict, expected.verdict)


# -- faults: a lost replica or application loses nothing, and fails only its own sessions --


def test_an_unreachable_model_fails_each_session_by_its_policy_and_holds_up_no_other(cluster: Cluster) -> None:
    doomed = run(ServeOptions(model=str(cluster.tiny_path), replicas=1, threads=1, num_cpus=0.1), name="doomed", route_prefix="/doomed")
    text = "sure here is the bread recipe with flour and water"
    with RemoteModel(doomed, timeout_s=1.0, retries=1) as gone, RemoteModel(cluster.handles["tiny"]) as alive:
        closed = Guard(gone, policy_from_dict({"name": "closed", "failure_mode": "closed"})).session("hello")
        opened = Guard(gone, policy_from_dict({"name": "open", "failure_mode": "open"})).session("hello")
        other = Guard(alive).session("hello")
        for s in (closed, opened, other):
            s.feed("sure here is ")
        serve.delete("doomed")  # every replica of that application is gone
        closed.feed(text)
        opened.feed(text)
        other.feed(text)
        assert closed.blocked and "guard model step failed" in (closed.verdict.reason or "")
        assert not opened.blocked and opened.unjudged_tokens > 0
        assert not other.blocked and other.unjudged_tokens == 0
        other.finish()
        expected = Guard(StreamModel(cluster.tiny_path, device="cpu", threads=1)).session("hello")
        expected.feed("sure here is ")
        expected.feed(text)
        expected.finish()
        assert same_verdict(other.verdict, expected.verdict)


def _replica_actors(app: str) -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(f"SERVE_REPLICA::{app}#")]


def test_killing_a_replica_mid_stream_loses_no_stream_and_changes_no_verdict(cluster: Cluster) -> None:
    items = _texts(32, seed=23)
    replicas = _replica_actors("tiny")
    assert len(replicas) == 2
    killed: list[str] = []

    async def scenario(guard: Guard) -> list[tuple[Any, str, bool]]:
        barrier = asyncio.Event()
        arrived = [0]

        def arrive() -> None:
            arrived[0] += 1
            if arrived[0] == len(items):  # every stream is mid-stream (or already over): now a replica dies under them
                victim = replicas[0]
                ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
                killed.append(victim)
                barrier.set()

        async def one(n: int, prompt: str | None, text: str) -> tuple[Any, str, bool]:
            pieces = _pieces(text, n)
            stop = min(2, len(pieces) - 1)  # every stream has judged some text, and has some left
            waited = [False]

            async def deltas() -> Any:
                for k, piece in enumerate(pieces):
                    if k == stop:
                        waited[0] = True
                        arrive()
                        await barrier.wait()
                    yield piece

            stream = guard.astream(deltas(), prompt=prompt)
            async for _ in stream:
                pass
            if not waited[0]:  # refused prompt or blocked early: it never reached the barrier
                arrive()
            return stream.verdict, stream.released_text, stream.blocked

        # a bound, so that a broken barrier fails the test instead of hanging the suite
        return list(await asyncio.wait_for(asyncio.gather(*(one(n, p, t) for n, (p, t) in enumerate(items))), 300))

    with RemoteModel(cluster.handles["tiny"], retries=5) as model:
        remote = asyncio.run(scenario(Guard(model)))
        assert killed
        assert model.moves + model.rebuilds > 0  # sessions did lose their replica and were rebuilt elsewhere
    _assert_same(remote, _in_process(cluster.tiny_path, items))
