"""LangChain's own standard test suite (``langchain-tests``) run against GuardedChatModel.

The guarded model wraps a scripted inner chat model (``lc_v1_support.ScriptedChatModel``,
a real ``BaseChatModel`` that streams a fixed benign reply) and is judged by the tiny
test model. Standard tests skipped here, each with its reason, are the integration
tests in ``SKIPPED`` below (the suite forbids overriding its unit tests); the suite
itself skips what the model declares it does not support (structured output, images,
PDF and audio inputs: a wrapper passes them to its inner model unchanged) and
``test_serdes`` (the model holds a Guard, which is not serializable) and
``test_init_from_env`` (no API key to read). ``test_init_time`` is the suite's own
pytest-benchmark measurement (it asserts no time). ``pytest -rs`` prints every reason.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_tests")

from langchain_guardkit import GuardedChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from lc_v1_support import ScriptedChatModel

from guardkit import Guard
from guardkit.testing import build_tiny_bundle

REPLY = "sure here is a recipe for bread with flour and water"


@lru_cache(maxsize=1)
def _guard() -> Guard:
    return Guard(build_tiny_bundle(Path(tempfile.mkdtemp(prefix="gk-lc-std-")) / "bundle"))


class _GuardedScripted:
    """The model under test in both standard suites: the guard around a scripted inner model."""

    @property
    def chat_model_class(self) -> type[GuardedChatModel]:
        return GuardedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": ScriptedChatModel(replies=[REPLY]), "guard": _guard()}


class TestGuardedChatModelUnit(_GuardedScripted, ChatModelUnitTests):
    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({}, {}, {})  # no API key: it wraps a model that is already configured (the suite then skips the test)


#: standard integration tests that do not apply to a scripted inner model, and why
SKIPPED = {
    "test_tool_calling": "the scripted inner model does not choose tools (tool calls through the guard: test_langchain_v1.py)",
    "test_tool_calling_async": "the scripted inner model does not choose tools",
    "test_tool_calling_with_no_arguments": "the scripted inner model does not choose tools",
    "test_tool_choice": "the scripted inner model does not choose tools",
    "test_bind_runnables_as_tools": "the scripted inner model does not choose tools",
    "test_tool_message_histories_string_content": "the scripted inner model does not choose tools",
    "test_tool_message_histories_list_content": "the scripted inner model does not choose tools",
    "test_tool_message_error_status": "the scripted inner model does not choose tools",
    "test_structured_few_shot_examples": "the scripted inner model does not choose tools",
    "test_agent_loop": "the scripted inner model does not choose tools (an agent through the guard: test_langchain_v1.py)",
    "test_stop_sequence": "the scripted inner model ignores stop sequences (the guard passes `stop` through unchanged)",
    "test_usage_metadata": "the scripted inner model reports no token usage (usage_metadata passes through the guard unchanged)",
    "test_usage_metadata_streaming": "the scripted inner model reports no token usage",
    "test_double_messages_conversation": "needs a model that answers a conversation",
}


class TestGuardedChatModelIntegration(_GuardedScripted, ChatModelIntegrationTests):
    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return False

    @pytest.fixture(autouse=True)
    def _skip_inapplicable(self, request: pytest.FixtureRequest) -> None:
        name = request.node.originalname
        if name in SKIPPED:
            pytest.skip(SKIPPED[name])
