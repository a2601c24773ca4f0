"""``guardkit bench``: speed figures measured side by side in one run.

Machines are noisy, so each comparison alternates its contenders round by
round and reports medians, p99 and ratios from the same run.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, TextIO, TypeVar

from guardkit.model import KVState, StreamModel
from guardkit.policy import Policy, policy_from_dict
from guardkit.session import StreamSession

__all__ = ["BenchResult", "run_bench"]

K = TypeVar("K", bound=Hashable)  # a contender's key in an alternating benchmark

_PROMPT = "tell me about the history of medicine"
_TEXT = (
    "the history of medicine is a long story about people who tried to help the sick with what they knew at the time "
    "and many of their ideas were wrong but some of them were right and we still use them today in our homes and in "
    "our hospitals when we boil water clean a wound or rest after a long day of work in the garden or the house "
)


@dataclass
class Timing:
    samples_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]

    def to_dict(self) -> dict[str, float]:
        return {"median_ms": round(self.median, 4), "p99_ms": round(self.p99, 4), "n": len(self.samples_ms)}


@dataclass
class BenchResult:
    model: str
    threads: int | None
    machine: str
    figures: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "threads": self.threads, "machine": self.machine, **self.figures}, indent=2)


def _never_blocking_policy() -> Policy:
    """Benchmarks measure steady-state cost: nothing may block (a blocked session stops stepping)."""
    return policy_from_dict({"name": "bench", "thresholds": {"unsafe": 1.0, "controversial": 1.0}, "prompt": {"action": "allow"}})


def _single_token_words(model: StreamModel, count: int) -> list[str]:
    """Words of the sample text that are exactly one guard token, cycled to ``count``."""
    words = [w for w in dict.fromkeys(_TEXT.split()) if len(model.tokenizer.encode(w, add_special_tokens=False).ids) == 1]
    if not words:
        raise RuntimeError("no single-token words in the benchmark text for this tokenizer")
    return [words[i % len(words)] for i in range(count)]


def _word_ids(model: StreamModel, words: list[str]) -> list[int]:
    """The guard-token id of each single-token word."""
    return [model.tokenizer.encode(w, add_special_tokens=False).ids[0] for w in words]


def _prefilled(model: StreamModel) -> KVState:
    return model.step(model.empty_state(), model.prompt_token_ids(_PROMPT)).state


def _bench_raw_vs_session(model: StreamModel, tokens: int, rounds: int) -> dict[str, Any]:
    policy = _never_blocking_policy()
    words = _single_token_words(model, tokens)
    ids = _word_ids(model, words)
    raw, sess = Timing(), Timing()
    for _ in range(rounds):
        state = _prefilled(model)
        session = StreamSession(model, policy, _PROMPT)
        session.start()
        session.feed(words[0])
        # raw steps and session feeds alternate token by token, so both see the same host
        for token_id, word in zip(ids, words[1:]):
            t0 = time.perf_counter()
            state = model.run(state, [token_id])[1]
            raw.samples_ms.append((time.perf_counter() - t0) * 1e3)
            # each feed completes exactly one single-token word, so it makes one model step
            t0 = time.perf_counter()
            session.feed(" " + word)
            sess.samples_ms.append((time.perf_counter() - t0) * 1e3)
        if session.blocked or session.model_calls != len(words):  # one prefill + one step per completed word
            raise RuntimeError(f"benchmark session did not step once per token (calls {session.model_calls}, blocked {session.blocked})")
        session.close()
    return {
        "raw_step": raw.to_dict(),
        "session_per_token": sess.to_dict(),
        "session_overhead_ratio": round(sess.median / raw.median, 4),
    }


def _bench_vs_baseline(model: StreamModel, baseline: StreamModel, tokens: int, rounds: int) -> dict[str, Any]:
    """Batch-1 step latency of two bundles, alternating step by step on the same host.

    Each model steps its own single-token words (their tokenizers may differ), after
    its own prefill of the same prompt; sizes are every file each manifest lists. When
    both bundles have a prompt classifier, its call on the same prompts is timed too,
    alternating prompt by prompt (wall median, CPU mean).
    """
    contenders = (("model", model), ("baseline", baseline))
    timings = {name: Timing() for name, _ in contenders}
    for _ in range(rounds):
        states = {name: _prefilled(m) for name, m in contenders}
        ids = {name: _word_ids(m, _single_token_words(m, tokens)) for name, m in contenders}
        for step in range(tokens - 1):
            for name, m in contenders:
                t0 = time.perf_counter()
                states[name] = m.run(states[name], [ids[name][step]])[1]
                timings[name].samples_ms.append((time.perf_counter() - t0) * 1e3)
    result: dict[str, Any] = {}
    for name, m in contenders:
        result[name] = {"name": f"{m.manifest.name} {m.manifest.version}", "step": timings[name].to_dict(),
                        "bundle_mb": round(sum(entry.bytes for entry in m.manifest.files.values()) / 1e6, 2)}
    result["step_ratio"] = round(timings["model"].median / timings["baseline"].median, 3)
    if all(m.prompt_classifier is not None for _, m in contenders):
        result["prompt_check"] = _bench_prompt_check(contenders, rounds)
    return result


_CHECKED_PROMPTS = (_PROMPT, "how do i bake bread", "write a short story about a dog who learns to swim in the sea",
                    "what is the history of the printing press and why did it matter so much for science and religion in europe")


def _bench_prompt_check(contenders: tuple[tuple[str, StreamModel], ...], rounds: int) -> dict[str, Any]:
    """The prompt classifier's call (what check_prompt costs) on the same prompts, alternating the contenders prompt by prompt."""
    timings = {name: Timing() for name, _ in contenders}
    cpu = {name: 0.0 for name, _ in contenders}
    rendered = {name: [m.prompt_token_ids(p) for p in _CHECKED_PROMPTS] for name, m in contenders}
    for _ in range(max(1, rounds) * 10):
        for i in range(len(_CHECKED_PROMPTS)):
            for name, m in contenders:
                w0, c0 = time.perf_counter(), time.process_time()
                m.classify_prompt([rendered[name][i]])
                timings[name].samples_ms.append((time.perf_counter() - w0) * 1e3)
                cpu[name] += time.process_time() - c0
    out: dict[str, Any] = {name: {**timings[name].to_dict(), "cpu_ms": round(cpu[name] * 1e3 / len(timings[name].samples_ms), 4)}
                           for name, _ in contenders}
    out["ratio"] = round(timings["model"].median / timings["baseline"].median, 3)
    return out


def _bench_chunks(model: StreamModel, tokens: int, rounds: int) -> dict[str, Any]:
    """Per-token cost of scoring ``k`` tokens per call, k alternating call by call (wall median, CPU mean)."""
    ids = model.tokenizer.encode(_TEXT, add_special_tokens=False).ids
    ids = (ids * (tokens // max(1, len(ids)) + 2))[: max(tokens, _BLOCK)]
    results: dict[str, Timing] = {f"k={k}": Timing() for k in _CHUNKS}
    cpu = {f"k={k}": 0.0 for k in _CHUNKS}
    done = {f"k={k}": 0 for k in _CHUNKS}
    for _ in range(rounds):
        states = {k: _prefilled(model) for k in _CHUNKS}
        for begin in range(0, len(ids) - _BLOCK + 1, _BLOCK):
            for k in _CHUNKS:  # the same 48 tokens under every k, alternating
                for start in range(begin, begin + _BLOCK, k):
                    w0, c0 = time.perf_counter(), time.process_time()
                    states[k] = model.run(states[k], ids[start : start + k])[1]
                    results[f"k={k}"].samples_ms.append((time.perf_counter() - w0) * 1e3 / k)
                    cpu[f"k={k}"] += time.process_time() - c0
                    done[f"k={k}"] += k
    base = results["k=1"].median
    return {name: {**t.to_dict(), "speedup_vs_k1": round(base / t.median, 3), "cpu_ms_per_token": round(cpu[name] * 1e3 / done[name], 4)}
            for name, t in results.items()}


_CHUNKS = (1, 2, 3, 4, 8, 16)
_BLOCK = 48  # a multiple of every k


def _with_onnxruntime_defaults(model: StreamModel) -> StreamModel:
    """The same bundle on ONNX Runtime's own defaults (every core, spinning): guardkit's default before 0.4."""
    from guardkit.providers import import_onnxruntime

    from guardkit.kvcache import split_attention

    ort = import_onnxruntime()
    clone = StreamModel(model.path, device="cpu")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    path = model.path / model.manifest.model_file
    graph = split_attention(path, model.manifest.state.num_layers) if clone._kv_buffer else None  # the same graph, other options
    clone._session = ort.InferenceSession(graph if graph is not None else str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return clone


def _check_stepped(sessions: dict[Any, StreamSession]) -> None:
    """A benchmark session that failed a step (and so stopped judging) would time nothing: refuse it, then close all."""
    for name, session in sessions.items():
        if session.blocked or session.model_errors:
            raise RuntimeError(f"benchmark session {name!r} failed (blocked {session.blocked}, model errors {session.model_errors})")
        session.close()


def _bench_threads(model: StreamModel, tokens: int, rounds: int) -> dict[str, Any]:
    """One session's cost per token under each thread setting, alternating blocks of 16 tokens.

    Wall and CPU time (``time.process_time``: every thread of the process, so
    spinning threads count) per token, summed over the run.
    """
    from guardkit.providers import import_onnxruntime  # noqa: F401 - fail here, not mid-run, without onnxruntime

    contenders = {
        "default": StreamModel(model.path, device="cpu"),
        "threads=1": StreamModel(model.path, device="cpu", threads=1),
        "threads=2": StreamModel(model.path, device="cpu", threads=2),
        "onnxruntime defaults (spinning)": _with_onnxruntime_defaults(model),
    }
    policy = _never_blocking_policy()
    words = _single_token_words(model, tokens)
    wall, cpu, count = _alternate_blocks(lambda: {name: StreamSession(m, policy, _PROMPT) for name, m in contenders.items()},
                                         words, rounds)
    explicit = min(wall[name] for name in ("threads=1", "threads=2"))
    return {
        name: {"wall_ms_per_token": round(wall[name] * 1e3 / count, 4), "cpu_ms_per_token": round(cpu[name] * 1e3 / count, 4),
               "wall_vs_best_explicit": round(wall[name] / explicit, 3), "cpu_vs_threads1": round(cpu[name] / cpu["threads=1"], 3)}
        for name in contenders
    }


def _alternate_blocks(make_sessions: Callable[[], dict[K, StreamSession]], words: list[str],
                      rounds: int) -> tuple[dict[K, float], dict[K, float], int]:
    """Feed the same words to each contender's session in alternating 16-token blocks, one token per delta.

    Returns wall and CPU seconds per contender and the tokens timed (for each): the
    contenders share every moment of a noisy host's load.
    """
    wall: dict[K, float] = {}
    cpu: dict[K, float] = {}
    count = 0
    for _ in range(rounds):
        sessions = make_sessions()
        for session in sessions.values():
            session.start()
            session.feed(words[0])
        for begin in range(1, len(words), 16):
            block = words[begin : begin + 16]
            for key, session in sessions.items():
                w0, c0 = time.perf_counter(), time.process_time()
                for word in block:
                    session.feed(" " + word)
                wall[key] = wall.get(key, 0.0) + time.perf_counter() - w0
                cpu[key] = cpu.get(key, 0.0) + time.process_time() - c0
            count += len(block)
        _check_stepped(sessions)
    return wall, cpu, count


def _bench_coalesce(model: StreamModel, tokens: int, rounds: int) -> dict[str, Any]:
    """A lone session fed one token per delta, judging every token vs coalescing 4 (alternating 16-token blocks)."""
    policy = _never_blocking_policy()
    words = _single_token_words(model, tokens)
    settings = (1, 4)
    wall, cpu, count = _alternate_blocks(lambda: {n: StreamSession(model, policy, _PROMPT, coalesce=n) for n in settings},
                                         words, rounds)
    return {f"coalesce={n}": {"wall_ms_per_token": round(wall[n] * 1e3 / count, 4), "cpu_ms_per_token": round(cpu[n] * 1e3 / count, 4),
                              "cpu_vs_coalesce1": round(cpu[n] / cpu[1], 3)} for n in settings}


_REPLY = (
    "The history of medicine is a long story. People tried to help the sick with what they knew at the time! Many of their "
    "ideas were wrong, but some were right; we still use them today. When we boil water, clean a wound or rest after a long "
    "day of work, we follow them. Why does that matter? Because good habits outlive the theories behind them.\n"
)


def _bench_reply_check(model: StreamModel, rounds: int) -> dict[str, Any] | None:
    """A reply of short sentences judged with and without the reply check (alternating, fed one word at a time)."""
    if not model.reply_window:
        return None
    words = (_REPLY * 4).split(" ")
    off = policy_from_dict({**_never_blocking_policy().model_dump(), "reply_check": {"action": "allow"}})
    on = _never_blocking_policy()
    wall = {"off": 0.0, "on": 0.0}
    cpu = {"off": 0.0, "on": 0.0}
    checks = tokens = 0
    for round_ in range(rounds):
        for name, policy in (("off", off), ("on", on)) if round_ % 2 == 0 else (("on", on), ("off", off)):
            session = StreamSession(model, policy, _PROMPT)
            session.start()
            t0, c0 = time.perf_counter(), time.process_time()
            for word in words:
                session.feed(word + " ")
            session.finish()
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            if name == "on":
                checks, tokens = session.reply_checks, len(session.tokens)
            session.close()
    per = rounds * tokens
    return {"tokens": tokens, "checks": checks,
            **{name: {"wall_ms_per_token": round(wall[name] * 1e3 / per, 4), "cpu_ms_per_token": round(cpu[name] * 1e3 / per, 4)}
               for name in ("off", "on")},
            "ms_per_check": round((wall["on"] - wall["off"]) * 1e3 / (rounds * max(1, checks)), 3),
            "cpu_ratio": round(cpu["on"] / cpu["off"], 3)}


def _bench_rescoring(model: StreamModel, lengths: list[int], probes: int) -> dict[str, Any]:
    """Incremental step at length L vs re-scoring the whole prefix (what stock streaming guards do)."""
    ids = model.tokenizer.encode(_TEXT, add_special_tokens=False).ids
    prompt = model.prompt_token_ids(_PROMPT)
    out: dict[str, Any] = {}
    for length in lengths:
        if len(prompt) + length + probes > model.max_positions:
            out[str(length)] = _bench_long_stream(model, length, probes)
            continue
        length = int(length)
        seq = (ids * (length // len(ids) + 2))[: length + probes]
        state = model.step(model.empty_state(), prompt + seq[:length]).state
        inc, full = Timing(), Timing()
        cpu_inc = cpu_full = 0.0
        for i in range(probes):
            t0, c0 = time.perf_counter(), time.process_time()
            model.run(state, [seq[length + i]])
            inc.samples_ms.append((time.perf_counter() - t0) * 1e3)
            cpu_inc += time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            model.run(model.empty_state(), prompt + seq[: length + 1])
            full.samples_ms.append((time.perf_counter() - t0) * 1e3)
            cpu_full += time.process_time() - c0
        # CPU time too: wall medians of calls 20-100x apart in length are skewed by a busy host
        out[str(length)] = {"incremental": inc.to_dict(), "full_rescore": full.to_dict(), "ratio": round(full.median / inc.median, 2),
                            "cpu_ratio": round(cpu_full / cpu_inc, 2) if cpu_inc > 0 else None}
    return out


def _bench_long_stream(model: StreamModel, length: int, probes: int) -> dict[str, Any]:
    """A response longer than the model's positions: a real session vs re-scoring what the model can see.

    The session re-prefills a recent window when its state is full (see
    ``long_stream`` in the policy), so its per-token cost is a step plus those
    re-prefills amortised: the mean over the last stretch before ``length``.
    Re-scoring "the whole prefix" is impossible past ``max_positions``; a stock
    streaming guard truncates, so its cost per token is scoring the prompt and
    the longest response tail that fits.
    """
    policy = _never_blocking_policy()
    words = _single_token_words(model, length + probes)
    ids = _word_ids(model, words)
    session = StreamSession(model, policy, _PROMPT)
    session.start()
    session.feed(words[0])
    stretch = min(512, length // 2)
    samples: list[float] = []
    for count, word in enumerate(words[1:length], start=2):
        t0 = time.perf_counter()
        session.feed(" " + word)
        if count > length - stretch:
            samples.append((time.perf_counter() - t0) * 1e3)
    reprefills = session.reprefills
    session.close()
    context = model.prompt_token_ids(_PROMPT) + model.response_prefix_ids()
    tail = model.max_positions - len(context)
    window = Timing()
    for i in range(probes):
        end = length + i
        t0 = time.perf_counter()
        model.run(model.empty_state(), context + ids[end - tail : end])
        window.samples_ms.append((time.perf_counter() - t0) * 1e3)
    mean = statistics.fmean(samples)
    return {
        "session_mean_ms": round(mean, 4),
        "session_reprefills": reprefills,
        "window_rescore": window.to_dict(),
        "window_tokens": tail,
        "ratio": round(window.median / mean, 2),
    }


def _one_by_one(model: StreamModel, base: KVState, ids: list[int], count: int) -> float:
    states = [base] * count
    t0 = time.perf_counter()
    for token_id in ids:
        states = [model.step(state, [token_id]).state for state in states]
    return count * len(ids) / (time.perf_counter() - t0)


def _batched(model: StreamModel, base: KVState, ids: list[int], count: int) -> float:
    states = [base] * count
    t0 = time.perf_counter()
    for token_id in ids:
        states = [o.state for o in model.step_many(states, [[token_id]] * count)]
    return count * len(ids) / (time.perf_counter() - t0)


def _sessions_in_threads(model: StreamModel, words: list[str], count: int, *, batching: bool) -> tuple[float, float]:
    """S real sessions in S threads: tokens/s and mean batch.

    With ``batching`` they step through one :class:`~guardkit.batching.BatchScheduler`;
    without, each steps on its own and ONNX Runtime runs the calls side by side
    (what a threaded server gets without batching: it uses every core).
    """
    import contextlib
    import threading

    from guardkit.batching import BatchScheduler, BatchStats

    policy = _never_blocking_policy()
    with contextlib.ExitStack() as stack:
        scheduler = stack.enter_context(BatchScheduler(model, max_batch=max(64, count))) if batching else None
        sessions = [StreamSession(model, policy, _PROMPT, scheduler=scheduler) for _ in range(count)]
        for session in sessions:
            session.start()
            session.feed(words[0])
        barrier = threading.Barrier(count + 1)

        def drive(session: StreamSession) -> None:
            barrier.wait()
            for word in words[1:]:
                session.feed(" " + word)
            session.close()

        threads = [threading.Thread(target=drive, args=(s,)) for s in sessions]
        for thread in threads:
            thread.start()
        if scheduler is not None:
            scheduler.stats = BatchStats()  # count the timed steps only, not the prefills above
        barrier.wait()
        t0 = time.perf_counter()
        for thread in threads:
            thread.join()
        rate = count * (len(words) - 1) / (time.perf_counter() - t0)
        return rate, scheduler.stats.mean_batch if scheduler is not None else 1.0


def _sessions_one_by_one(model: StreamModel, words: list[str], count: int) -> float:
    """S real sessions one after another in one thread, no batching (a lone ``Guard()`` stream each): tokens/s."""
    policy = _never_blocking_policy()
    sessions = [StreamSession(model, policy, _PROMPT) for _ in range(count)]
    for session in sessions:
        session.start()
        session.feed(words[0])
    t0 = time.perf_counter()
    for session in sessions:
        for word in words[1:]:
            session.feed(" " + word)
        session.close()
    return count * (len(words) - 1) / (time.perf_counter() - t0)


def _sessions_in_tasks(model: StreamModel, words: list[str], count: int) -> tuple[float, float]:
    """S real sessions as S asyncio tasks on one event loop, awaiting one batch scheduler: tokens/s and cores busy.

    Cores busy: the process's CPU time (every thread) over the wall time.
    """
    import asyncio

    from guardkit.batching import BatchScheduler

    policy = _never_blocking_policy()

    async def main(scheduler: BatchScheduler) -> tuple[float, float]:
        sessions = [StreamSession(model, policy, _PROMPT, scheduler=scheduler) for _ in range(count)]
        for session in sessions:
            await session.afeed(words[0])

        async def drive(session: StreamSession) -> None:
            for word in words[1:]:
                await session.afeed(" " + word)
            session.close()

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(drive(s) for s in sessions))
        wall = time.perf_counter() - t0
        return count * (len(words) - 1) / wall, (time.process_time() - c0) / wall

    with BatchScheduler(model, max_batch=max(64, count)) as scheduler:
        return asyncio.run(main(scheduler))


def _bench_streams(
    model: StreamModel, stream_counts: list[int], tokens: int, rounds: int, say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Aggregate tokens/s for S concurrent streams, batched and not.

    All start from the same prefilled prompt and score ``tokens`` single tokens
    per stream. Model level: one-by-one steps in one thread vs one batched call
    per step. Session level (all SDK costs): S real sessions in S threads,
    unbatched (ONNX Runtime runs their calls side by side on every core) vs
    through the batch scheduler, and S asyncio tasks through the scheduler. The
    five alternate round by round; each figure is the median over the rounds.
    """
    words = _single_token_words(model, tokens + 1)
    ids = _word_ids(model, words)
    base = _prefilled(model)
    out: dict[str, Any] = {}
    for count in stream_counts:
        one, batched, threaded, sched, sizes, tasks, sessions, cores = [], [], [], [], [], [], [], []
        for round_ in range(rounds):
            if say is not None:
                say(f"  {count} concurrent streams: round {round_ + 1}/{rounds}")
            one.append(_one_by_one(model, base, ids[:tokens], count))
            batched.append(_batched(model, base, ids[:tokens], count))
            threaded.append(_sessions_in_threads(model, words, count, batching=False)[0])
            rate, mean_batch = _sessions_in_threads(model, words, count, batching=True)
            sched.append(rate)
            sizes.append(mean_batch)
            rate, busy = _sessions_in_tasks(model, words, count)
            tasks.append(rate)
            cores.append(busy)
            sessions.append(_sessions_one_by_one(model, words, count))
        one_by_one, batch_rate, threaded_rate, sched_rate, tasks_rate, sessions_rate = (
            statistics.median(v) for v in (one, batched, threaded, sched, tasks, sessions))
        out[str(count)] = {
            "one_by_one_tok_s": round(one_by_one, 1),
            "batched_tok_s": round(batch_rate, 1),
            "batched_ratio": round(batch_rate / one_by_one, 2),
            "threads_unbatched_tok_s": round(threaded_rate, 1),
            "scheduler_tok_s": round(sched_rate, 1),
            "scheduler_ratio": round(sched_rate / one_by_one, 2),
            "scheduler_vs_threads_unbatched": round(sched_rate / threaded_rate, 2),
            "scheduler_mean_batch": round(statistics.median(sizes), 1),
            "asyncio_scheduler_tok_s": round(tasks_rate, 1),
            "asyncio_scheduler_ratio": round(tasks_rate / one_by_one, 2),
            "asyncio_cores_busy": round(statistics.median(cores), 2),
            "sessions_one_by_one_tok_s": round(sessions_rate, 1),
            "asyncio_vs_sessions_one_by_one": round(tasks_rate / sessions_rate, 2),
            "rounds": rounds,
        }
    return out


def _cold_start(model_path: str | None) -> dict[str, float]:
    import subprocess

    code = (
        "import time; t0=time.perf_counter(); import guardkit; t1=time.perf_counter(); "
        f"g=guardkit.Guard({model_path!r}, device='cpu'); t2=time.perf_counter(); "
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (forked) parent
        "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; print(t1-t0, t2-t1, hwm)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import_s, load_s, rss_kb = result.stdout.split()
    return {"import_s": round(float(import_s), 3), "model_load_s": round(float(load_s), 3), "peak_rss_mb": round(float(rss_kb) / 1024, 1)}


def run_bench(
    model_path: str | None = None,
    *,
    tokens: int = 128,
    threads: int | None = None,
    rounds: int = 3,
    lengths: list[int] | None = None,
    streams: list[int] | None = None,
    baseline_model: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    say = progress or (lambda message: None)
    model = StreamModel(model_path, device="cpu", threads=threads)
    gc.collect()
    figures: dict[str, Any] = {}
    say("thread settings: one session per setting, alternating")
    figures["thread_settings"] = _bench_threads(model, tokens, rounds)
    say("raw ONNX step vs session per-token cost (batch 1)")
    figures["batch1"] = _bench_raw_vs_session(model, tokens, rounds)
    if baseline_model is not None:
        say(f"step latency vs the baseline bundle {baseline_model}")
        figures["vs_baseline"] = _bench_vs_baseline(model, StreamModel(baseline_model, device="cpu", threads=threads), tokens, rounds)
    say("a lone session: judging every token vs coalescing 4")
    figures["coalesce"] = _bench_coalesce(model, tokens, rounds)
    say("a reply judged with and without the reply check")
    reply_check = _bench_reply_check(model, max(2, rounds))
    if reply_check is not None:
        figures["reply_check"] = reply_check
    say("chunked steps k = 1, 2, 3, 4, 8, 16")
    figures["chunked"] = _bench_chunks(model, tokens, rounds)
    say("incremental scoring vs full re-scoring")
    longest = model.max_positions - len(model.prompt_token_ids(_PROMPT)) - 8
    figures["rescoring"] = _bench_rescoring(model, lengths or sorted({128, 512, 2048, longest}), probes=8)
    say("concurrent streams: one-by-one vs batched")
    figures["streams"] = _bench_streams(model, streams or [1, 8, 32, 64], tokens=min(tokens, 64), rounds=rounds, say=say)
    say("cold start and memory")
    figures["cold_start"] = _cold_start(str(model.path))
    figures["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    import onnxruntime

    machine = (f"{os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}, onnxruntime {onnxruntime.__version__}, "
               f"threads={threads or 'default (1 per call, no spinning)'}")
    return BenchResult(model=f"{model.manifest.name} {model.manifest.version}", threads=threads, machine=machine, figures=figures)


def print_report(result: BenchResult, out: TextIO | None = None) -> None:
    """Write the report to ``out`` (default: the current ``sys.stdout``, read at call time so redirection works)."""
    f = result.figures
    w = (out if out is not None else sys.stdout).write
    w(f"guardkit bench: {result.model} on {result.machine}\n\n")
    w("Thread settings, one session, per token (sum over alternating 16-token blocks; CPU = every thread of the process):\n")
    w("  setting                            wall ms   CPU ms   wall vs best explicit   CPU vs threads=1\n")
    for name, t in f["thread_settings"].items():
        w(f"  {name:<32} {t['wall_ms_per_token']:9.3f} {t['cpu_ms_per_token']:8.3f} {t['wall_vs_best_explicit']:15.2f}x {t['cpu_vs_threads1']:17.2f}x\n")
    w("\n")
    b = f["batch1"]
    w("Batch 1, one token per step (median / p99 ms):\n")
    w(f"  raw ONNX step        {b['raw_step']['median_ms']:8.3f} / {b['raw_step']['p99_ms']:8.3f}\n")
    w(f"  session per token    {b['session_per_token']['median_ms']:8.3f} / {b['session_per_token']['p99_ms']:8.3f}\n")
    w(f"  session / raw        {b['session_overhead_ratio']:8.3f}x  (SDK overhead {100 * (b['session_overhead_ratio'] - 1):+.1f}%)\n\n")
    if "vs_baseline" in f:
        v = f["vs_baseline"]
        w("Batch-1 step, this model vs the baseline bundle (alternating step by step; median / p99 ms, bundle MB):\n")
        for key in ("model", "baseline"):
            w(f"  {v[key]['name']:<28} {v[key]['step']['median_ms']:8.3f} / {v[key]['step']['p99_ms']:8.3f}   {v[key]['bundle_mb']:7.2f} MB\n")
        w(f"  step ratio (model / baseline) {v['step_ratio']:.3f}x\n")
        if "prompt_check" in v:
            pc = v["prompt_check"]
            w("  prompt check (the classifier's call on 4 prompts, alternating; wall median / CPU mean ms):\n")
            for key in ("model", "baseline"):
                w(f"    {v[key]['name']:<26} {pc[key]['median_ms']:8.3f} / {pc[key]['cpu_ms']:8.3f}\n")
            w(f"    ratio (model / baseline) {pc['ratio']:.3f}x\n")
        w("\n")
    w("A lone session fed one token per delta (per token; Guard(coalesce=4) releases up to 3 tokens later):\n")
    for name, t in f["coalesce"].items():
        w(f"  {name:<11} wall {t['wall_ms_per_token']:8.3f} ms   CPU {t['cpu_ms_per_token']:8.3f} ms   {t['cpu_vs_coalesce1']:5.2f}x CPU\n")
    w("\n")
    if "reply_check" in f:
        r = f["reply_check"]
        w(f"A reply of short sentences ({r['tokens']} tokens, {r['checks']} reply checks), fed word by word, per token"
          " (alternating rounds):\n")
        for name in ("off", "on"):
            w(f"  reply check {name:<3}  wall {r[name]['wall_ms_per_token']:8.3f} ms   CPU {r[name]['cpu_ms_per_token']:8.3f} ms\n")
        w(f"  one check {r['ms_per_check']:.3f} ms (wall); CPU with / without {r['cpu_ratio']:.2f}x\n\n")
    w("Chunked steps, per token (wall median / p99 ms, speed-up vs k=1, CPU ms per token):\n")
    for name, t in f["chunked"].items():
        w(f"  {name:<6} {t['median_ms']:8.3f} / {t['p99_ms']:8.3f}   {t['speedup_vs_k1']:6.2f}x   CPU {t['cpu_ms_per_token']:7.3f}\n")
    w("\nIncremental step vs re-scoring the whole prefix per token (median ms; past the model's positions,\n")
    w("  a real session's mean cost per token vs re-scoring the longest tail the model can see):\n")
    for length, t in f["rescoring"].items():
        if "window_rescore" in t:
            w(f"  {length:>5} tokens: session {t['session_mean_ms']:8.3f} (mean, {t['session_reprefills']} re-prefills)"
              f"   re-scoring the last {t['window_tokens']} tokens {t['window_rescore']['median_ms']:9.3f}   {t['ratio']:8.1f}x cheaper\n")
        else:
            cpu = "" if t.get("cpu_ratio") is None else f"   (CPU time: {t['cpu_ratio']:.1f}x)"
            w(f"  {length:>5} tokens: incremental {t['incremental']['median_ms']:8.3f}   full {t['full_rescore']['median_ms']:9.3f}   "
              f"{t['ratio']:8.1f}x cheaper{cpu}\n")
    w("\nConcurrent streams, aggregate guard tokens/s (single-token steps; median of alternating rounds):\n")
    w("  model level: one-by-one in one thread vs one batched call per step;\n")
    w("  session level: S sessions in S threads, unbatched (calls side by side) vs through the scheduler;\n")
    w("  asyncio: S tasks on one event loop through the scheduler\n")
    w("  sessions 1-by-1: the same S sessions one after another, unbatched (Guard() streams served in turn)\n")
    w("  streams   one-by-one     batched  ratio |  unbatched   scheduler  vs 1-by-1  vs unbatched  mean batch |"
      "   asyncio  vs 1-by-1  cores busy | sessions 1-by-1  asyncio vs it\n")
    for count, t in f["streams"].items():
        w(f"  {count:>7} {t['one_by_one_tok_s']:12.1f} {t['batched_tok_s']:11.1f} {t['batched_ratio']:5.2f}x |"
          f"{t['threads_unbatched_tok_s']:11.1f} {t['scheduler_tok_s']:11.1f} {t['scheduler_ratio']:9.2f}x "
          f"{t['scheduler_vs_threads_unbatched']:12.2f}x {t['scheduler_mean_batch']:11.1f} |"
          f"{t['asyncio_scheduler_tok_s']:10.1f} {t['asyncio_scheduler_ratio']:8.2f}x {t['asyncio_cores_busy']:10.2f} |"
          f"{t['sessions_one_by_one_tok_s']:16.1f} {t['asyncio_vs_sessions_one_by_one']:13.2f}x\n")
    c = f["cold_start"]
    w(f"\nCold start: import {c['import_s']:.3f} s + model load {c['model_load_s']:.3f} s; peak RSS {c['peak_rss_mb']:.1f} MB (fresh process)\n")
    w(f"Peak RSS of this benchmark process: {f['bench_peak_rss_mb']:.1f} MB\n")
