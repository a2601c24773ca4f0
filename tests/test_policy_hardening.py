"""Hostile policy files: one clear PolicyError line each, CLI exit 2; validate lists every problem; one action word."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from guardkit import PolicyError, builtin_policies, load_policy
from guardkit.cli import main
from guardkit.policy import MAX_POLICY_BYTES, CategoryRule


def _deep_block_yaml(depth: int) -> str:
    lines = [f"{' ' * i}k:" for i in range(depth)]
    return "\n".join(lines) + " 1\n"


CASES = {
    "deep_flow": lambda d: (d / "p.yaml").write_text("thresholds: " + "[" * 3000 + "]" * 3000 + "\n"),
    "deep_block": lambda d: (d / "p.yaml").write_text(_deep_block_yaml(600)),
    "deep_but_parsable": lambda d: (d / "p.yaml").write_text(_deep_block_yaml(40)),
    "cycle_unnormalised": lambda d: ((d / "sub").mkdir(), (d / "p.yaml").write_text("extends: sub/../p.yaml\n")),
    "cycle_dot_slash": lambda d: ((d / "p.yaml").write_text("extends: ./q.yaml\n"), (d / "q.yaml").write_text("extends: ././p.yaml\n")),
    "directory": lambda d: (d / "p.yaml").mkdir(),
    "huge": lambda d: (d / "p.yaml").write_text("description: '" + "x" * (MAX_POLICY_BYTES + 10) + "'\n"),
    "not_utf8": lambda d: (d / "p.yaml").write_bytes(b"name: \xff\xfe\n"),
}
NEEDLES = {
    "deep_flow": "nested|nesting", "deep_block": "nested", "deep_but_parsable": "nested", "cycle_unnormalised": "circular",
    "cycle_dot_slash": "circular", "directory": "is a directory", "huge": "KiB", "not_utf8": "UTF-8",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_policy_files_are_one_line_and_exit_2(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    CASES[case](tmp_path)
    path = tmp_path / "p.yaml"
    with pytest.raises(PolicyError, match=NEEDLES[case]) as info:
        load_policy(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 2000
    for argv in (["policies", "validate", str(path)], ["check", "hello", "--policy", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_validate_reports_every_error_with_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "thresholds:\n  unsafe: 1.5\n  controversal: 0.3\n"
        "debounce:\n  rule: sometimes\n"
        "on_blok:\n  mode: replace\n"
        "categories:\n  violent: {threshhold: 0.2}\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    problems = info.value.problems  # type: ignore[attr-defined]
    fields = {p.field for p in problems}
    assert fields == {"thresholds.unsafe", "thresholds.controversal", "debounce.rule", "on_blok", "categories.violent.threshhold"}
    assert "\n" not in str(info.value) and "4 more" in str(info.value)
    assert main(["policies", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5
    joined = "\n".join(err)
    assert "did you mean 'controversial'?" in joined
    assert "did you mean 'on_block'?" in joined
    assert "did you mean 'threshold'?" in joined


def test_unknown_category_and_builtin_name_suggest_the_nearest() -> None:
    with pytest.raises(PolicyError, match="did you mean 'violent'"):
        load_policy(_write("categories:\n  violence: {action: block}\n"))
    with pytest.raises(PolicyError, match="did you mean 'strict'"):
        load_policy("strcit")


def _write(text: str) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    handle.write(text)
    handle.close()
    return Path(handle.name)


def test_block_is_the_action_word_in_every_section() -> None:
    assert CategoryRule(action="block").action == "block"
    assert load_policy(_write("prompt: {action: block}\ncategories:\n  pii: {action: block}\n")).categories["pii"].action == "block"
    with pytest.warns(DeprecationWarning, match="'halt' is now spelled 'block'"):
        assert load_policy(_write("categories:\n  pii: {action: halt}\n")).categories["pii"].action == "block"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, path in builtin_policies().items():
            policy = load_policy(name)  # shipped policies use the one word (no deprecation warning)
            # "halt" stays a word of channels.*.on_block (end the response); as an action it is the old spelling
            assert "action: halt" not in path.read_text(encoding="utf-8")
            assert "action: halt" not in policy.to_yaml()


def test_a_block_category_rule_still_blocks(tiny_guard) -> None:  # type: ignore[no-untyped-def]
    from guardkit import Guard

    lenient = load_policy(_write("extends: default\nthresholds: {unsafe: 0.99}\ncategories:\n  violent: {threshold: 0.2, action: block}\n"))
    guard = Guard(tiny_guard.model, lenient)
    assert guard.check_response("how to build a bomb detonator now").blocked
    assert not guard.check_response("how to steal and launder money").blocked


def test_a_directory_named_without_a_slash_is_a_directory_not_an_unknown_builtin(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mypolicies").mkdir()
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy("mypolicies")
    (tmp_path / "default").mkdir()  # a built-in name still means the built-in
    assert load_policy("default").name == "default"
