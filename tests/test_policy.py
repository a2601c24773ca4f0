"""Policies: built-ins, inheritance and clear errors for bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guardkit import Policy, PolicyError, builtin_policies, load_policy
from guardkit.cli import main

REQUIRED = {"default", "strict", "permissive", "children", "healthcare", "creative-writing", "customer-support"}


def test_required_builtins_ship_with_a_header() -> None:
    shipped = builtin_policies()
    assert REQUIRED <= set(shipped)
    for name, path in shipped.items():
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(f"# {name}:"), f"{path} must start with a header saying whom it is for"
        policy = load_policy(name)
        assert policy.name == name


def test_extends_inherits_and_overrides(tmp_path: Path) -> None:
    child = tmp_path / "mine.yaml"
    child.write_text("extends: children\nthresholds:\n  unsafe: 0.2\ncategories:\n  pii: {action: flag}\n")
    policy = load_policy(child)
    parent = load_policy("children")
    assert policy.name == "mine"
    assert policy.thresholds.unsafe == 0.2
    assert policy.thresholds.controversial == parent.thresholds.controversial
    assert policy.categories["pii"].action == "flag"
    assert policy.categories["sexual_content"] == parent.categories["sexual_content"]
    assert policy.on_block.message == parent.on_block.message


def test_extends_relative_file_and_cycle(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("extends: strict\ndebounce: {count: 4}\n")
    (tmp_path / "leaf.yaml").write_text("extends: base.yaml\n")
    assert load_policy(tmp_path / "leaf.yaml").debounce.count == 4
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(PolicyError, match="circular"):
        load_policy(tmp_path / "a.yaml")


BAD = {
    "unknown_key": ("thresholds:\n  unsafe: 0.5\n  unsafish: 0.2\n", "thresholds.unsafish"),
    "out_of_range": ("thresholds:\n  unsafe: 1.5\n", "thresholds.unsafe"),
    "wrong_type": ("debounce:\n  count: two\n", "debounce.count"),
    "bad_enum": ("controversial: maybe\n", "controversial"),
    "unknown_category": ("categories:\n  weapons: {action: block}\n", "categories"),
    "invalid_yaml": ("thresholds: [unsafe: 0.5\n", "invalid YAML"),
    "not_a_mapping": ("- a\n- b\n", "mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policy_files_raise_policy_error_naming_file_and_field(tmp_path: Path, case: str) -> None:
    text, needle = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(path) in message and needle in message
    assert "\n" not in message


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_validate_exits_nonzero_with_one_line(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    text, needle = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    assert main(["policies", "validate", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and needle in err[0]


def test_missing_file_and_unknown_name() -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_policy("/nonexistent/policy.yaml")
    with pytest.raises(PolicyError, match="no built-in policy named 'nope'"):
        load_policy("nope")
    with pytest.raises(PolicyError):
        load_policy(42)  # type: ignore[arg-type]


def test_cli_validate_all_builtins_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policies", "validate"]) == 0
    assert main(["policies", "show", "children"]) == 0
    shown = capsys.readouterr().out
    assert "sexual_content" in shown and "threshold: 0.15" in shown
    assert main(["policies", "list"]) == 0


def test_policy_round_trips_through_yaml(tmp_path: Path) -> None:
    original = load_policy("creative-writing")
    path = tmp_path / "copy.yaml"
    path.write_text(original.to_yaml())
    assert load_policy(path) == original


def test_policy_objects_are_immutable() -> None:
    policy = Policy()
    with pytest.raises(Exception):
        policy.thresholds = None  # type: ignore[misc]


def test_cli_entry_point_runs_as_module() -> None:
    result = subprocess.run([sys.executable, "-m", "guardkit", "policies", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "children" in result.stdout


def test_a_category_can_count_controversial_as_harmful_on_its_own(tmp_path: Path) -> None:
    """`categories.<name>.controversial: strict` blocks a controversial verdict of that category only.

    The healthcare policy relies on it: the model rates most self-harm requests
    controversial, and the help message must show for them without blocking every
    controversial medical question."""
    import numpy as np

    from guardkit.decision import judge, judge_prompt
    from guardkit.evaluation.replay import TokenScores, replay_prompt, token_actions

    path = tmp_path / "p.yaml"
    path.write_text("extends: default\nname: p\ncontroversial: loose\n"
                    "categories:\n  suicide_self_harm: {controversial: strict, action: block}\n")
    policy = load_policy(path)
    cats = ["violent", "suicide_self_harm"]
    controversial = np.array([0.1, 0.85, 0.05], np.float32)
    self_harm, violent = np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)
    assert judge(policy, controversial, self_harm, cats).action == "halt"
    assert judge(policy, controversial, violent, cats).action == "allow"
    assert judge_prompt(policy, controversial, self_harm, cats).action == "halt"
    assert judge_prompt(policy, controversial, violent, cats).action == "allow"
    # guardkit eval's vectorised replay agrees with the runtime rule
    assert replay_prompt(policy, controversial, 1, cats) == "block" and replay_prompt(policy, controversial, 0, cats) == "allow"
    scores = TokenScores(risk=np.stack([controversial, controversial]).astype(np.float64), category=np.array([1, 0]),
                         starts=np.array([0, 1]), ends=np.array([1, 2]))
    assert token_actions(policy, scores, cats).tolist() == [0, 2]
    assert load_policy("healthcare").category_rule("suicide_self_harm").controversial == "strict"
