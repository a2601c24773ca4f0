"""Fast defaults (issue 16): session options, split 2-row calls, two-cohort batching; all exact."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import numpy as np
import pytest

from gk_helpers import same_verdict, shipped_bundles
from guardkit import Guard, StreamModel
from guardkit.batching import BatchScheduler
from guardkit.errors import GuardConfigError
from guardkit.model import DEFAULT_THREADS
from guardkit.testing import SAFE_WORDS

HARM = ["how to build a bomb detonator now", "steal and launder counterfeit money", "nude overdose"]


def _options(model: StreamModel):  # type: ignore[no-untyped-def]
    return model._session.get_session_options()


def test_default_session_options_use_one_thread_per_call_and_never_spin(tiny_bundle: Path) -> None:
    options = _options(StreamModel(tiny_bundle, device="cpu"))
    assert options.intra_op_num_threads == DEFAULT_THREADS == 1
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_explicit_threads_override_the_default_and_still_do_not_spin(tiny_bundle: Path) -> None:
    options = _options(StreamModel(tiny_bundle, device="cpu", threads=2))
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert _options(Guard(tiny_bundle, device="cpu", threads=2).model).intra_op_num_threads == 2


def test_threads_below_one_is_a_clear_error(tiny_bundle: Path) -> None:
    with pytest.raises(GuardConfigError, match="threads must be >= 1"):
        StreamModel(tiny_bundle, device="cpu", threads=0)


@pytest.fixture(params=["tiny", *[p.name for p in shipped_bundles()]])
def any_model(request: pytest.FixtureRequest) -> StreamModel:
    path = request.getfixturevalue("tiny_bundle") if request.param == "tiny" else next(p for p in shipped_bundles() if p.name == request.param)
    return StreamModel(path, device="cpu")


def _ids(model: StreamModel, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    text = " ".join(rng.choice(SAFE_WORDS) for _ in range(80)) + " " + HARM[seed % len(HARM)]
    return (model.prompt_token_ids("hello there") + model.tokenizer.encode(text, add_special_tokens=False).ids)[:96]


def test_a_two_token_step_is_split_on_cpu_and_stays_exact(any_model: StreamModel) -> None:
    """k=2 runs as two 1-row calls (MLAS's 2-row product costs about two); outputs equal one 2-row call and single steps."""
    model = any_model
    assert model._split_pairs
    ids = _ids(model)
    state = model.step(model.empty_state(), ids[:20]).state
    split = model.step(state, ids[20:22])
    model._split_pairs = False
    try:
        joint = model.step(state, ids[20:22])
    finally:
        model._split_pairs = True
    first = model.step(state, ids[20:21])
    second = model.step(first.state, ids[21:22])
    np.testing.assert_allclose(split.risk, joint.risk, atol=1e-4)
    np.testing.assert_allclose(split.category, joint.category, atol=1e-4)
    np.testing.assert_allclose(split.risk, np.concatenate([first.risk, second.risk]), atol=1e-5)
    assert split.state.length == joint.state.length == 22
    for a, b in zip(split.state.arrays, joint.state.arrays):
        np.testing.assert_allclose(a, b, atol=1e-4)
    pair = model.step_many([state, first.state], [ids[20:21], ids[21:22]])  # two single tokens: two 1-row calls
    np.testing.assert_allclose(pair[0].risk, first.risk, atol=1e-5)
    np.testing.assert_allclose(pair[1].risk, second.risk, atol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 4, 16])
def test_chunks_of_k_tokens_give_the_single_step_logits(any_model: StreamModel, k: int) -> None:
    model = any_model
    ids = _ids(model, seed=k)
    prompt = len(model.prompt_token_ids("hello there"))
    state = model.step(model.empty_state(), ids[:prompt]).state
    singles = []
    single_state = state
    for token in ids[prompt:]:
        out = model.step(single_state, [token])
        singles.append(out.risk[0])
        single_state = out.state
    chunked = []
    for begin in range(prompt, len(ids), k):
        out = model.step(state, ids[begin : begin + k])
        chunked.extend(out.risk)
        state = out.state
    np.testing.assert_allclose(np.array(chunked), np.array(singles), atol=1e-4)
    for a, b in zip(state.arrays, single_state.arrays):
        np.testing.assert_allclose(a, b, atol=1e-4)


def _texts(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = [rng.choice(SAFE_WORDS) for _ in range(rng.randint(5, 40))]
        if i % 3 == 0:
            words.insert(rng.randint(0, len(words)), rng.choice(HARM))
        texts.append(" ".join(words))
    return texts


async def test_two_cohorts_give_the_unbatched_verdicts(tiny_bundle: Path) -> None:
    """32 asyncio streams split into two alternating cohorts: every verdict and released text as unbatched."""
    texts = _texts(32)
    model = StreamModel(tiny_bundle, device="cpu")
    with Guard(model, batching=True) as guard:
        assert guard.scheduler is not None and guard.scheduler.workers == min(2, __import__("os").cpu_count() or 1)

        async def one(i: int) -> tuple[bool, object, str]:
            words = texts[i].split(" ")
            stream = guard.astream([w + " " for w in words], prompt="please help me")
            out = "".join([t async for t in stream])
            return stream.blocked, stream.verdict, out

        results = await asyncio.gather(*(one(i) for i in range(len(texts))))
    reference = Guard(model)
    blocked = 0
    for text, (b, verdict, out) in zip(texts, results):
        stream = reference.stream([w + " " for w in text.split(" ")], prompt="please help me")
        expected = "".join(stream)
        assert (b, out) == (stream.blocked, expected) and same_verdict(verdict, stream.verdict)
        blocked += b
    assert blocked >= 5


def test_cohorts_cap_a_batch_at_half_the_active_sessions(tiny_bundle: Path) -> None:
    """With two workers and 32 sessions, 32 pending steps run as two batches of 16 (which may run at once)."""
    model = StreamModel(tiny_bundle, device="cpu")
    ids = model.prompt_token_ids("hello there")
    with BatchScheduler(model, workers=2, max_wait_ms=50) as scheduler:
        for _ in range(32):
            scheduler.register()

        async def main() -> list[object]:
            return await asyncio.gather(*(scheduler.astep(model.empty_state(), ids) for _ in range(32)))

        outputs = asyncio.run(main())
    assert scheduler.stats.sizes == {16: 2}
    alone = model.step(model.empty_state(), ids)
    for out in outputs:
        np.testing.assert_allclose(out.risk, alone.risk, atol=1e-5)  # type: ignore[attr-defined]


def test_one_worker_keeps_one_cohort_and_bad_settings_are_refused(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    ids = model.prompt_token_ids("hello there")
    with BatchScheduler(model, workers=1, max_wait_ms=50) as scheduler:
        for _ in range(32):
            scheduler.register()

        async def main() -> list[object]:
            return await asyncio.gather(*(scheduler.astep(model.empty_state(), ids) for _ in range(32)))

        asyncio.run(main())
    assert scheduler.stats.sizes == {32: 1}
    for bad in ({"workers": 0}, {"min_cohort": 0}):
        with pytest.raises(GuardConfigError, match="workers and min_cohort"):
            BatchScheduler(model, **bad)  # type: ignore[arg-type]


# -- opt-in coalescing (issue 16 item 3) ---------------------------------------------------


def _word_deltas(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


@pytest.mark.parametrize("coalesce", [2, 4, 16])
def test_coalescing_keeps_verdicts_and_released_text_and_calls_the_model_less(tiny_bundle: Path, coalesce: int) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    plain, merged = Guard(model), Guard(model, coalesce=coalesce)
    for i, text in enumerate(_texts(24, seed=coalesce)):
        a = plain.session("please help me")
        b = merged.session("please help me")
        out_a, out_b = [], []
        for delta in _word_deltas(text):
            out_a += a.feed(delta)
            out_b += b.feed(delta)
            released_a = "".join(e.text for e in out_a if type(e).__name__ == "Released")
            released_b = "".join(e.text for e in out_b if type(e).__name__ == "Released")
            assert released_a.startswith(released_b)  # coalescing only ever releases later, never more
        out_a += a.finish()
        out_b += b.finish()
        assert a.blocked == b.blocked and a.released_text == b.released_text and same_verdict(a.verdict, b.verdict), i
        if not a.blocked and len(a._tokens) >= 2 * coalesce:
            assert b.model_calls < a.model_calls


async def test_coalescing_in_async_streams(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    text = _texts(3, seed=5)[0]
    plain, merged = Guard(model), Guard(model, coalesce=4)
    a = merged.astream(_word_deltas(text), prompt="hi")
    got = "".join([t async for t in a])
    b = plain.stream(_word_deltas(text), prompt="hi")
    assert got == "".join(b) and a.blocked == b.blocked and same_verdict(a.verdict, b.verdict)


def test_bad_coalesce_is_a_clear_error(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    for bad in (0, -1, True, 2.5):
        with pytest.raises(GuardConfigError, match="coalesce must be an int"):
            Guard(model, coalesce=bad)  # type: ignore[arg-type]
    with pytest.raises(GuardConfigError, match="coalesce must be an int from 1 to"):
        Guard(model, coalesce=10_000).session()


def test_guard_passes_batch_workers_to_its_scheduler(tiny_bundle: Path) -> None:
    model = StreamModel(tiny_bundle, device="cpu")
    with Guard(model, batching=True, batch_workers=1) as guard:
        assert guard.scheduler is not None and guard.scheduler.workers == 1
        assert len(guard.scheduler._workers) == 1
    with pytest.raises(GuardConfigError, match="workers and min_cohort"):
        Guard(model, batching=True, batch_workers=0)
