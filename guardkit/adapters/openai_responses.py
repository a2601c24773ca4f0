"""OpenAI Responses API streams (``client.responses.create(stream=True)`` events).

``guard_responses_stream(guard, events, prompt=...)`` yields the upstream's own
events (``openai.types.responses`` objects in, the same types out via
``model_copy(update=...)``; dicts in, dicts out), with one guarded session per
text channel:

- every ``*.delta`` event's ``delta`` carries only released text, per
  (event family, item, content/summary index): ``response.output_text``
  (answer), ``response.refusal``, ``response.reasoning_text`` and
  ``response.reasoning_summary_text`` (reasoning, never shown unjudged),
  ``response.function_call_arguments``, ``response.custom_tool_call_input``,
  ``response.mcp_call_arguments``, ``response.code_interpreter_call_code``
  (tool arguments), ``response.audio.transcript``, and any other text
  ``*.delta`` family (judged as ``"other"``). ``response.audio.delta`` is
  base64 audio and passes unjudged. Text held back for judging is "" in its
  event and arrives in a later delta of the same channel (at the latest just
  before the channel's ``*.done``); ``logprobs`` entries follow their text;
- the events that repeat text (``*.done``, ``response.content_part.done``,
  ``response.output_item.done``, ``response.completed``/``incomplete``/
  ``failed``) end their channels first (the rest is judged), and their text
  fields are set to the released text; every other event and field passes
  through unchanged;
- a block stops the whole response: the upstream is closed, and the stream
  ends with a ``response.incomplete`` event whose ``response`` has
  ``status: "incomplete"``, ``incomplete_details.reason: "content_filter"``
  and only the output items completed before the block, carrying a
  ``guardkit`` field (:meth:`GuardBlock.to_dict`: verdict and replacement
  message).

``on_block="raise"`` raises :class:`~guardkit.StreamBlocked` after the released
text instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from guardkit.adapters._driver import (
    Aligned,
    AsyncShapedStream,
    ChannelRules,
    GuardBlock,
    Key,
    Read,
    ShapedStream,
    Shaper,
    get,
    replace,
    text_field,
)
from guardkit.streams import OnBlockMode

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.guard import Guard

__all__ = [
    "AsyncResponsesGuardedStream",
    "ResponsesEventShaper",
    "ResponsesGuardedStream",
    "aguard_responses_stream",
    "guard_responses_stream",
]

_CHANNELS = {
    "response.output_text": "answer",
    "response.audio.transcript": "answer",
    "response.refusal": "refusal",
    "response.reasoning_text": "reasoning",
    "response.reasoning_summary_text": "reasoning",
    "response.function_call_arguments": "tool_arguments",
    "response.custom_tool_call_input": "tool_arguments",
    "response.mcp_call_arguments": "tool_arguments",
    "response.code_interpreter_call_code": "tool_arguments",
}
_NOT_TEXT = {"response.audio"}  # base64 audio bytes
#: the field a family's ``*.done`` event repeats the whole text in
_DONE_FIELDS = ("text", "refusal", "arguments", "input", "code", "transcript")
_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def _key(family: str, event: Any) -> Key:
    index = get(event, "content_index")
    if index is None:
        index = get(event, "summary_index")
    item = get(event, "item_id")
    if item is None:
        item = get(event, "output_index")
    return (family, item, index)


def _new(template: Any, cls_name: str, **fields: Any) -> Any:
    if template is None or isinstance(template, dict):
        return fields
    if hasattr(template, "model_copy"):
        import openai.types.responses as types
        from openai.types.responses import response as response_module

        cls = getattr(types, cls_name, None) or getattr(response_module, cls_name)
        return cls.model_construct(**fields)
    return SimpleNamespace(**fields)


class ResponsesEventShaper(Shaper[Any]):
    """Responses stream events: a channel per text ``*.delta`` family and part; a block halts the response."""

    primary: Key = None  # the first output_text part, set when it starts

    def __init__(self) -> None:
        self._last: Any = None
        self._response: Any = None  # the latest response snapshot (created / in_progress)
        self._last_delta: dict[Key, Any] = {}
        self._shown: dict[Key, str] = {}
        self._logprobs: dict[Key, Aligned] = {}
        self._done_items: list[Any] = []
        self._seq = 0
        self._blocked = False

    def read(self, event: Any) -> Read:
        kind = get(event, "type")
        if not isinstance(kind, str):
            raise TypeError(f"expected Responses stream events (objects or dicts with a 'type'), got {type(event).__name__}")
        if get(event, "snapshot") is not None:
            raise TypeError(f"{kind!r} is a responses.stream() helper event whose snapshot carries unjudged text; guard responses.create(stream=True)")
        self._last = event
        seq = get(event, "sequence_number")
        if isinstance(seq, int):
            self._seq = max(self._seq, seq)
        read = Read()
        family, _, suffix = kind.rpartition(".")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._response = get(event, "response")
        elif suffix == "delta" and family not in _NOT_TEXT:
            text = text_field(event, "delta")
            if text is not None:
                key = _key(family, event)
                self._last_delta[key] = event
                if family == "response.output_text" and self.primary is None:
                    self.primary = key
                read.texts.append((key, text))
        elif suffix == "done" and _key(family, event) in self._last_delta:
            read.ends.append(_key(family, event))
        elif kind == "response.content_part.done":
            read.ends += [k for k in self._last_delta if k[1] == get(event, "item_id") and k[2] == get(event, "content_index")]  # type: ignore[index]
        elif kind == "response.reasoning_summary_part.done":
            read.ends += [k for k in self._last_delta if k[1] == get(event, "item_id") and k[2] == get(event, "summary_index")]  # type: ignore[index]
        elif kind == "response.output_item.done":
            item_id = get(get(event, "item"), "id")
            read.ends += [k for k in self._last_delta if k[1] in (item_id, get(event, "output_index"))]  # type: ignore[index]
        elif kind in _TERMINAL:
            read.end_all = True
        return read

    def channel(self, key: Key) -> str:
        return _CHANNELS.get(key[0], "other")  # type: ignore[index]

    def rebuild(self, event: Any, released: dict[Key, str], finished: set[Key]) -> list[Any]:
        for key, text in released.items():
            self._shown[key] = self._shown.get(key, "") + text
        if event is None:
            return [self._delta(key, text, final=True) for key, text in released.items() if text]
        kind = get(event, "type")
        family, _, suffix = kind.rpartition(".")
        own: Key | None = None
        if suffix == "delta" and family not in _NOT_TEXT and text_field(event, "delta") is not None:
            own = _key(family, event)
            event = self._with_text(event, own, released.get(own, ""), final=False)
            if self._blocked and not released.get(own):  # type: ignore[arg-type]
                event = None
        before = [self._delta(key, text, final=key in finished) for key, text in released.items() if key != own and text]
        if event is None or (self._blocked and own is None):
            return before  # blocked at this (done / terminal) event: response.incomplete replaces it
        if suffix == "done" and own is None:
            key = _key(family, event)
            if family in _CHANNELS or key in self._last_delta:
                shown = self._shown.get(key, "")
                event = replace(event, **{f: shown for f in _DONE_FIELDS if isinstance(get(event, f), str)})
        # events that repeat text (parts, items, response snapshots) show only released text;
        # for an honest stream that is exactly what they carried (their channels were judged to the end first)
        if kind.startswith(("response.content_part.", "response.reasoning_summary_part.")) and get(event, "part") is not None:
            index = get(event, "content_index", get(event, "summary_index"))
            event = replace(event, part=self._part(get(event, "part"), get(event, "item_id"), index, summary=kind.startswith("response.reasoning")))
        elif kind.startswith("response.output_item.") and get(event, "item") is not None:
            item = self._item(get(event, "item"))
            if kind == "response.output_item.done":
                self._done_items.append(item)
            event = replace(event, item=item)
        elif get(event, "response") is not None and get(get(event, "response"), "output"):
            response = get(event, "response")
            event = replace(event, response=replace(response, output=[self._item(i) for i in get(response, "output")]))
        return before + [event]

    def block(self, signal: GuardBlock, like: Any) -> list[Any]:
        if signal.channel_only:  # that channel stops, the response goes on: an empty delta saying so
            return [replace(self._delta(signal.key, "", final=False), guardkit=signal.to_dict())]
        self._blocked = True
        template = like if like is not None else self._last
        out: list[Any] = []
        response = self._response
        if signal.channel == "prompt" and get(like, "type") == "response.created":
            out.append(like)  # the response's envelope (no text)
            response = get(like, "response")
        details = _new(template, "IncompleteDetails", reason="content_filter")
        if response is not None:
            response = replace(response, status="incomplete", incomplete_details=details, output=list(self._done_items))
        else:
            response = {"object": "response", "status": "incomplete", "incomplete_details": details, "output": list(self._done_items)}
        self._seq += 1
        out.append(_new(template, "ResponseIncompleteEvent", type="response.incomplete", response=response, sequence_number=self._seq, guardkit=signal.to_dict()))
        return out

    # -- rebuilding -----------------------------------------------------------------
    def _with_text(self, event: Any, key: Key, text: str, *, final: bool, copy: bool = False) -> Any:
        changes: dict[str, Any] = {"delta": text}
        logprobs = get(event, "logprobs")
        aligned = self._logprobs.setdefault(key, Aligned())
        taken = aligned.take(None if copy else logprobs, text, final=final, dropped=self._blocked and not text)
        if logprobs is not None or taken:
            changes["logprobs"] = taken
        return replace(event, **changes)

    def _delta(self, key: Key, text: str, *, final: bool) -> Any:
        """A delta event (a copy of the channel's last one) carrying text released late."""
        return self._with_text(self._last_delta[key], key, text, final=final, copy=True)

    def _part(self, part: Any, item_id: Any, index: Any, *, summary: bool) -> Any:
        if part is None:
            return part
        ptype = get(part, "type")
        if summary or ptype == "summary_text":
            return self._set(part, "text", ("response.reasoning_summary_text", item_id, index))
        if ptype == "output_text":
            return self._set(part, "text", ("response.output_text", item_id, index))
        if ptype == "reasoning_text":
            return self._set(part, "text", ("response.reasoning_text", item_id, index))
        if ptype == "refusal":
            return self._set(part, "refusal", ("response.refusal", item_id, index))
        return part

    def _set(self, obj: Any, field: str, key: Key) -> Any:
        """``obj.field`` set to the released text of ``key`` (text never streamed as deltas is not shown)."""
        if not isinstance(get(obj, field), str):
            return obj
        return replace(obj, **{field: self._shown.get(key, "")})

    def _item(self, item: Any) -> Any:
        """An output item with its text fields set to the released text."""
        itype, item_id = get(item, "type"), get(item, "id")
        if itype == "message":
            content = get(item, "content") or []
            return replace(item, content=[self._part(p, item_id, j, summary=False) for j, p in enumerate(content)])
        if itype == "reasoning":
            changes: dict[str, Any] = {}
            if get(item, "summary"):
                changes["summary"] = [self._part(p, item_id, j, summary=True) for j, p in enumerate(get(item, "summary"))]
            if get(item, "content"):
                changes["content"] = [self._part(p, item_id, j, summary=False) for j, p in enumerate(get(item, "content"))]
            return replace(item, **changes) if changes else item
        families = {"function_call": ("arguments", "response.function_call_arguments"), "custom_tool_call": ("input", "response.custom_tool_call_input"),
                    "mcp_call": ("arguments", "response.mcp_call_arguments"), "code_interpreter_call": ("code", "response.code_interpreter_call_code")}
        if itype in families:
            field, family = families[itype]
            return self._set(item, field, (family, item_id, None))
        return item


class ResponsesGuardedStream(ShapedStream[Any]):
    """Guarded Responses events; ``.verdict``, ``.blocked``, ``.blocks``, ``.released_text`` (first output text) afterwards."""

    def __init__(
        self, guard: Guard, events: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
        *, channels: ChannelRules | None = None,
    ) -> None:
        super().__init__(guard, events, ResponsesEventShaper(), prompt=prompt, on_block=on_block, channels=channels)


class AsyncResponsesGuardedStream(AsyncShapedStream[Any]):
    """Async twin of :class:`ResponsesGuardedStream` (e.g. over an ``AsyncOpenAI`` Responses stream)."""

    def __init__(
        self, guard: Guard, events: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
        *, channels: ChannelRules | None = None,
    ) -> None:
        super().__init__(guard, events, ResponsesEventShaper(), prompt=prompt, on_block=on_block, channels=channels)


def guard_responses_stream(
    guard: Guard, events: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
    *, channels: ChannelRules | None = None,
) -> ResponsesGuardedStream:
    """Guard a sync Responses event stream (``client.responses.create(..., stream=True)``)."""
    return ResponsesGuardedStream(guard, events, prompt, on_block, channels=channels)


def aguard_responses_stream(
    guard: Guard, events: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
    *, channels: ChannelRules | None = None,
) -> AsyncResponsesGuardedStream:
    """Guard an async Responses event stream (``await AsyncOpenAI().responses.create(..., stream=True)``)."""
    return AsyncResponsesGuardedStream(guard, events, prompt, on_block, channels=channels)
