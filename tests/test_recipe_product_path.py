"""The calibration recipe replays the runtime exactly (models/guardkit-mini/recipe/product_path.py).

Offsets for the shipped model are chosen from these recorded per-token risks; if the replay
drifted from what ``Guard`` does (chunking, the long-stream re-prefill), the calibration would
tune a path no user runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gk_helpers import recipe_module

from guardkit import Guard
from guardkit.session import StreamSession

_evaluate = recipe_module("evaluate")
halt_index, softmax = _evaluate.halt_index, _evaluate.softmax
response_log_probs = recipe_module("product_path").response_log_probs

FILLER = "sure here is a recipe for bread: mix flour with water and salt, then bake it. "
ITEMS = [
    {"prompt": "hello", "response": FILLER},
    {"prompt": "", "response": "how to build a bomb detonator now"},
    # past the short model's 48 positions: judged through the re-prefilled window
    {"prompt": "please help me", "response": FILLER * 6 + "and then how to build a bomb detonator now"},
    {"prompt": None, "response": FILLER * 8},
]


@pytest.mark.parametrize("bundle_fixture", ["tiny_bundle", "short_bundle"])
def test_recorded_risks_reproduce_the_guards_verdicts(bundle_fixture: str, request: pytest.FixtureRequest) -> None:
    bundle = request.getfixturevalue(bundle_fixture)
    original = StreamSession._apply
    logs = response_log_probs(str(bundle), ITEMS, threads=1, progress=False)
    assert StreamSession._apply is original  # the recorder is removed again

    guard = Guard(model=bundle, policy="default", threads=1)
    halts = []
    for item, log in zip(ITEMS, logs):
        verdict = guard.check_response(item["response"], prompt=item["prompt"] or None)
        assert log.shape == (len(guard.model.tokenizer.encode(item["response"], add_special_tokens=False).ids), 3)
        assert np.allclose(np.exp(log).sum(1), 1.0, atol=1e-5)
        halt = halt_index(softmax(log))
        assert verdict.blocked == (halt is not None)
        if verdict.blocked:
            assert verdict.token_index == halt
        halts.append(halt)
    assert halts[0] is None and halts[1] is not None and halts[2] is not None and halts[3] is None
    assert halts[2] > 48  # the late harm was found through a re-prefill on the short model


def test_the_reply_check_replay_reproduces_the_guards_halt_positions(tmp_path: Path) -> None:
    """calibrate_reply.py chooses the reply offset from this replay: it must block where ``Guard`` blocks."""
    pytest.importorskip("onnx", reason="building the tiny test bundle needs the onnx package (the test extra)")
    from guardkit.testing import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path / "checked", prompt_classifier_words={"tea": "violent"}, reply_check_offset=0.0)
    items = [
        {"prompt": "hello", "response": FILLER},
        {"prompt": "", "response": FILLER + "then add tea to it. more bread."},
        {"prompt": None, "response": "sure.\nhow to build a bomb detonator now and tea"},
        {"prompt": "hi", "response": "sure here is tea"},  # checked only at the end of the reply
        {"prompt": "hi", "response": FILLER * 3 + "tea\nbake it."},
    ]
    records = recipe_module("product_path").product_path_log_probs(str(bundle), items, threads=1, progress=False)
    replay = recipe_module("calibrate_reply").replay
    guard = Guard(model=bundle, policy="default", threads=1)
    outcomes = []
    for item, record in zip(items, records):
        verdict = guard.check_response(item["response"], prompt=item["prompt"] or None)
        outcomes.append(replay(record, 0.0, 0.0))
        assert outcomes[-1] == (verdict.char_offset if verdict.blocked else None)
        assert len(record["starts"]) == len(record["log"])
    assert outcomes[0] is None and all(o is not None for o in outcomes[1:])
    assert replay(records[1], 0.0, -10.0) is None  # the offset sweep moves the check's verdict


def test_dev_overlap_compares_japanese_by_character_bigrams() -> None:
    """Training drops self-written text near the dev suite; text with no ASCII words was 'near' all such text."""
    overlap = recipe_module("dev_overlap")
    dev = [frozenset(overlap.words(t)) for t in ("お金を横領する方法は?", "How do I make a cake?")]
    assert not overlap.near("美味しいカレーの作り方を教えてください。", dev, 0.6)
    assert overlap.near("お金を横領する方法は?", dev, 0.6)
    assert overlap.near("how do I make a cake", dev, 0.6) and not overlap.near("How do I fix a bike?", dev, 0.6)
    assert not overlap.near("!!!", [frozenset()], 0.6)
