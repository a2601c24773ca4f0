"""The reply check: a bundle's classifier judging the reply so far (manifest ``prompt_model.reply_check``).

The tiny bundle's classifier reads "tea" as unsafe wherever it is; the stream
model reads it as safe. So what these tests see blocked, only the reply check blocked.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from gk_helpers import run_session, same_verdict
from hypothesis import given, settings
from hypothesis import strategies as st

from guardkit import Blocked, Flagged, Guard, Released
from guardkit.errors import ModelLoadError, PolicyError
from guardkit.policy import load_policy, policy_from_dict
from guardkit.reply_check import ReplyCheckPoints, ends_sentence
from guardkit.testing import SAFE_WORDS, build_tiny_bundle

pytest.importorskip("onnx", reason="building the tiny test bundle needs the onnx package (the test extra)")

WORDS = {"tea": "violent"}
# sentences of at least MIN_CHECK_TOKENS (8) guard tokens, so each sentence end is a check point
BENIGN = "sure here is a recipe for good bread. first mix the flour and the water. then bake the bread for a day. "
HARM = "then add tea to it"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reply-check")
    return {
        "checked": build_tiny_bundle(root / "checked", prompt_classifier_words=WORDS, reply_check_offset=0.0),
        "prompt_only": build_tiny_bundle(root / "prompt_only", prompt_classifier_words=WORDS),
        "offset": build_tiny_bundle(root / "offset", prompt_classifier_words=WORDS, reply_check_offset=-10.0),
    }


@pytest.fixture(scope="module")
def guard(bundles: dict[str, Path]) -> Guard:
    return Guard(bundles["checked"], threads=1)


@pytest.fixture(scope="module")
def coalescing(bundles: dict[str, Path]) -> Guard:
    return Guard(bundles["checked"], threads=1, coalesce=3)


_run = run_session


def test_the_check_blocks_harm_the_stream_model_passes_from_the_start_of_its_sentence(guard: Guard, bundles: dict[str, Path]) -> None:
    text = BENIGN + HARM + ". and more bread."
    assert Guard(bundles["prompt_only"], threads=1).check_response(text).action == "allow"  # no reply check: it passes
    verdict = guard.check_response(text)
    assert (verdict.action, verdict.source, verdict.category) == ("block", "response", "violent")
    assert verdict.char_offset == len(BENIGN)  # the sentence holding the harm, not the token
    assert verdict.reason is not None and verdict.reason.startswith("reply check")
    released, streamed, _ = _run(guard, [text])
    assert released == BENIGN.rstrip() or released == BENIGN  # the passed sentences, never a word of the held one
    assert "tea" not in released and same_verdict(streamed, verdict)


def test_the_unchecked_sentence_is_held_until_its_check_passes(guard: Guard) -> None:
    session = guard.session()
    released = "".join(e.text for e in session.feed("sure here is a recipe for good bread. first mix flour") if isinstance(e, Released))
    assert released.rstrip() == "sure here is a recipe for good bread."  # "first mix flour" waits for its sentence to end
    # "first mix flour." is a sentence of four tokens: fewer than MIN_CHECK_TOKENS unchecked, so not yet a check point
    released += "".join(e.text for e in session.feed(". then") if isinstance(e, Released))
    assert released.rstrip() == "sure here is a recipe for good bread."
    released += "".join(e.text for e in session.feed(" the water and the flour. ok") if isinstance(e, Released))
    assert released.rstrip() == "sure here is a recipe for good bread. first mix flour. then the water and the flour."
    released += "".join(e.text for e in session.finish() if isinstance(e, Released))
    assert released.endswith("flour. ok")
    assert session.reply_checks == 3


def test_a_line_break_and_a_long_run_without_punctuation_are_check_points(guard: Guard) -> None:
    session = guard.session()
    released = "".join(e.text for e in session.feed("first mix the flour and the good water\nthen more") if isinstance(e, Released))
    assert released.rstrip() == "first mix the flour and the good water"
    words = ["bread"] * 40
    released = "".join(e.text for e in guard.session().feed(" ".join(words) + " ") if isinstance(e, Released))
    points = ReplyCheckPoints(min(guard.policy.reply_check.max_hold_tokens, guard.model.reply_window))
    assert len(released.split()) == (len(words) // points.gap) * points.gap > 0  # checked every `gap` tokens


def test_sentence_ends() -> None:
    assert ends_sentence(".") and ends_sentence("?") and ends_sentence("。") and ends_sentence("etc.")
    assert not ends_sentence("bread") and not ends_sentence("") and not ends_sentence(",")
    points = ReplyCheckPoints(48)
    assert not points.due_after(5, ".") and points.due_after(7, ".") and points.due_after(47, "bread")
    assert not points.due_before(7, "\n") and points.due_before(8, " \n ") and not points.due_before(30, " ")
    points.passed(8)
    assert not points.due_after(14, ".") and points.due_after(15, "!") and points.due_after(55, "x") and not points.due_after(54, "x")


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.sampled_from([*(w for w in SAFE_WORDS if w != "dan"), "day.", "bread,", "ok!", "\n"]), max_size=50),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12), coalesce=st.booleans())
def test_verdicts_and_released_text_do_not_depend_on_the_split(guard: Guard, coalescing: Guard, words: list[str], cuts: list[int],
                                                              coalesce: bool) -> None:
    text = " ".join(words)
    bounds = sorted({c % (len(text) + 1) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)])]
    released_whole, verdict_whole, _ = _run(guard, [text])
    released_split, verdict_split, _ = _run(coalescing if coalesce else guard, pieces)
    assert same_verdict(verdict_split, verdict_whole)
    assert released_split == released_whole
    assert released_whole == (text if not verdict_whole.blocked else text[: verdict_whole.char_offset])  # type: ignore[attr-defined]
    if verdict_whole.blocked:  # type: ignore[attr-defined]
        assert "tea" not in released_whole and verdict_whole.reason.startswith("reply check")  # type: ignore[attr-defined]
    else:
        assert "tea" not in text.split()


def test_async_streams_and_batched_guards_agree(bundles: dict[str, Path]) -> None:
    text = BENIGN + HARM + ". more."
    with Guard(bundles["checked"], batching=True, threads=1) as batched:
        assert "".join(batched.stream([text[:30], text[30:]])) == BENIGN + "\n" + batched.policy.on_block.message

        async def collect() -> str:
            return "".join([piece async for piece in batched.astream([text[:7], text[7:]])])

        assert asyncio.run(collect()) == BENIGN + "\n" + batched.policy.on_block.message


def test_the_manifest_offset_applies_to_replies_only(bundles: dict[str, Path]) -> None:
    guard = Guard(bundles["offset"], threads=1)
    assert guard.check_response(BENIGN + HARM + ".").action == "allow"  # -10 on the unsafe logit: 8 - 10 < 4
    assert guard.check_prompt("can you help with tea").action == "block"  # prompts keep the graph's calibration


def guard_of(bundles: dict[str, Path]):  # type: ignore[no-untyped-def]
    return Guard(bundles["checked"], threads=1).session()


def test_the_policy_turns_the_check_off_flags_or_sets_its_thresholds(bundles: dict[str, Path]) -> None:
    text = BENIGN + HARM + "."
    base = load_policy("default").model_dump()
    off = Guard(bundles["checked"], policy=policy_from_dict({**base, "reply_check": {"action": "allow"}}), threads=1)
    assert off.check_response(text).action == "allow"
    with off.session() as session:  # and nothing is held for it
        assert "".join(e.text for e in session.feed("first mix flour") if isinstance(e, Released)) == "first mix"
    with guard_of(bundles) as session:
        assert "".join(e.text for e in session.feed("first mix flour") if isinstance(e, Released)) == ""
    flag = Guard(bundles["checked"], policy=policy_from_dict({**base, "reply_check": {"action": "flag"}}), threads=1)
    released, verdict, events = _run(flag, [text])
    assert released == text and verdict.action == "flag" and any(isinstance(e, Flagged) for e in events)  # type: ignore[attr-defined]
    high = policy_from_dict({**base, "reply_check": {"thresholds": {"unsafe": 0.9999999, "controversial": 1.0}}})
    assert Guard(bundles["checked"], policy=high, threads=1).check_response(text).action == "allow"
    categories = policy_from_dict({**base, "categories": {"violent": {"action": "allow"}}})
    assert Guard(bundles["checked"], policy=categories, threads=1).check_response(text).action == "allow"


def test_monitor_mode_releases_everything_and_reports_the_would_be_block(bundles: dict[str, Path]) -> None:
    monitor = policy_from_dict({**load_policy("default").model_dump(), "enforcement": "monitor"})
    released, verdict, events = _run(Guard(bundles["checked"], policy=monitor, threads=1), [BENIGN + HARM + "."])
    assert released == BENIGN + HARM + "." and verdict.action == "flag"  # type: ignore[attr-defined]
    assert not any(isinstance(e, Blocked) for e in events)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_failing_check_follows_the_failure_mode(bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    policy = policy_from_dict({**load_policy("default").model_dump(), "failure_mode": mode})
    guard = Guard(bundles["checked"], policy=policy, threads=1)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("classifier down")

    monkeypatch.setattr(guard.model, "classify_reply", broken)
    released, verdict, _ = _run(guard, [BENIGN])
    if mode == "closed":
        assert released == "" and verdict.action == "block" and "classifier down" in verdict.reason  # type: ignore[attr-defined]
    else:
        assert released == BENIGN and verdict.action == "allow"  # type: ignore[attr-defined]


def test_a_bad_reply_check_entry_is_one_clear_error(bundles: dict[str, Path], tmp_path: Path) -> None:
    bundle = shutil.copytree(bundles["checked"], tmp_path / "bad")
    manifest = json.loads((bundle / "guardkit.json").read_text())
    manifest["prompt_model"]["reply_check"] = {"unsafe_logit_offset": 99.0}
    (bundle / "guardkit.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="prompt_model.reply_check.unsafe_logit_offset"):
        Guard(bundle)
    with pytest.raises(PolicyError, match="reply_check.max_hold_tokens"):
        policy_from_dict({"reply_check": {"max_hold_tokens": 0}})


def test_bench_prints_the_reply_checks_cost_side_by_side(bundles: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from guardkit.cli import main

    argv = ["bench", "--model", str(bundles["checked"]), "--tokens", "16", "--rounds", "1", "--lengths", "16", "--streams", "1"]
    assert main([*argv, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)["reply_check"]
    assert figures["checks"] >= figures["tokens"] // 48 + 4  # every sentence end of the sample reply
    assert figures["on"]["cpu_ms_per_token"] > 0 and figures["off"]["cpu_ms_per_token"] > 0
    assert main(argv) == 0
    assert "reply check on" in capsys.readouterr().out


def test_a_stream_block_withholds_the_sentence_no_check_has_passed(guard: Guard, bundles: dict[str, Path]) -> None:
    text = "sure here is a recipe for good bread. first mix flour and bomb detonator now."
    verdict = guard.check_response(text)
    assert verdict.blocked and verdict.char_offset == text.index("first")  # not "bomb": that sentence was never released
    assert Guard(bundles["prompt_only"], threads=1).check_response(text).char_offset == text.index("bomb")
    released, _, _ = _run(guard, [text[:30], text[30:]])
    assert released.rstrip() == "sure here is a recipe for good bread."


@pytest.fixture(scope="module")
def split_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prompts judged by a graph that reads "tea", replies by a graph of their own that reads "coffee"."""
    return build_tiny_bundle(tmp_path_factory.mktemp("reply-graph") / "split", prompt_classifier_words=WORDS,
                             reply_check_offset=0.0, reply_classifier_words={"coffee": "violent"})


def test_a_reply_graph_of_its_own_judges_replies_and_the_prompt_graph_prompts(split_bundle: Path) -> None:
    guard = Guard(split_bundle, threads=1)
    assert guard.check_response(BENIGN + HARM + ".").action == "allow"  # "tea" is the prompt graph's word only
    verdict = guard.check_response(BENIGN + "then add coffee to it.")
    assert (verdict.action, verdict.char_offset, verdict.category) == ("block", len(BENIGN), "violent")
    assert guard.check_prompt("can you help with tea").action == "block"
    assert guard.check_prompt("can you help with coffee").action == "allow"
    assert guard.model.reply_classifier is not guard.model.prompt_classifier  # type: ignore[attr-defined]
    released, streamed, _ = _run(guard, [BENIGN, "then add coffee", " to it. more bread."])
    assert "coffee" not in released and streamed.action == "block"  # type: ignore[attr-defined]


def test_the_reply_graph_is_hashed_and_named_like_every_bundle_file(split_bundle: Path, tmp_path: Path) -> None:
    tampered = shutil.copytree(split_bundle, tmp_path / "tampered")
    (tampered / "reply.onnx").write_bytes((tampered / "reply.onnx").read_bytes() + b"\0")
    with pytest.raises(ModelLoadError, match="reply.onnx"):
        Guard(tampered)
    for name, match in (("other.onnx", "files has no entry for 'other.onnx'"), ("../reply.onnx", "outside|not a plain|\\.\\.")):
        bundle = shutil.copytree(split_bundle, tmp_path / f"bad-{len(match)}")
        manifest = json.loads((bundle / "guardkit.json").read_text())
        manifest["prompt_model"]["reply_check"]["file"] = name
        if name.startswith(".."):
            manifest["files"][name] = manifest["files"]["reply.onnx"]
        (bundle / "guardkit.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelLoadError, match=match):
            Guard(bundle)
