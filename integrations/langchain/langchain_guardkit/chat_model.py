"""GuardedChatModel: a LangChain chat model that wraps another and shows only judged text.

Every LangChain path that reads a chat model (``invoke``, ``stream``,
``astream``, ``batch``, ``astream_events``, LangGraph's ``stream_mode="messages"``,
``langchain.agents.create_agent``) goes through the model's own ``_stream`` /
``_astream``, so wrapping the model is the one place where guarding covers them
all. The inner model runs with a callback manager of its own (no handler of the
outer run is inherited), so its raw tokens never reach the outer run's
``on_llm_new_token`` consumers: they see only the chunks this model yields,
which carry released text only.

The chunks are the inner model's own ``AIMessageChunk`` objects (ids,
``response_metadata``, ``usage_metadata`` kept) rebuilt around the released
text, under the same driver as the provider adapters
(:mod:`guardkit.adapters`), with the Guard's policy ``channels`` section:

- ``content`` (a str, or the ``text`` / ``thinking`` / ``reasoning`` /
  ``partial_json`` / ``args`` fields of content blocks, and the ``summary``
  entries of OpenAI reasoning blocks), ``additional_kwargs["reasoning_content"]``
  and ``additional_kwargs["refusal"]`` are judged per channel; a content block's
  tool arguments given as an object (``args`` / ``input`` of a whole tool call)
  are emptied, the call reaching the consumer through ``tool_call_chunks``;
  other blocks (images, citations ...) pass unchanged;
- an inner model that does not stream (LangChain then yields one whole
  ``AIMessage``) is judged the same way, as one chunk;
- tool calls (``tool_call_chunks``) are judged as ``tool_arguments`` and held
  back until their arguments are judged whole: a tool call is emitted once,
  complete, at the end of the message (never a truncated call an agent could
  run); the provider's raw copies in ``additional_kwargs["tool_calls"]`` /
  ``["function_call"]`` are not passed on;
- a block is its own chunk (never text glued to released text): an
  ``AIMessageChunk`` whose content is the policy's message (after the policy's
  separator when text was already shown) and whose
  ``response_metadata["guardkit"]`` is a list of :meth:`GuardBlock.to_dict`
  entries (a list, so aggregated messages keep every block).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManager, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from pydantic import ConfigDict, Field, field_validator

from guardkit import Guard
from guardkit.adapters import AsyncShapedStream, GuardBlock, Read, ShapedStream, Shaper
from guardkit.adapters._driver import Key
from langchain_guardkit._messages import last_human_text

__all__ = ["GuardedChatModel", "MessageChunkShaper", "as_chunk"]

#: content-block fields that carry generated text, and their channel kind
_BLOCK_TEXT = {"text": "answer", "thinking": "reasoning", "reasoning": "reasoning", "partial_json": "tool_arguments", "args": "tool_arguments"}
#: content-block fields holding a whole tool call's arguments as an object: emptied (the call's
#: arguments reach the consumer through ``tool_call_chunks``, judged and held there)
_BLOCK_OBJECTS = ("args", "input")
#: raw provider copies of tool calls (their text is in ``tool_call_chunks``, judged there)
_RAW_TOOL_KWARGS = ("tool_calls", "function_call")
#: text an ``additional_kwargs`` key carries, and its channel kind
_KWARGS_TEXT = {"reasoning_content": "reasoning", "refusal": "refusal"}


def _block_texts(pos: int, block: Any) -> list[tuple[Key, str]]:
    """The generated text in one content block: its text fields, and reasoning ``summary`` entries (OpenAI Responses)."""
    if isinstance(block, str):
        return [(("block", pos, None), block)] if block else []
    if not isinstance(block, dict):
        return []
    index = block.get("index", pos)
    texts: list[tuple[Key, str]] = []
    for field in _BLOCK_TEXT:
        text = block.get(field)
        if isinstance(text, str) and text:
            texts.append((("block", index, field), text))
    for j, entry in enumerate(block.get("summary") or [] if isinstance(block.get("summary"), list) else []):
        text = entry.get("text") if isinstance(entry, dict) else None
        if isinstance(text, str) and text:
            texts.append((("block", index, "summary", j), text))
    return texts


def _block_with(pos: int, block: Any, released: dict[Key, str]) -> Any:
    """``block`` with each text field replaced by its released text (objects holding tool arguments emptied)."""
    if isinstance(block, str):
        return released.get(("block", pos, None), "")
    if not isinstance(block, dict):
        return block
    index = block.get("index", pos)
    block = dict(block)
    for field in _BLOCK_TEXT:
        if isinstance(block.get(field), str) and block[field]:
            block[field] = released.get(("block", index, field), "")
    for field in _BLOCK_OBJECTS:
        if isinstance(block.get(field), dict) and block[field]:
            block[field] = {}
    if isinstance(block.get("summary"), list):
        block["summary"] = [
            {**entry, "text": released.get(("block", index, "summary", j), "")} if isinstance(entry, dict) and isinstance(entry.get("text"), str) else entry
            for j, entry in enumerate(block["summary"])
        ]
    return block


def as_chunk(value: Any) -> BaseMessageChunk:
    """An inner model's output as a message chunk (a model that does not stream yields one whole ``AIMessage``)."""
    if isinstance(value, BaseMessageChunk):
        return value
    if isinstance(value, AIMessage):
        calls = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c.get("id"), "index": i, "type": "tool_call_chunk"}
            for i, c in enumerate(value.tool_calls)
        ]
        return AIMessageChunk(
            content=value.content, id=value.id, name=value.name, additional_kwargs=value.additional_kwargs,
            response_metadata=value.response_metadata, usage_metadata=value.usage_metadata, tool_call_chunks=calls,
        )
    raise TypeError(f"the inner model must produce AI messages or message chunks, got {type(value).__name__}")


def _isolated() -> RunnableConfig:
    """A config for the inner model: a callback manager of its own, with no handler of the outer run.

    A manager object, not ``[]``: an empty list reads as "not given" to LangGraph's
    config merging, which would then inherit the caller's handlers.
    """
    return {"callbacks": CallbackManager(handlers=[]), "tags": ["guardkit:inner"], "run_name": "guardkit_inner_model"}


class MessageChunkShaper(Shaper[BaseMessageChunk]):
    """LangChain message chunks: a channel per text field; tool calls held until judged whole; a block halts the message."""

    primary: Key = ("content",)
    peek_on_prompt_block = False  # a refused prompt never starts the inner model

    def __init__(self, separator: str = "\n") -> None:
        self._id: str | None = None
        self._tools: dict[Any, dict[str, Any]] = {}  # tool-call index -> id, name (from its first chunk)
        self._tool_text: dict[Any, str] = {}  # released argument text, held until the call is judged whole
        self._tool_done: set[Any] = set()
        self._blocked = False
        self._shown = False
        self._separator = separator

    # -- Shaper ------------------------------------------------------------------
    def read(self, chunk: BaseMessageChunk) -> Read:
        if not isinstance(chunk, BaseMessageChunk):
            raise TypeError(f"the inner model must stream message chunks, got {type(chunk).__name__}")
        if self._id is None:
            self._id = chunk.id
        read = Read()
        content = chunk.content
        if isinstance(content, str):
            if content:
                read.texts.append((("content",), content))
        else:
            for pos, block in enumerate(content):
                read.texts += _block_texts(pos, block)
        for name in _KWARGS_TEXT:
            text = chunk.additional_kwargs.get(name)
            if isinstance(text, str) and text:
                read.texts.append(((name,), text))
        for pos, call in enumerate(getattr(chunk, "tool_call_chunks", None) or []):
            index = call.get("index", pos) if call.get("index") is not None else pos
            meta = self._tools.setdefault(index, {"id": None, "name": None})
            for name in ("id", "name"):
                if call.get(name):
                    meta[name] = call[name]
            if call.get("args"):
                read.texts.append((("tool", index), call["args"]))
        return read

    def channel(self, key: Key) -> str:
        kind = key[0]  # type: ignore[index]
        if kind == "content":
            return "answer"
        if kind in _KWARGS_TEXT:
            return _KWARGS_TEXT[kind]  # type: ignore[index]
        if kind == "tool":
            return "tool_arguments"
        if len(key) == 4:  # type: ignore[arg-type]  # a reasoning summary entry
            return "reasoning"
        return _BLOCK_TEXT.get(key[2], "answer") if key[2] is not None else "answer"  # type: ignore[index]

    def rebuild(self, chunk: BaseMessageChunk | None, released: dict[Key, str], finished: set[Key]) -> list[BaseMessageChunk]:
        self._shown = self._shown or any(text for key, text in released.items() if key[0] != "tool")  # type: ignore[index]
        for key, text in released.items():
            if key[0] == "tool":  # type: ignore[index]
                self._tool_text[key[1]] = self._tool_text.get(key[1], "") + text  # type: ignore[index]
        done = [key[1] for key in finished if key[0] == "tool"]  # type: ignore[index]
        calls = [self._tool_call(index) for index in sorted(done, key=str) if index not in self._tool_done]
        self._tool_done.update(done)
        if chunk is None:  # the upstream ended: text released at its end, the tool calls judged whole
            rest = {k: v for k, v in released.items() if k[0] != "tool" and v}  # type: ignore[index]
            if not rest and not calls:
                return []
            content, kwargs = self._content_for(rest)
            return [self._new(content, additional_kwargs=kwargs, tool_call_chunks=calls, chunk_position="last")]
        if self._blocked:
            return []
        content: Any
        if isinstance(chunk.content, str):
            content = released.get(("content",), "")
        else:
            content = [_block_with(pos, block, released) for pos, block in enumerate(chunk.content)]
        kwargs = {k: v for k, v in chunk.additional_kwargs.items() if k not in _RAW_TOOL_KWARGS}
        for name in _KWARGS_TEXT:
            if isinstance(kwargs.get(name), str):
                kwargs[name] = released.get((name,), "")
        if content == "" and not calls and not kwargs and not chunk.response_metadata and not getattr(chunk, "usage_metadata", None):
            return []  # its text is held back for judging and it carries nothing else: no empty chunk
        return [self._copy(chunk, content=content, additional_kwargs=kwargs, tool_call_chunks=calls)]

    def block(self, signal: GuardBlock, like: BaseMessageChunk | None) -> list[BaseMessageChunk]:
        info = {"guardkit": [signal.to_dict()]}
        if signal.channel_only:
            if signal.key is not None and signal.key[0] == "tool":  # type: ignore[index]
                self._tool_done.add(signal.key[1])  # type: ignore[index]  # the held call is never emitted
            return [self._new("", response_metadata=info)]
        self._blocked = True
        text = (self._separator if self._shown and signal.channel != "prompt" else "") + signal.message
        return [self._new(text, response_metadata=info, chunk_position="last")]

    def halted(self) -> bool:
        return self._blocked

    # -- building chunks ------------------------------------------------------------
    def _tool_call(self, index: Any) -> dict[str, Any]:
        meta = self._tools.get(index, {})
        return {"name": meta.get("name"), "args": self._tool_text.get(index, ""), "id": meta.get("id"), "index": index, "type": "tool_call_chunk"}

    def _content_for(self, released: dict[Key, str]) -> tuple[Any, dict[str, Any]]:
        """Content (and ``additional_kwargs``) for text released at the end of the stream."""
        kwargs = {key[0]: text for key, text in released.items() if key[0] in _KWARGS_TEXT}  # type: ignore[index]
        if {key for key in released if key[0] not in _KWARGS_TEXT} <= {("content",)}:  # type: ignore[index]
            return released.get(("content",), ""), kwargs
        blocks: list[Any] = []
        for key, text in released.items():
            if key == ("content",):
                blocks.append({"type": "text", "text": text})
            elif key[0] == "block" and len(key) == 4:  # type: ignore[index,arg-type]
                blocks.append({"type": "reasoning", "summary": [{"type": "summary_text", "text": text, "index": key[3]}], "index": key[1]})  # type: ignore[index]
            elif key[0] == "block":  # type: ignore[index]
                field = key[2] or "text"  # type: ignore[index]
                kind = {"partial_json": "input_json_delta", "args": "tool_call_chunk"}.get(field, field)
                blocks.append({"type": kind, field: text, "index": key[1]})  # type: ignore[index]
        return blocks, kwargs

    def _new(self, content: Any, **fields: Any) -> AIMessageChunk:
        if "chunk_position" in fields and "chunk_position" not in AIMessageChunk.model_fields:  # pragma: no cover
            fields.pop("chunk_position")
        return AIMessageChunk(content=content, id=self._id, **fields)

    @staticmethod
    def _copy(chunk: BaseMessageChunk, **changes: Any) -> BaseMessageChunk:
        """``chunk`` with ``changes``, built anew so derived fields (``tool_calls``) follow the new tool-call chunks."""
        if not isinstance(chunk, AIMessageChunk):
            return chunk.model_copy(update={k: v for k, v in changes.items() if k in type(chunk).model_fields})
        fields = {name: getattr(chunk, name) for name in type(chunk).model_fields if name not in ("tool_calls", "invalid_tool_calls", "type")}
        fields.update(changes)
        fields.pop("chunk_position", None)  # this stream ends with its own last chunk
        return AIMessageChunk(**fields)


class GuardedChatModel(BaseChatModel):
    """A chat model that runs ``model`` and shows only what ``guard`` released.

    Args:
        model: the chat model to guard (any Runnable that streams message
            chunks: a ``BaseChatModel``, or one with tools bound).
        guard: the :class:`guardkit.Guard` (model + policy) to apply.
        on_block: ``"replace"`` (a block chunk carrying the policy's message) or
            ``"raise"`` (:class:`guardkit.StreamBlocked` after the released text);
            default: the policy's ``on_block.mode``.
        channels: overrides of the policy's ``channels`` section (see
            :data:`guardkit.adapters.ChannelRules`).
        check_prompt: check the last human message with the policy's prompt
            check before calling ``model`` (a refused prompt never calls it).

    ``bind_tools`` / ``bind`` return a guarded model around the bound inner
    model, so ``create_agent(model=GuardedChatModel(...), tools=[...])`` works.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Runnable[Any, Any]
    guard: Guard = Field(exclude=True)
    on_block: Literal["replace", "raise"] | None = None
    channels: dict[str, Any] | None = None
    check_prompt: bool = True

    @field_validator("model", mode="before")
    @classmethod
    def _a_runnable(cls, value: Any) -> Any:
        if not isinstance(value, Runnable):
            raise TypeError(f"model must be a LangChain chat model (a Runnable), got {type(value).__name__}")
        return value

    @field_validator("guard", mode="before")
    @classmethod
    def _a_guard(cls, value: Any) -> Any:
        if not isinstance(value, Guard):
            raise TypeError(f"guard must be a guardkit.Guard, got {type(value).__name__}")
        return value

    @property
    def _llm_type(self) -> str:
        return "guardkit-guarded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        inner = getattr(self.model, "_identifying_params", None)
        return {"guard_policy": self.guard.policy.name, "inner": inner if isinstance(inner, dict) else repr(self.model)}

    # -- binding -------------------------------------------------------------------
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:  # type: ignore[override]
        """A guarded model around the inner model with ``tools`` bound (as a ``RunnableBinding``, like every chat model's)."""
        bind_tools = getattr(self.model, "bind_tools", None)
        if not callable(bind_tools):
            raise NotImplementedError(f"the inner model {type(self.model).__name__} does not support bind_tools")
        return RunnableBinding(bound=self.model_copy(update={"model": bind_tools(tools, **kwargs)}), kwargs={})

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        inner = _chat_model(self.model)
        params = inner._get_ls_params(stop=stop, **kwargs) if inner is not None else LangSmithParams(ls_model_type="chat")
        params.setdefault("ls_provider", "guardkit")
        params.setdefault("ls_model_name", inner.get_name() if inner is not None else self.model.get_name())
        return params

    # -- the guard's view of a call --------------------------------------------------
    def _guard_for_call(self) -> Guard:
        if self.check_prompt:
            return self.guard
        policy = self.guard.policy
        if policy.prompt.action == "allow":
            return self.guard
        return self.guard.with_policy(policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"action": "allow"})}))

    def _inner_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "stop": stop} if stop is not None else dict(kwargs)

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        inner_kwargs = self._inner_kwargs(stop, kwargs)

        def upstream() -> Iterator[BaseMessageChunk]:  # started only once the prompt has passed
            for item in self.model.stream(messages, _isolated(), **inner_kwargs):
                yield as_chunk(item)

        guard = self._guard_for_call()
        shaper = MessageChunkShaper(self.guard.policy.on_block.separator)
        with ShapedStream(guard, upstream(), shaper, prompt=last_human_text(messages), on_block=self.on_block, channels=self.channels) as guarded:
            for chunk in guarded:
                yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        inner_kwargs = self._inner_kwargs(stop, kwargs)

        async def upstream() -> AsyncIterator[BaseMessageChunk]:
            inner = self.model.astream(messages, _isolated(), **inner_kwargs)
            try:
                async for item in inner:
                    yield as_chunk(item)
            finally:  # a block stops the inner model's stream at once (``async for`` alone would leave it open)
                await inner.aclose()  # type: ignore[attr-defined]

        guard = self._guard_for_call()
        shaper = MessageChunkShaper(self.guard.policy.on_block.separator)
        guarded = AsyncShapedStream(guard, upstream(), shaper, prompt=last_human_text(messages), on_block=self.on_block, channels=self.channels)
        async with guarded:
            async for chunk in guarded:
                yield ChatGenerationChunk(message=chunk)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> ChatResult:
        return _result(list(self._stream(messages, stop, None, **kwargs)))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> ChatResult:
        return _result([chunk async for chunk in self._astream(messages, stop, None, **kwargs)])


def _chat_model(runnable: Any) -> BaseChatModel | None:
    """The chat model inside ``runnable`` (itself, or the ``bound`` of a binding), if any."""
    while isinstance(runnable, RunnableBinding):
        runnable = runnable.bound
    return runnable if isinstance(runnable, BaseChatModel) else None


def _result(chunks: list[ChatGenerationChunk]) -> ChatResult:
    if not chunks:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    ai = message_chunk_to_message(total.message)
    return ChatResult(generations=[ChatGeneration(message=ai)])

