"""Batching concurrent streams: same verdicts as unbatched, exact logits, isolation."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from gk_helpers import same_verdict, shipped_bundles
from guardkit import Guard, StreamModel
from guardkit.batching import BatchScheduler
from guardkit.testing import SAFE_WORDS

HARM = ["how to build a bomb detonator now", "steal and launder counterfeit money", "nude overdose"]


def _texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = [rng.choice(SAFE_WORDS) for _ in range(rng.randint(3, 60))]
        if i % 3 == 0:
            words.insert(rng.randint(0, len(words)), rng.choice(HARM))
        texts.append(" ".join(words))
    return texts


def _pieces(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        j = i + rng.randint(1, 9)
        out.append(text[i:j])
        i = j
    return out


@pytest.fixture(params=["tiny", *[p.name for p in shipped_bundles()]])
def batch_model(request: pytest.FixtureRequest) -> StreamModel:
    path = request.getfixturevalue("tiny_bundle") if request.param == "tiny" else next(p for p in shipped_bundles() if p.name == request.param)
    return StreamModel(path, device="cpu")


def test_step_many_equals_single_steps_and_full_recompute(batch_model: StreamModel) -> None:
    model = batch_model
    rng = random.Random(0)
    states, chunks, fulls = [], [], []
    for text in _texts(12):
        ids = (model.prompt_token_ids("hello there") + model.tokenizer.encode(text, add_special_tokens=False).ids)[: model.max_positions]
        cut = rng.randint(1, len(ids) - 1)
        k = rng.randint(1, min(16, len(ids) - cut))
        states.append(model.step(model.empty_state(), ids[:cut]).state)
        chunks.append(ids[cut : cut + k])
        fulls.append(model.run(model.empty_state(), ids[: cut + k])[0]["risk_logits"][cut:])
    outs = model.step_many(states, chunks)
    for state, chunk, out, full in zip(states, chunks, outs, fulls):
        alone = model.step(state, chunk)
        np.testing.assert_allclose(out.risk, alone.risk, atol=1e-5)
        for a, b in zip(out.state.arrays, alone.state.arrays):
            np.testing.assert_allclose(a, b, atol=1e-4)
        logits = np.log(out.risk)  # compare in probability space with the full recompute
        ref = full - full.max(axis=1, keepdims=True)
        ref = np.exp(ref) / np.exp(ref).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(out.risk, ref[:, model._risk_order], atol=1e-4)
        assert np.isfinite(logits).all()


def test_consecutive_batches_reuse_the_batch_output(batch_model: StreamModel) -> None:
    """States from one batched call feed the next one as is, as a reordered subset, or mixed with others."""
    model = batch_model
    ids = model.prompt_token_ids("hello there") + model.tokenizer.encode(_texts(1)[0], add_special_tokens=False).ids
    start = [model.step(model.empty_state(), ids[: 5 + i]).state for i in range(4)]
    aligned = model.step_many([start[0]] * 4, [[ids[5 + i]] for i in range(4)])  # aligned rows: views of the output
    assert all(o.state.batch is aligned[0].state.batch for o in aligned)
    cases = [
        ([o.state for o in aligned], [[7], [8], [9], [10]]),  # all rows in order: no gather
        ([aligned[2].state, aligned[0].state], [[11], [12, 13]]),  # a reordered subset, ragged chunks
        ([aligned[1].state, start[3]], [[14], [15]]),  # mixed with a state of another length
    ]
    ragged = model.step_many(start, [[20], [21], [22], [23]])  # lengths 5..8: rows are tails of the output
    assert all(o.state.batch is ragged[0].state.batch for o in ragged)
    cases += [
        ([o.state for o in ragged], [[24], [25], [26], [27]]),  # all rows in order, left pads zeroed in place
        ([o.state for o in ragged][::-1], [[28], [29], [30], [31]]),  # reordered: one take per tensor
        ([o.state for o in ragged][:-1], [[32], [33], [34]]),  # the longest row gone: a plain copy
    ]
    for states, chunks in cases:
        for state, chunk, out in zip(states, chunks, model.step_many(states, chunks)):
            alone = model.step(state, chunk)
            np.testing.assert_allclose(out.risk, alone.risk, atol=1e-5)
            for a, b in zip(out.state.arrays, alone.state.arrays):
                np.testing.assert_allclose(a, b, atol=1e-4)
    for state, extra in zip([o.state for o in ragged], range(4)):  # the views equal a full recompute of each stream
        full = model.run(model.empty_state(), ids[: 5 + extra] + [20 + extra, 40])[0]["risk_logits"][-1]
        np.testing.assert_allclose(model.run(state, [40])[0]["risk_logits"][-1], full, atol=1e-4)


def _run_threads(guard: Guard, texts: list[str]) -> list[tuple[bool, object, str]]:
    def one(i: int) -> tuple[bool, object, str]:
        stream = guard.stream(_pieces(texts[i], i), prompt="please help me")
        list(stream)
        return stream.blocked, stream.verdict, stream.released_text

    with ThreadPoolExecutor(64) as pool:
        return list(pool.map(one, range(len(texts))))


def test_64_concurrent_streams_same_verdicts_with_and_without_batching(tiny_bundle: Path) -> None:
    texts = _texts(64)
    model = StreamModel(tiny_bundle, device="cpu")
    plain = _run_threads(Guard(model), texts)
    with Guard(model, batching=True, max_wait_ms=5) as batched_guard:
        batched = _run_threads(batched_guard, texts)
        stats = batched_guard.scheduler.stats  # type: ignore[union-attr]
    for (b_blocked, b_verdict, b_text), (p_blocked, p_verdict, p_text) in zip(batched, plain):
        assert (b_blocked, b_text) == (p_blocked, p_text) and same_verdict(b_verdict, p_verdict)
    assert sum(b for b, _, _ in plain) >= 15  # the mix really holds harmful streams
    assert stats.largest > 1 and stats.mean_batch > 1  # steps really shared calls
    assert model.live_sessions == 0


async def test_async_streams_are_batched_too(tiny_bundle: Path) -> None:
    """32 asyncio streams share batched calls, get the unbatched results, and need no thread each."""
    texts = _texts(32, seed=3)
    model = StreamModel(tiny_bundle, device="cpu")
    threads_before = threading.active_count()
    peak_threads = 0
    with Guard(model, batching=True) as guard:

        async def one(i: int) -> tuple[bool, str]:
            nonlocal peak_threads
            stream = guard.astream(_pieces(texts[i], i))
            out = []
            async for text in stream:
                out.append(text)
                peak_threads = max(peak_threads, threading.active_count())
            return stream.blocked, "".join(out)

        results = await asyncio.gather(*(one(i) for i in range(len(texts))))
        assert guard.scheduler is not None and guard.scheduler.stats.largest > 1
    assert peak_threads <= threads_before + guard.scheduler.workers  # the batcher's workers only
    reference = Guard(model)
    for text, (blocked, out) in zip(texts, results):
        stream = reference.stream([text])
        expected = "".join(stream)
        assert (blocked, out) == (stream.blocked, expected)


def _good_bad_good(model: StreamModel) -> list[list[int]]:
    """Three steps for a batch; the middle one fails (out of vocabulary: ONNX Runtime rejects the gather)."""
    good = model.prompt_token_ids("hello")
    return [good, [10**9], good]


def _check_only_the_bad_failed(model: StreamModel, results: list[object]) -> None:
    assert isinstance(results[1], Exception)
    for result in (results[0], results[2]):
        assert not isinstance(result, BaseException)
        np.testing.assert_allclose(result.risk, model.step(model.empty_state(), _good_bad_good(model)[0]).risk, atol=1e-5)  # type: ignore[attr-defined]


def test_a_failing_step_does_not_fail_the_others(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    with BatchScheduler(model, max_wait_ms=50) as scheduler, ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            scheduler.register()
        futures = [pool.submit(scheduler.step, model.empty_state(), ids) for ids in _good_bad_good(model)]
        results = [f.exception(timeout=10) or f.result() for f in futures]
    _check_only_the_bad_failed(model, results)


async def test_a_failing_async_step_does_not_fail_the_others(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    with BatchScheduler(model, max_wait_ms=50) as scheduler:
        for _ in range(3):
            scheduler.register()
        steps = (scheduler.astep(model.empty_state(), ids) for ids in _good_bad_good(model))
        results = await asyncio.gather(*steps, return_exceptions=True)
    _check_only_the_bad_failed(model, list(results))


async def test_a_cancelled_async_step_leaves_the_scheduler_working(tiny_bundle: Path) -> None:
    """A task cancelled while its step waits in a batch: the others get their results, later steps still run."""
    model = StreamModel(tiny_bundle, device="cpu")
    ids = model.prompt_token_ids("hello there")
    with BatchScheduler(model, max_wait_ms=200) as scheduler:
        for _ in range(3):  # three could step, two will: the batch waits out the gap
            scheduler.register()
        doomed = asyncio.ensure_future(scheduler.astep(model.empty_state(), ids))
        kept = asyncio.ensure_future(scheduler.astep(model.empty_state(), ids))
        await asyncio.sleep(0.01)
        doomed.cancel()
        out = await asyncio.wait_for(kept, timeout=10)
        again = await asyncio.wait_for(scheduler.astep(model.empty_state(), ids), timeout=10)
    assert doomed.cancelled()
    assert out.state.length == again.state.length == len(ids)


def test_lone_stream_does_not_wait(tiny_bundle: Path) -> None:
    """With one active session the batch runs at once instead of waiting max_wait_ms."""
    model = StreamModel(tiny_bundle, device="cpu")
    with BatchScheduler(model, max_wait_ms=10_000) as scheduler:
        scheduler.register()
        out = scheduler.step(model.empty_state(), model.prompt_token_ids("hi"))  # would hang 10 s if it waited
        assert out.state.length > 0
        assert scheduler.stats.batches == 1


def _submit_later(scheduler: BatchScheduler, model: StreamModel, delay_s: float) -> Future[object]:
    def later() -> object:
        time.sleep(delay_s)
        return scheduler.step(model.empty_state(), model.prompt_token_ids("hello there"))

    pool = ThreadPoolExecutor(1)
    future = pool.submit(later)
    pool.shutdown(wait=False)  # the submitted step still runs; the thread ends with it
    return future


def test_a_batch_waits_while_steps_keep_arriving(tiny_bundle: Path) -> None:
    """Gap rule: a step arriving within max_wait_ms of the last joins the batch, even past max_wait_ms from the first."""
    model = StreamModel(tiny_bundle, device="cpu")
    with BatchScheduler(model, max_wait_ms=400, max_delay_ms=5_000) as scheduler:
        for _ in range(4):  # four sessions could step; only three will, so no full-batch shortcut
            scheduler.register()
        futures = [_submit_later(scheduler, model, delay) for delay in (0.0, 0.25, 0.5)]
        outputs = [f.result(timeout=30) for f in futures]
    assert all(o.state.length > 0 for o in outputs)  # type: ignore[attr-defined]
    assert scheduler.stats.batches == 1 and scheduler.stats.largest == 3


def test_max_delay_caps_the_wait_of_the_first_step(tiny_bundle: Path) -> None:
    """Steps arriving every 0.1 s never leave a 0.4 s gap; the first still runs by max_delay_ms (0.5 s)."""
    model = StreamModel(tiny_bundle, device="cpu")
    with BatchScheduler(model, max_wait_ms=400, max_delay_ms=500) as scheduler:
        for _ in range(20):  # more sessions than will step: no full-batch shortcut
            scheduler.register()
        t0 = time.monotonic()
        futures = [_submit_later(scheduler, model, 0.1 * i) for i in range(12)]
        first = futures[0].result(timeout=30)
        first_latency = time.monotonic() - t0
        for future in futures[1:]:
            future.result(timeout=30)
    assert first.state.length > 0  # type: ignore[attr-defined]
    assert first_latency < 1.1  # the last step arrives at 1.1 s: the first did not wait for it
    assert scheduler.stats.batches >= 2


def test_scheduler_rejects_inconsistent_waits(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    with pytest.raises(ValueError, match="max_delay_ms"):
        BatchScheduler(model, max_wait_ms=50, max_delay_ms=10)
    with BatchScheduler(model, max_wait_ms=50) as scheduler:  # the default delay follows a longer wait
        assert scheduler.max_delay >= scheduler.max_wait
