"""A scripted chat model for the LangChain v1 tests: a real ``BaseChatModel`` that streams scripted chunks.

Each call takes the next reply: a str (streamed word by word, as providers do)
or a list of ``AIMessageChunk`` (e.g. a tool call with its arguments in
pieces). It records every chunk its provider stream produced, so a test can
say what the raw upstream carried, and supports ``bind_tools`` (the tools are
recorded; the replies are scripted), as ``create_agent`` needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


def tool_call_reply(name: str, args: str, call_id: str = "call_1") -> list[AIMessageChunk]:
    """A reply that calls ``name`` with ``args`` streamed in word-sized pieces (as OpenAI streams them)."""
    pieces = words(args)
    first = AIMessageChunk(content="", tool_call_chunks=[{"name": name, "args": "", "id": call_id, "index": 0, "type": "tool_call_chunk"}])
    rest = [AIMessageChunk(content="", tool_call_chunks=[{"name": None, "args": p, "id": None, "index": 0, "type": "tool_call_chunk"}]) for p in pieces]
    return [first, *rest]


class ScriptedChatModel(BaseChatModel):
    """Streams scripted replies, one per call; ``produced`` holds every raw chunk it streamed."""

    replies: list[Any]
    calls: int = 0
    produced: list[AIMessageChunk] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        self.bound_tools = list(tools)
        return self

    def _chunks(self) -> list[AIMessageChunk]:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        if isinstance(reply, str):
            return [AIMessageChunk(content=w) for w in words(reply)]
        return [c.model_copy() for c in reply]

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks():
            self.produced.append(chunk)
            yield ChatGenerationChunk(message=chunk)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> ChatResult:
        total = None
        for chunk in self._stream(messages, stop):
            total = chunk if total is None else total + chunk
        assert total is not None
        return ChatResult(generations=[ChatGeneration(message=message_chunk_to_message(total.message))])


class WholeReplyChatModel(BaseChatModel):
    """A chat model that does not stream (only ``_generate``): LangChain's stream() yields one whole AIMessage."""

    reply: Any
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "whole-reply"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> ChatResult:
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=self.reply)])
