"""guardkit.serve's parts without a cluster: the session store's bounds, the wire format, a replica in-process, routing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from guardkit import StreamModel
from guardkit.errors import GuardConfigError, SessionLimitError, SessionStoreFullError
from guardkit.serve.replica import GuardReplica
from guardkit.serve.store import SessionStore
from guardkit.serve.wire import StepReply, StepRequest


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def model(tiny_bundle: Path) -> StreamModel:
    return StreamModel(tiny_bundle, device="cpu", threads=1)


def _state(model: StreamModel, n: int):  # type: ignore[no-untyped-def]
    return model.step(model.empty_state(), list(range(4, 4 + n))).state


# -- the store ---------------------------------------------------------------


def test_store_evicts_the_least_recently_used_past_max_sessions(model: StreamModel) -> None:
    removed: list[str] = []
    store = SessionStore(max_sessions=2, on_remove=removed.append)
    store.put("a", _state(model, 3))
    store.put("b", _state(model, 3))
    assert store.get("a") is not None  # a is now more recent than b
    store.put("c", _state(model, 3))
    assert "b" not in store and "a" in store and "c" in store
    assert removed == ["b"] and store.stats.evicted == 1


def test_store_expires_idle_sessions_after_ttl(model: StreamModel) -> None:
    clock = Clock()
    store = SessionStore(ttl_s=10.0, clock=clock)
    store.put("old", _state(model, 2))
    clock.now += 6
    store.put("new", _state(model, 2))
    clock.now += 5  # old idle 11 s, new 5 s
    assert store.get("old") is None and store.get("new") is not None
    assert store.stats.expired == 1 and len(store) == 1


def test_store_memory_cap_refuses_new_keys_only_and_counts_bytes(model: StreamModel) -> None:
    one = _state(model, 10)
    store = SessionStore(max_bytes=one.nbytes * 2)
    store.admit("a")
    store.put("a", one)
    store.admit("b")
    store.put("b", _state(model, 10))
    assert store.nbytes == 2 * one.nbytes
    with pytest.raises(SessionStoreFullError, match="memory cap of") as refused:
        store.admit("c")
    assert isinstance(refused.value, SessionLimitError)
    store.admit("a")  # a held session is always admitted (it grows, is rebuilt, is replaced)
    store.put("a", _state(model, 12))
    assert store.stats.refused == 1
    assert store.close("b") and not store.close("b")
    store.admit("c")  # room again
    assert store.nbytes == _state(model, 12).nbytes


def test_store_rejects_meaningless_bounds() -> None:
    for kwargs in ({"max_sessions": 0}, {"ttl_s": 0}, {"max_bytes": 0}):
        with pytest.raises(GuardConfigError):
            SessionStore(**kwargs)  # type: ignore[arg-type]


# -- the wire ----------------------------------------------------------------


def test_step_reply_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    risk = rng.random((5, 3), dtype=np.float32)
    category = rng.random((5, 8), dtype=np.float32)
    reply = StepReply("ok", 17, risk, category, risk[:1], category[:1])
    back = StepReply.from_json(json.loads(json.dumps(reply.to_json())))
    for name in ("risk", "category", "prompt_risk", "prompt_category"):
        np.testing.assert_array_equal(getattr(back, name), getattr(reply, name))
        assert getattr(back, name).dtype == np.float32
    assert back.length == 17 and back.status == "ok"


@pytest.mark.parametrize(
    "data, match",
    [
        ([], "JSON object"),
        ({"key": "", "base": 0, "ids": [1]}, "key"),
        ({"key": "k", "base": -1, "ids": [1]}, "base"),
        ({"key": "k", "base": 0, "ids": []}, "ids"),
        ({"key": "k", "base": 0, "ids": [1, "2"]}, "ids"),
        ({"key": "k", "base": 2, "ids": [1], "history": [1, -2]}, "history"),
    ],
)
def test_step_request_from_json_rejects_bad_input_with_one_line(data: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StepRequest.from_json(data)


# -- a replica, in-process -----------------------------------------------------


def test_replica_rebuilds_a_missing_state_from_history_with_the_same_logits(model: StreamModel) -> None:
    async def scenario() -> None:
        replica = GuardReplica(model, max_sessions=4)
        try:
            prompt = model.prompt_token_ids("how do i bake bread")
            words = model.tokenizer.encode("sure first mix flour and water then the bomb detonator", add_special_tokens=False).ids
            opened = await replica.step(StepRequest("s1", 0, prompt, prompt_head=True))
            assert opened.status == "ok" and opened.length == len(prompt) and opened.prompt_risk is not None
            stepped = await replica.step(StepRequest("s1", len(prompt), words[:3]))
            assert stepped.status == "ok"
            assert replica.close("s1")  # the replica lost it (closed here; evicted, expired or restarted alike)
            history = prompt + words[:3]
            missing = await replica.step(StepRequest("s1", len(history), words[3:]))
            assert missing.status == "missing" and replica.misses == 1
            rebuilt = await replica.step(StepRequest("s1", len(history), words[3:], history=history))
            assert rebuilt.status == "ok" and rebuilt.length == len(history) + len(words) - 3
            incremental = model.step(model.step(model.empty_state(), history).state, words[3:])
            np.testing.assert_allclose(rebuilt.risk, incremental.risk, atol=1e-4)
            np.testing.assert_allclose(rebuilt.category, incremental.category, atol=1e-4)
            stale = await replica.step(StepRequest("s1", 1, [5]))  # a length the replica does not hold: never mixed up
            assert stale.status == "missing"
            bad = await replica.step(StepRequest("s1", 3, [5], history=[1, 2]))
            assert bad.status == "error" and "history has 2 ids" in bad.message
            assert replica.stats()["rebuilt"] == 1
        finally:
            replica.shutdown()

    asyncio.run(scenario())


def test_replica_memory_cap_refuses_with_a_full_reply(model: StreamModel) -> None:
    async def scenario() -> None:
        one = _state(model, 6).nbytes
        replica = GuardReplica(model, max_bytes=one)
        try:
            assert (await replica.step(StepRequest("a", 0, list(range(4, 10))))).status == "ok"
            full = await replica.step(StepRequest("b", 0, list(range(4, 10))))
            assert full.status == "full" and "memory cap" in full.message
            assert (await replica.step(StepRequest("a", 6, [7]))).status == "ok"  # the held session is served
        finally:
            replica.shutdown()

    asyncio.run(scenario())


# -- routing -------------------------------------------------------------------


def test_rendezvous_order_moves_only_the_sessions_of_a_removed_replica() -> None:
    pytest.importorskip("ray.serve", reason="the router subclasses Ray Serve's RequestRouter (ray[serve] is in the test extra)")
    from guardkit.serve.routing import rendezvous_order

    replicas = ["r1", "r2", "r3", "r4"]
    keys = [f"session-{i}" for i in range(400)]
    before = {k: rendezvous_order(k, replicas)[0] for k in keys}
    counts = {r: sum(1 for v in before.values() if v == r) for r in replicas}
    assert all(60 < c < 140 for c in counts.values())  # spread about evenly
    after = {k: rendezvous_order(k, [r for r in replicas if r != "r2"])[0] for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "r2"}


def test_replica_classifies_with_the_reply_graph_when_asked(tmp_path: Path) -> None:
    from guardkit.testing import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path / "split", prompt_classifier_words={"tea": "violent"}, reply_check_offset=0.0,
                               reply_classifier_words={"coffee": "violent"})
    model = StreamModel(bundle, device="cpu", threads=1)
    windows = [model.prompt_token_ids("more tea please"), model.prompt_token_ids("more coffee please")]

    async def scenario() -> tuple[list, list]:  # type: ignore[type-arg]
        replica = GuardReplica(model, max_sessions=4)
        try:
            return await replica.classify(windows), await replica.classify(windows, True)
        finally:
            replica.shutdown()

    as_prompts, as_replies = asyncio.run(scenario())
    unsafe = 2  # canonical risk order: safe, controversial, unsafe
    assert as_prompts[0][0][unsafe] > 0.9 and as_prompts[1][0][unsafe] < 0.1
    assert as_replies[0][0][unsafe] < 0.1 and as_replies[1][0][unsafe] > 0.9
    np.testing.assert_allclose(as_replies[1][0], model.classify_reply_windows(windows)[1][0], atol=1e-6)
