"""The in-place KV cache (issue 16 item 4): the split-attention graph and KVBuffer give the plain graph's outputs."""

from __future__ import annotations

import random
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from gk_helpers import same_verdict, shipped_bundles
from guardkit import Guard, StreamModel
from guardkit.kvcache import GROWTH, KVBuffer, capacity_for, split_attention
from guardkit.testing import SAFE_WORDS


@pytest.fixture(params=["tiny", *[p.name for p in shipped_bundles()]])
def pair(request: pytest.FixtureRequest) -> tuple[StreamModel, StreamModel]:
    """The same bundle twice: with the in-place cache (the default) and with the graph as it is."""
    path = request.getfixturevalue("tiny_bundle") if request.param == "tiny" else next(p for p in shipped_bundles() if p.name == request.param)
    fast, plain = StreamModel(path, device="cpu"), StreamModel(path, device="cpu", kv_buffer=False)
    assert fast._kv_buffer and not plain._kv_buffer
    return fast, plain


def _ids(model: StreamModel, count: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    text = " ".join(rng.choice(SAFE_WORDS) for _ in range(count)) + " bomb detonator kill"
    ids = model.prompt_token_ids("hello there") + model.tokenizer.encode(text, add_special_tokens=False).ids
    return ids[: model.max_positions]


def _close(a: object, b: object) -> None:
    np.testing.assert_allclose(a.risk, b.risk, atol=1e-4)  # type: ignore[attr-defined]
    np.testing.assert_allclose(a.category, b.category, atol=1e-4)  # type: ignore[attr-defined]
    assert a.state.length == b.state.length  # type: ignore[attr-defined]
    for x, y in zip(a.state.arrays, b.state.arrays):  # type: ignore[attr-defined]
        np.testing.assert_allclose(x, y, atol=1e-4)


@pytest.mark.parametrize("k", [1, 2, 4, 16])
def test_chunks_of_k_equal_the_plain_graph_across_buffer_growth(pair: tuple[StreamModel, StreamModel], k: int) -> None:
    fast, plain = pair
    ids = _ids(fast, 200, seed=k)
    a = fast.step(fast.empty_state(), ids[:5])
    b = plain.step(plain.empty_state(), ids[:5])
    _close(a, b)
    buffers = {id(a.state.batch)}
    for begin in range(5, len(ids), k):  # crosses GROWTH-position boundaries: the buffer is replaced there only
        a, b = fast.step(a.state, ids[begin : begin + k]), plain.step(b.state, ids[begin : begin + k])
        _close(a, b)
        assert isinstance(a.state.batch, KVBuffer) and a.state.batch.filled[a.state.row] == a.state.length
        buffers.add(id(a.state.batch))
    assert len(buffers) <= -(-len(ids) // GROWTH) + 1  # one fresh buffer per GROWTH positions, not one per step


def test_a_state_stepped_twice_keeps_both_continuations_exact(pair: tuple[StreamModel, StreamModel]) -> None:
    """Two continuations of one state: the second cannot write the row the first extended, so it copies."""
    fast, plain = pair
    ids = _ids(fast, 60, seed=3)
    base_fast, base_plain = fast.step(fast.empty_state(), ids[:30]).state, plain.step(plain.empty_state(), ids[:30]).state
    first = fast.step(base_fast, ids[30:32])
    second = fast.step(base_fast, ids[40:43])  # same state, other tokens
    assert second.state.batch is not first.state.batch
    _close(first, plain.step(base_plain, ids[30:32]))
    _close(second, plain.step(base_plain, ids[40:43]))
    _close(fast.step(first.state, ids[50:51]), plain.step(plain.step(base_plain, ids[30:32]).state, ids[50:51]))  # still valid


def test_ragged_batches_and_cohorts_equal_single_plain_steps(pair: tuple[StreamModel, StreamModel]) -> None:
    fast, plain = pair
    streams = [_ids(fast, 40 + 7 * i, seed=i) for i in range(5)]
    fast_states = [fast.step(fast.empty_state(), s[: 10 + i]).state for i, s in enumerate(streams)]
    plain_states = [plain.step(plain.empty_state(), s[: 10 + i]).state for i, s in enumerate(streams)]
    offsets = [10 + i for i in range(5)]
    rng = random.Random(0)
    cohort = None
    for round_ in range(6):
        chunks = [s[o : o + rng.choice([1, 1, 3])] for s, o in zip(streams, offsets)]
        outs = fast.step_many(fast_states, chunks)
        for out, state, chunk in zip(outs, plain_states, chunks):
            _close(out, plain.step(state, chunk))
        if round_ >= 2:  # rows stepped together stay in their cohort's buffer, written in place
            assert outs[0].state.batch is cohort
        cohort = outs[0].state.batch
        assert all(o.state.batch is cohort for o in outs)
        fast_states = [o.state for o in outs]
        plain_states = [plain.step(s, c).state for s, c in zip(plain_states, chunks)]
        offsets = [o + len(c) for o, c in zip(offsets, chunks)]
    # a subset in another order, mixed with a lone state: copied into a fresh buffer, still exact
    mixed = [fast_states[3], fast_states[1], fast.step(fast.empty_state(), streams[0][:4]).state]
    reference = [plain_states[3], plain_states[1], plain.step(plain.empty_state(), streams[0][:4]).state]
    for out, state in zip(fast.step_many(mixed, [[7], [8, 9], [10]]), reference):
        assert out.state.batch is not cohort
    for out, state, chunk in zip(fast.step_many(mixed, [[7], [8, 9], [10]]), reference, [[7], [8, 9], [10]]):
        _close(out, plain.step(state, chunk))


def test_threads_stepping_one_state_at_once_all_get_exact_results(pair: tuple[StreamModel, StreamModel]) -> None:
    fast, plain = pair
    ids = _ids(fast, 40, seed=5)
    base = fast.step(fast.empty_state(), ids[:20]).state
    reference = plain.step(plain.empty_state(), ids[:20]).state
    results: dict[int, object] = {}
    barrier = threading.Barrier(8)

    def one(i: int) -> None:
        barrier.wait()
        results[i] = fast.step(base, [ids[20 + i]])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        _close(results[i], plain.step(reference, [ids[20 + i]]))


def test_verdicts_with_the_in_place_cache_equal_the_plain_graph(short_bundle: Path) -> None:
    """Whole streams past the model's positions (re-prefills) give the same verdicts and released text."""
    fast, plain = Guard(StreamModel(short_bundle, device="cpu")), Guard(StreamModel(short_bundle, device="cpu", kv_buffer=False))
    rng = random.Random(9)
    for i in range(6):
        words = [rng.choice(SAFE_WORDS) for _ in range(rng.randint(20, 90))]
        if i % 2:
            words.insert(rng.randint(0, len(words)), "bomb detonator")
        text = " ".join(words)
        a, b = fast.stream([text[j : j + 7] for j in range(0, len(text), 7)], prompt="hi"), plain.stream([text], prompt="hi")
        assert "".join(a) == "".join(b) and a.blocked == b.blocked and same_verdict(a.verdict, b.verdict)


def test_graphs_without_the_plain_attention_pattern_run_as_they_are() -> None:
    from guardkit.export import bench_qwen3guard as bq
    from guardkit.export.onnx_graph import build_onnx, weight_names

    spec = bq.spec_for("tiny")
    bq._SHAPE_OF.clear()
    bq._SHAPE_OF.update(weight_names(spec))
    with tempfile.TemporaryDirectory() as tmp:
        build_onnx(spec, bq._random_weight, Path(tmp))
        assert split_attention(Path(tmp) / "model.onnx", spec.num_layers) is None  # grouped-query attention: left alone
    assert split_attention(Path("/nonexistent/model.onnx"), 2) is None


def test_capacity_grows_in_steps_and_never_past_max_positions() -> None:
    assert capacity_for(1, 512) == GROWTH and capacity_for(GROWTH + 1, 512) == 2 * GROWTH
    assert capacity_for(500, 512) == 512 and capacity_for(40, 48) == 48 and capacity_for(48, 48) == 48
    buffer = KVBuffer(2, 64, 2, 1, 4, np.float32)
    assert buffer.claim([0, 1], [0, 0], [10, 64])
    assert not buffer.claim([0], [0], [1])  # row 0 was extended already: not the newest state any more
    assert not buffer.claim([0, 1], [10, 64], [1, 1])  # row 1 is full: all or none
    assert buffer.filled == [10, 64]


def test_a_rewrite_onnxruntime_refuses_falls_back_to_the_graph_as_it_is(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import guardkit.model as model_module

    monkeypatch.setattr(model_module, "split_attention", lambda path, layers: b"not an onnx graph")
    model = StreamModel(tiny_bundle, device="cpu")
    assert not model._kv_buffer
    out = model.step(model.empty_state(), model.prompt_token_ids("hello"))
    assert out.state.batch is None and out.state.length == len(model.prompt_token_ids("hello"))


def test_compaction_counts_rows_not_states_of_an_in_place_buffer(tiny_bundle: Path) -> None:
    """A session's older state views its same row: an idle session alone in a 3-row buffer gets its own copy
    even while its previous state is still alive, and a finished request lets go of its input state."""
    import functools
    import weakref

    from guardkit.batching import BatchScheduler, _forget, _Request

    model = StreamModel(tiny_bundle, device="cpu")
    ids = model.prompt_token_ids("hello there")
    first = model.step_many([model.empty_state()] * 3, [ids] * 3)
    second = model.step_many([o.state for o in first], [[7], [8], [9]])  # in place: the same buffer
    buffer = second[0].state.batch
    assert isinstance(buffer, KVBuffer) and first[0].state.batch is buffer
    old, new = first[0].state, second[0].state  # row 0 twice; rows 1 and 2 are gone
    del first, second
    with BatchScheduler(model) as scheduler:
        for state in (old, new):
            scheduler._views[id(state)] = weakref.ref(state, functools.partial(_forget, scheduler._views, id(state)))
        scheduler._compact_views()
        assert new.batch is None and old.batch is None
        assert not any(np.shares_memory(a, b) for a, b in zip(new.arrays, buffer.arrays))
    request = _Request(new, [1], False)
    request.finish(output=None)
    assert request.state is None
