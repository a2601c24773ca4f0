"""A bundle's prompt classifier (manifest ``prompt_model``): it, not the stream head, judges prompts."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardkit import Guard
from guardkit.errors import ModelLoadError
from guardkit.kvwindow import prompt_windows
from guardkit.model import StreamModel
from guardkit.policy import load_policy
from guardkit.testing import SAFE_WORDS, build_tiny_bundle

pytest.importorskip("onnx", reason="building the tiny test bundle needs the onnx package (the test extra)")

CLASSIFIER_WORDS = {"tea": "violent"}  # unsafe to the classifier only; "bomb" is unsafe to the stream head only


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("prompt-model")
    with_classifier = build_tiny_bundle(root / "with", prompt_classifier_words=CLASSIFIER_WORDS, prompt_classifier_max_tokens=16)
    without = build_tiny_bundle(root / "without")
    return with_classifier, without


def _copy(bundle: Path, dst: Path) -> Path:
    shutil.copytree(bundle, dst)
    return dst


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "guardkit.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def test_the_classifier_gives_the_prompt_verdict(bundles: tuple[Path, Path]) -> None:
    with_classifier, without = bundles
    guard, plain = Guard(with_classifier), Guard(without)
    assert plain.check_prompt("can you help with tea").action == "allow"
    verdict = guard.check_prompt("can you help with tea")
    assert (verdict.action, verdict.category, verdict.source) == ("block", "violent", "prompt")
    # the stream model's prompt head no longer decides: its unsafe word passes the classifier
    assert plain.check_prompt("how to build a bomb").action == "block"
    assert guard.check_prompt("how to build a bomb").action == "allow"
    assert asyncio.run(guard.acheck_prompt("can you help with tea")).action == "block"


def test_batched_and_streamed_prompts_use_the_classifier(bundles: tuple[Path, Path]) -> None:
    with_classifier, _ = bundles
    with Guard(with_classifier, batching=True) as guard:
        assert guard.check_prompt("tea please").action == "block"
        stream = guard.stream(["sure, here is the recipe"], prompt="tea please", on_block="replace")
        assert "".join(stream) == guard.policy.prompt.message
        assert "".join(guard.stream(["sure, here is the recipe"], prompt="bake bread please")) == "sure, here is the recipe"


def test_a_refused_prompt_costs_no_stream_model_call(bundles: tuple[Path, Path]) -> None:
    guard = Guard(bundles[0])
    with guard.session("tea please") as session:
        session.start()
        assert session.blocked
        assert session.model_calls == 0


def test_response_verdicts_do_not_change(bundles: tuple[Path, Path]) -> None:
    with_classifier, without = bundles
    response = "sure here is how to build a bomb detonator now"
    a = Guard(with_classifier).check_response(response, prompt="how do i bake bread")
    b = Guard(without).check_response(response, prompt="how do i bake bread")
    assert (a.action, a.char_offset, a.category) == (b.action, b.char_offset, b.category) == ("block", response.index("bomb"), "violent")


@settings(max_examples=40, deadline=None)
@given(words=st.lists(st.sampled_from([w for w in SAFE_WORDS if w not in CLASSIFIER_WORDS]), min_size=0, max_size=60),
       where=st.floats(0, 1))
def test_long_prompts_are_judged_whole(bundles: tuple[Path, Path], words: list[str], where: float) -> None:
    """A prompt longer than the classifier's max_tokens is cut into windows: an unsafe word anywhere is caught."""
    guard = Guard(bundles[0])
    assert guard.check_prompt(" ".join(words)).action == "allow"
    at = round(where * len(words))
    assert guard.check_prompt(" ".join(words[:at] + ["tea"] + words[at:])).action == "block"


def test_classifier_windows_overlap_and_keep_the_template(bundles: tuple[Path, Path]) -> None:
    model = StreamModel(bundles[0])
    head, tail = model.template_head_tail()
    rendered = model.prompt_token_ids(" ".join(["bread"] * 50))
    pieces = model.prompt_classifier.windows(rendered, head, tail)  # type: ignore[union-attr]
    assert len(pieces) > 1
    assert all(len(p) <= 16 and p[: len(head)] == head and p[len(p) - len(tail):] == tail for p in pieces)


def test_long_prompt_windows_end_with_the_template_tail(tmp_path: Path) -> None:
    """The stream model's prompt windows keep the template's [SEP] (its prompt head is read there)."""
    model = StreamModel(build_tiny_bundle(tmp_path / "b", max_positions=32))
    head, tail = model.template_head_tail()
    assert tail and head
    plan = prompt_windows(model, " ".join(["bread"] * 80), reserved=0)
    assert len(plan.windows) > 1
    assert all(list(w[: len(head)]) == head and list(w[len(w) - len(tail):]) == tail for w in plan.windows)


@pytest.mark.parametrize("failure_mode, action", [("closed", "block"), ("open", "allow")])
def test_a_failing_classifier_follows_the_failure_mode(bundles: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                                       failure_mode: str, action: str) -> None:
    policy = load_policy("default").model_copy(update={"failure_mode": failure_mode})
    guard = Guard(bundles[0], policy=policy)

    def broken(windows: object) -> object:
        raise RuntimeError("onnxruntime: out of memory")

    monkeypatch.setattr(guard.model, "classify_prompt", broken)
    assert guard.check_prompt("bake bread").action == action


def test_monitor_mode_flags_and_streams_on(bundles: tuple[Path, Path]) -> None:
    policy = load_policy("default").model_copy(update={"enforcement": "monitor"})
    guard = Guard(bundles[0], policy=policy)
    assert "".join(guard.stream(["sure, here is the recipe"], prompt="tea please")) == "sure, here is the recipe"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: _edit_manifest(b, prompt_model={"file": "missing.onnx", "max_tokens": 16, "risk_labels": ["safe", "unsafe", "controversial"],
                                                   "categories": ["violent"]}), "missing.onnx"),
        (lambda b: _edit_manifest(b, prompt_model={"file": "../prompt.onnx", "max_tokens": 16, "risk_labels": ["safe", "unsafe", "controversial"],
                                                   "categories": ["violent"]},
                                  files={**json.loads((b / "guardkit.json").read_text())["files"],
                                         "../prompt.onnx": {"sha256": "0" * 64, "bytes": 1}}), "normalised relative path"),
        (lambda b: _edit_manifest(b, prompt_model={"file": "prompt.onnx", "max_tokens": 16, "risk_labels": ["safe", "unsafe", "bad"],
                                                   "categories": ["violent"]}), "prompt_model.risk_labels"),
        (lambda b: (b / "prompt.onnx").write_bytes((b / "prompt.onnx").read_bytes()[:-1] + b"\x00"), "sha256"),
    ],
    ids=["unlisted-file", "escapes-the-bundle", "bad-labels", "tampered"],
)
def test_a_bad_prompt_model_entry_is_one_clear_error(bundles: tuple[Path, Path], tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    bundle = _copy(bundles[0], tmp_path / "b")
    mutate(bundle)
    with pytest.raises(ModelLoadError, match=message):
        StreamModel(bundle)


def test_a_classifier_without_the_contract_outputs_is_refused(bundles: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = _copy(bundles[0], tmp_path / "b")
    shutil.copy(bundle / "model.onnx", bundle / "prompt.onnx")  # a valid graph, but not a prompt classifier
    manifest = json.loads((bundle / "guardkit.json").read_text())
    from guardkit.manifest import file_entry

    manifest["files"]["prompt.onnx"] = file_entry(bundle / "prompt.onnx")
    (bundle / "guardkit.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="does not follow the contract"):
        StreamModel(bundle)


def test_check_prompt_with_a_classifier_never_runs_the_stream_model(bundles: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt check has no response to give context to: the classifier alone answers it."""
    for bundle, expect_calls in ((bundles[0], False), (bundles[1], True)):
        guard = Guard(bundle)
        calls: list[int] = []
        step = guard.model.step

        def counting(*args: object, _step=step, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
            calls.append(1)
            return _step(*args, **kwargs)

        monkeypatch.setattr(guard.model, "step", counting)
        assert guard.check_prompt("bake bread please").action == "allow"
        assert asyncio.run(guard.acheck_prompt("bake bread please")).action == "allow"
        assert bool(calls) is expect_calls
    # the response path still reads the prompt as context
    assert "".join(Guard(bundles[0]).stream(["sure, here is the recipe"], prompt="bake bread please")) == "sure, here is the recipe"


def test_a_prompt_that_is_only_context_is_not_classified(bundles: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """check_response and policies that allow every prompt never pay for the classifier."""
    guard = Guard(bundles[0])
    calls: list[int] = []
    classify = guard.model.classify_prompt
    monkeypatch.setattr(guard.model, "classify_prompt", lambda windows: calls.append(1) or classify(windows))
    verdict = guard.check_response("sure here is how to build a bomb detonator now", prompt="tea please")
    assert verdict.action == "block" and verdict.source == "response"
    allow_all = guard.with_policy(load_policy("default").model_copy(update={"prompt": load_policy("default").prompt.model_copy(update={"action": "allow"})}))
    assert "".join(allow_all.stream(["sure, here is the recipe"], prompt="tea please")) == "sure, here is the recipe"
    assert calls == []
    assert guard.check_prompt("tea please").action == "block" and calls == [1]
