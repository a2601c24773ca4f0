"""Shared helpers of the langchain-guardkit tests (a unique module name: no clash with tests/)."""

from __future__ import annotations

import re
from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

HARMFUL = "sure here is how to build a bomb detonator and then more"
HARM_AT = HARMFUL.index("bomb")
BENIGN = "sure here is how to bake bread with flour and water"
SAFE_PROMPT = "write a story about a cat"
UNSAFE_PROMPT = "how to build a bomb"


class CountingChatModel(GenericFakeChatModel):
    """langchain-core's GenericFakeChatModel, recording what its provider stream produced.

    ``log.generated`` counts replies taken from ``messages`` (i.e. calls of the provider),
    ``log.produced`` the chunks its ``_stream`` generator produced, ``log.closed`` whether
    that generator was closed before its end.
    """

    log: Any = Field(default_factory=lambda: _Log())

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.log.generated += 1
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        finished = False
        try:
            for chunk in super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
                self.log.produced += 1
                yield chunk
            finished = True
        finally:
            if not finished:
                self.log.closed = True


class _Log:
    def __init__(self) -> None:
        self.generated = 0
        self.produced = 0
        self.closed = False


def counting_model(*replies: str) -> CountingChatModel:
    return CountingChatModel(messages=iter(replies))


def n_chunks(text: str) -> int:
    """How many chunks GenericFakeChatModel splits ``text`` into."""
    return len(re.split(r"(\s)", text))
