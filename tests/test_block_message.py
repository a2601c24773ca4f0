"""The replacement message is separated from released text (a newline by default, set by the policy)."""

from __future__ import annotations

import asyncio

import pytest

from guardkit import Guard, PolicyError, StreamBlocked, load_policy
from guardkit.policy import Policy

HARMFUL = ["sure ", "here ", "is ", "how ", "to ", "build ", "a ", "bomb ", "detonator ", "now"]


def _policy(**on_block: object) -> Policy:
    base = load_policy("default")
    return base.model_copy(update={"on_block": base.on_block.model_copy(update=on_block)})


def test_message_is_not_glued_to_released_text(tiny_guard: Guard) -> None:
    out = list(tiny_guard.stream(iter(["sure here is how to build a", " bomb detonator now"])))
    message = tiny_guard.policy.on_block.message
    assert out[-1] == "\n" + message
    assert "".join(out).endswith("a \n" + message)
    assert tiny_guard.policy.on_block.separator == "\n"


def test_separator_is_configurable_and_can_be_turned_off(tiny_guard: Guard) -> None:
    spaced = Guard(tiny_guard.model, _policy(separator=" -- "))
    joined = "".join(spaced.stream(iter(HARMFUL)))
    assert joined.endswith("a  -- " + spaced.policy.on_block.message)
    glued = Guard(tiny_guard.model, _policy(separator=""))
    assert "".join(glued.stream(iter(HARMFUL))).endswith("a " + glued.policy.on_block.message)


def test_no_separator_without_released_text_or_when_raising(tiny_guard: Guard) -> None:
    assert list(tiny_guard.stream(iter(["bomb detonator"]))) == [tiny_guard.policy.on_block.message]
    assert list(tiny_guard.stream(iter(["hi"]), prompt="how to build a bomb")) == [tiny_guard.policy.prompt.message]
    stream = tiny_guard.stream(iter(HARMFUL), on_block="raise")
    received = []
    with pytest.raises(StreamBlocked) as info:
        for text in stream:
            received.append(text)
    assert "".join(received) == info.value.released_text and not received[-1].endswith("\n")


def test_async_path_separates_too(tiny_guard: Guard) -> None:
    async def collect() -> list[str]:
        return [t async for t in tiny_guard.astream(iter(HARMFUL))]

    out = asyncio.run(collect())
    assert out[-1] == "\n" + tiny_guard.policy.on_block.message
    assert not any(t.endswith("\n") for t in out[:-1])


def test_separator_in_a_policy_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\non_block:\n  separator: \"\\n\\n\"\n")
    assert load_policy(path).on_block.separator == "\n\n"
    path.write_text("extends: default\non_block:\n  separator: 3\n")
    with pytest.raises(PolicyError, match="on_block.separator"):
        load_policy(path)
