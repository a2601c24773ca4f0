"""GuardkitRunnable: put guardkit between any LangChain Runnable and its consumer.

Unlike the callback handlers, the Runnable owns the stream: it pulls the
upstream chunks itself, hands out only text the guard has released, and closes
the upstream as soon as the guard blocks. It therefore works with every
provider, including ones that yield before calling back.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, BaseCallbackHandler, CallbackManager, CallbackManagerForChainRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk, message_chunk_to_message
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config, var_child_runnable_config

from guardkit import AsyncGuardedStream, Guard, GuardedStream
from guardkit.streams import OnBlockMode
from guardkit.verdict import Verdict
from langchain_guardkit._messages import ModelRunsOnly, content_text, extract_prompt

__all__ = ["GuardedAgentRunnable", "GuardkitRunnable", "OutputKind", "guard_runnable"]

OutputKind = Literal["auto", "message", "str"]
PromptFrom = Callable[[Any], "str | None"]

# metadata fields a partial piece of a chunk must not repeat (the completing piece carries them)
_METADATA_EMPTY: dict[str, Any] = {
    "additional_kwargs": {},
    "response_metadata": {},
    "tool_call_chunks": [],
    "tool_calls": [],
    "invalid_tool_calls": [],
    "usage_metadata": None,
    "chunk_position": None,
}


def _as_chunk(value: Any) -> Any:
    """Upstream output as something that aggregates with ``+``: str or a message chunk."""
    if isinstance(value, (str, BaseMessageChunk)):
        return value
    if isinstance(value, AIMessage):
        return AIMessageChunk(
            content=value.content, id=value.id, name=value.name, additional_kwargs=value.additional_kwargs,
            response_metadata=value.response_metadata, usage_metadata=value.usage_metadata,
            tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c.get("id"), "index": i, "type": "tool_call_chunk"}
                for i, c in enumerate(value.tool_calls)
            ],
        )
    if isinstance(value, BaseMessage):
        try:
            from langchain_core.messages.utils import _msg_to_chunk
        except ImportError:  # pragma: no cover - a langchain-core without it
            return AIMessageChunk(content=value.content, id=value.id)
        return _msg_to_chunk(value)
    raise TypeError(
        f"GuardkitRunnable guards runnables that produce messages or strings; got {type(value).__name__}. "
        "Put the guard before parsers that produce other types."
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else content_text(value.content)


@dataclass
class _Pending:
    chunk: Any
    text: str
    start: int


class _Shaper:
    """Maps released text back onto the upstream chunks it came from.

    A chunk whose text is wholly released is passed on unchanged (same object,
    all its metadata). A chunk released only in part (the guard still holds its
    tail) is split: the first piece carries the text and the message id, the
    completing piece the rest of the text and all the chunk's metadata, so
    aggregating the output never duplicates metadata. Text after a block's onset
    is never emitted, and neither are the chunks that carried it.
    """

    def __init__(self, kind: Literal["message", "str"] | None) -> None:
        self.kind = kind
        self.pending: deque[_Pending] = deque()
        self.total = 0  # chars of upstream text seen
        self.cursor = 0  # chars of released text emitted
        self.id: str | None = None

    def text_of(self, value: Any) -> str:
        chunk = _as_chunk(value)
        if self.kind is None:
            self.kind = "str" if isinstance(chunk, str) else "message"
        if isinstance(chunk, BaseMessage) and self.id is None:
            self.id = chunk.id
        text = _text(chunk)
        self.pending.append(_Pending(chunk, text, self.total))
        self.total += len(text)
        return text

    def release(self, text: str) -> list[Any]:
        return self._advance(self.cursor + len(text))

    def flush(self) -> list[Any]:
        """End of an unblocked stream: everything left (trailing metadata-only chunks)."""
        return self._advance(self.total)

    def _advance(self, frontier: int) -> list[Any]:
        out: list[Any] = []
        while self.pending:
            item = self.pending[0]
            end = item.start + len(item.text)
            done = self.cursor - item.start if self.cursor > item.start else 0
            if end <= frontier:
                out.append(item.chunk if done == 0 else self._piece(item.chunk, item.text[done:], metadata=True))
                self.pending.popleft()
            elif item.start < frontier:
                out.append(self._piece(item.chunk, item.text[done : frontier - item.start], metadata=False))
                break
            else:
                break
        self.cursor = max(self.cursor, frontier)
        return out

    @staticmethod
    def _piece(chunk: Any, text: str, *, metadata: bool) -> Any:
        if isinstance(chunk, str):
            return text
        update: dict[str, Any] = {"content": text}
        if not metadata:
            update.update({k: v for k, v in _METADATA_EMPTY.items() if k in type(chunk).model_fields})
        return chunk.model_copy(update=update)

    def replacement(self, message: str, verdict: Verdict) -> Any:
        if self.kind == "str":
            return message
        extra: dict[str, Any] = {"chunk_position": "last"} if "chunk_position" in AIMessageChunk.model_fields else {}
        return AIMessageChunk(content=message, id=self.id, response_metadata={"guardkit": verdict.to_dict()}, **extra)


class _UpstreamStopped(GeneratorExit):
    """Raised inside the upstream's model runs once the guard has stopped reading them.

    A ``GeneratorExit`` so that every generator it passes through treats it as
    being closed (no "exception ignored" noise, no error callbacks turned into
    user-facing errors).
    """


class _UpstreamStopper(ModelRunsOnly, BaseCallbackHandler):
    """Stops the model runs inside ``bound`` once the guard is done with them.

    Closing ``bound``'s stream is not always enough: when ``bound`` is a chain,
    LangChain's streaming machinery, on close, drains each step's input for
    tracing, which pulls the model to the end of its response. This handler,
    inherited by every run inside ``bound``, raises at the model's next token
    (and refuses new model calls) once ``stopped`` is set.
    """

    raise_error = True
    run_inline = True

    def __init__(self) -> None:
        self.stopped = False

    def _check(self) -> None:
        if self.stopped:
            raise _UpstreamStopped("guardkit stopped reading this stream")

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self._check()

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self._check()

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self._check()


def _with_handler(config: RunnableConfig, handler: BaseCallbackHandler) -> RunnableConfig:
    callbacks = config.get("callbacks")
    if callbacks is None:
        callbacks = [handler]
    elif isinstance(callbacks, list):
        callbacks = [*callbacks, handler]
    else:
        callbacks = callbacks.copy()
        callbacks.add_handler(handler, inherit=True)
    return patch_config(config, callbacks=callbacks)


def _single_input(inputs: Iterator[Any]) -> Any:
    final: Any = None
    for value in inputs:
        final = value if final is None else final + value
    return final


async def _asingle_input(inputs: AsyncIterator[Any]) -> Any:
    final: Any = None
    async for value in inputs:
        final = value if final is None else final + value
    return final


class GuardkitRunnable(Runnable[Any, Any]):
    """A Runnable that streams ``bound``'s output through a guardkit guard.

    ``bound`` is any Runnable producing message chunks/messages (a chat model,
    or a chain ending in one) or strings (a chain ending in ``StrOutputParser``,
    an LLM). Every way of calling it goes through the guard:

    * ``stream``/``astream`` yield only released text: the upstream's own chunks
      (unchanged, metadata included) once their text is judged, split where the
      guard releases part of one. On block the upstream is closed (it is pulled
      no further) and the policy's replacement message follows as a final chunk
      (an ``AIMessageChunk`` whose ``response_metadata["guardkit"]`` holds the
      verdict, or a plain string), or :class:`guardkit.StreamBlocked` is raised.
    * ``invoke``/``ainvoke``/``batch``/``abatch`` run that stream to the end and
      return the aggregate: an ``AIMessage`` (content = released text, plus the
      replacement message if blocked) or a string.
    * The prompt is taken from the input (see
      :func:`langchain_guardkit.extract_prompt`, or pass ``prompt_from``) and checked
      before ``bound`` is called; a prompt the policy blocks is refused without
      calling it.

    Args:
        bound: the Runnable to guard.
        guard: the :class:`guardkit.Guard` to apply.
        on_block: ``"replace"`` or ``"raise"``; default: the policy's ``on_block.mode``.
        prompt_from: ``callable(input) -> str | None`` to pick the prompt yourself.
        output: ``"message"`` or ``"str"`` for what to return when ``bound`` yields
            nothing (a refused prompt); ``"auto"`` reads ``bound.OutputType``.
    """

    def __init__(
        self,
        bound: Runnable[Any, Any],
        guard: Guard,
        *,
        on_block: OnBlockMode | None = None,
        prompt_from: PromptFrom | None = None,
        output: OutputKind = "auto",
        name: str | None = None,
    ) -> None:
        if not isinstance(bound, Runnable):
            raise TypeError(f"bound must be a langchain Runnable, got {type(bound).__name__}")
        if output not in ("auto", "message", "str"):
            raise ValueError(f"output must be 'auto', 'message' or 'str', got {output!r}")
        self.bound = bound
        self.guard = guard
        mode = on_block if on_block is not None else guard.policy.on_block.mode
        if mode not in ("replace", "raise"):
            raise ValueError(f"on_block must be 'replace' or 'raise', got {mode!r}")
        self.on_block: OnBlockMode = mode
        self.prompt_from: PromptFrom = prompt_from or extract_prompt
        self.output: OutputKind = output
        self.name = name or f"Guardkit[{bound.get_name()}]"

    # -- types -----------------------------------------------------------
    @property
    def InputType(self) -> Any:
        return self.bound.InputType

    @property
    def OutputType(self) -> Any:
        return self.bound.OutputType

    def get_input_schema(self, config: RunnableConfig | None = None) -> Any:
        return self.bound.get_input_schema(config)

    def _kind(self) -> Literal["message", "str"] | None:
        if self.output != "auto":
            return self.output
        return None

    def _fallback_kind(self) -> Literal["message", "str"]:
        try:
            output_type = self.bound.OutputType
        except Exception:  # noqa: BLE001
            return "message"
        return "str" if output_type is str else "message"

    def _shaper(self) -> _Shaper:
        return _Shaper(self._kind())

    # -- sync ------------------------------------------------------------
    def _transform(self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun, config: RunnableConfig, **kwargs: Any) -> Iterator[Any]:
        value = _single_input(inputs)
        prompt = self.prompt_from(value)
        shaper = self._shaper()

        stopper = _UpstreamStopper()

        def upstream() -> Iterator[Any]:  # called only once the prompt has passed
            it = self.bound.stream(value, _with_handler(config, stopper), **kwargs)
            try:
                for chunk in it:  # not ``yield from``: the stopper must be set before ``it`` is closed
                    yield chunk
            finally:
                stopper.stopped = True
                close = getattr(it, "close", None)
                if callable(close):
                    close()

        guarded = GuardedStream(
            self.guard.session(prompt), upstream(), on_block=self.on_block, message=self.guard.policy.on_block.message, text_of=shaper.text_of
        )
        with guarded:
            for text in guarded:
                if guarded.blocked and shaper.cursor >= len(guarded.released_text):
                    if shaper.kind is None:
                        shaper.kind = self._fallback_kind()
                    yield shaper.replacement(text, guarded.verdict)
                else:
                    yield from shaper.release(text)
            if not guarded.blocked:
                yield from shaper.flush()

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self._transform_stream_with_config(iter([input]), self._transform, config, **kwargs)

    def transform(self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self._transform_stream_with_config(input, self._transform, config, **kwargs)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._aggregate(list(self.stream(input, ensure_config(config), **kwargs)))

    # -- async -----------------------------------------------------------
    async def _atransform(
        self, inputs: AsyncIterator[Any], run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig, **kwargs: Any
    ) -> AsyncIterator[Any]:
        value = await _asingle_input(inputs)
        prompt = self.prompt_from(value)
        shaper = self._shaper()

        stopper = _UpstreamStopper()

        async def upstream() -> AsyncIterator[Any]:
            it = self.bound.astream(value, _with_handler(config, stopper), **kwargs)
            try:
                async for chunk in it:
                    yield chunk
            finally:
                stopper.stopped = True
                await it.aclose()  # type: ignore[attr-defined]

        guarded = AsyncGuardedStream(
            self.guard.session(prompt), upstream(), on_block=self.on_block, message=self.guard.policy.on_block.message, text_of=shaper.text_of,
        )
        async with guarded:
            async for text in guarded:
                if guarded.blocked and shaper.cursor >= len(guarded.released_text):
                    if shaper.kind is None:
                        shaper.kind = self._fallback_kind()
                    yield shaper.replacement(text, guarded.verdict)
                else:
                    for out in shaper.release(text):
                        yield out
            if not guarded.blocked:
                for out in shaper.flush():
                    yield out

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for out in self._atransform_stream_with_config(one(), self._atransform, config, **kwargs):
            yield out

    async def atransform(self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async for out in self._atransform_stream_with_config(input, self._atransform, config, **kwargs):
            yield out

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._aggregate([out async for out in self.astream(input, ensure_config(config), **kwargs)])

    # -- aggregation -----------------------------------------------------
    def _aggregate(self, outputs: list[Any]) -> Any:
        if not outputs:
            return "" if (self._kind() or self._fallback_kind()) == "str" else AIMessage(content="")
        if all(isinstance(o, str) for o in outputs):
            return "".join(outputs)
        total = outputs[0]
        for out in outputs[1:]:
            total = total + out
        return message_chunk_to_message(total) if isinstance(total, BaseMessageChunk) else total

    def __repr__(self) -> str:
        return f"GuardkitRunnable(bound={self.bound!r}, guard={self.guard!r}, on_block={self.on_block!r})"


def guard_runnable(
    runnable: Runnable[Any, Any],
    guard: Guard,
    on_block: OnBlockMode | None = None,
    *,
    prompt_from: PromptFrom | None = None,
    output: OutputKind = "auto",
) -> GuardkitRunnable | GuardedAgentRunnable:
    """Wrap ``runnable`` so its output goes through ``guard``; see :class:`GuardkitRunnable`.

    An agent (a LangGraph graph with ``messages`` state, e.g. ``create_agent(...)``)
    gets a :class:`GuardedAgentRunnable`, which judges the states it returns.
    """
    if _is_message_graph(runnable):
        return GuardedAgentRunnable(runnable, guard)  # type: ignore[return-value]
    return GuardkitRunnable(runnable, guard, on_block=on_block, prompt_from=prompt_from, output=output)


@contextmanager
def _no_ambient_config() -> Iterator[None]:
    """Run the agent without the caller's ambient config: LangGraph merges its callbacks into any config given."""
    token = var_child_runnable_config.set(None)
    try:
        yield
    finally:
        try:
            var_child_runnable_config.reset(token)
        except ValueError:  # finalized from another context (a dropped stream): nothing to restore there
            pass


def _is_message_graph(runnable: Any) -> bool:
    """A compiled LangGraph graph whose state has a ``messages`` channel (e.g. ``create_agent``'s agent)."""
    channels = getattr(runnable, "channels", None)
    return isinstance(channels, dict) and "messages" in channels and hasattr(runnable, "stream_mode")


class GuardedAgentRunnable(Runnable[Any, Any]):
    """What :func:`guard_runnable` returns for an agent (a LangGraph graph with ``messages`` state).

    The agent's output is a state (``{"messages": [...]}``), not a text stream, so
    it is judged message by message: the prompt (the last human message) is
    checked first (a blocked prompt returns the input state plus the policy's
    ``prompt.message``, without running the agent), and each AI message in a
    state is judged whole before the state is handed out; a blocked one is
    replaced by the policy's ``on_block.message`` (``response_metadata["guardkit"]``
    holds the block; its tool calls are removed). ``stream``/``astream`` yield
    whole states (``stream_mode="values"``). The agent runs without the caller's
    callbacks, so its model's raw tokens reach no outer ``astream_events``
    consumer. To stream judged tokens, or to stop a tool call before it runs,
    guard the agent's model instead: ``create_agent(model=GuardedChatModel(...))``
    or ``middleware=[GuardkitMiddleware(guard)]``.
    """

    def __init__(self, bound: Runnable[Any, Any], guard: Guard) -> None:
        self.bound = bound
        self.guard = guard
        self.name = f"Guardkit[{bound.get_name()}]"

    def _inner_config(self, config: RunnableConfig | None) -> RunnableConfig:
        config = ensure_config(config)
        # a manager with no handlers, not []: LangGraph treats an empty list as "inherit the caller's"
        kept = {k: v for k, v in config.items() if k in ("configurable", "recursion_limit", "max_concurrency")}
        return {**kept, "callbacks": CallbackManager(handlers=[])}  # type: ignore[typeddict-item]

    def _refused(self, value: Any, verdict: Verdict) -> dict[str, Any]:
        messages = list(value.get("messages", [])) if isinstance(value, dict) else []
        info = {"blocked": True, "channel": "prompt", "action": "halt", "message": self.guard.policy.prompt.message, "verdict": verdict.to_dict()}
        return {"messages": [*messages, AIMessage(content=self.guard.policy.prompt.message, response_metadata={"guardkit": [info]})]}

    def _judged(self, state: Any, prompt: str | None, verdicts: dict[str, Verdict]) -> Any:
        if not isinstance(state, dict) or not isinstance(state.get("messages"), list):
            return state
        messages = []
        for message in state["messages"]:
            if isinstance(message, AIMessage):
                key = message.id or str(id(message))
                if key not in verdicts:
                    verdicts[key] = self.guard.check_response(content_text(message.content), prompt)
                verdict = verdicts[key]
                if verdict.blocked:
                    info = {"blocked": True, "channel": "answer", "action": "halt", "message": self.guard.policy.on_block.message, "verdict": verdict.to_dict()}
                    message = AIMessage(content=self.guard.policy.on_block.message, id=message.id, response_metadata={"guardkit": [info]})
            messages.append(message)
        return {**state, "messages": messages}

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        final = None
        for final in self.stream(input, config, **kwargs):
            pass
        return final

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        final = None
        async for final in self.astream(input, config, **kwargs):
            pass
        return final

    def _states(self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun, config: RunnableConfig, **kwargs: Any) -> Iterator[Any]:
        value = _single_input(inputs)
        prompt = extract_prompt(value)
        if prompt is not None:
            verdict = self.guard.check_prompt(prompt)
            if verdict.blocked:
                yield self._refused(value, verdict)
                return
        verdicts: dict[str, Verdict] = {}
        with _no_ambient_config():
            for state in self.bound.stream(value, self._inner_config(config), stream_mode="values", **kwargs):
                yield self._judged(state, prompt, verdicts)

    async def _astates(
        self, inputs: AsyncIterator[Any], run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig, **kwargs: Any
    ) -> AsyncIterator[Any]:
        value = await _asingle_input(inputs)
        prompt = extract_prompt(value)
        if prompt is not None:
            verdict = await self.guard.acheck_prompt(prompt)
            if verdict.blocked:
                yield self._refused(value, verdict)
                return
        verdicts: dict[str, Verdict] = {}
        with _no_ambient_config():
            async for state in self.bound.astream(value, self._inner_config(config), stream_mode="values", **kwargs):
                yield self._judged(state, prompt, verdicts)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self._transform_stream_with_config(iter([input]), self._states, config, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for state in self._atransform_stream_with_config(one(), self._astates, config, **kwargs):
            yield state
