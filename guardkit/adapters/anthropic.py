"""Anthropic Messages streams (``client.messages.create(stream=True)`` raw events).

``guard_anthropic_stream(guard, events, prompt=...)`` yields the upstream's own
events (``anthropic.types`` objects in, the same types out via
``model_copy(update=...)``; dicts in, dicts out), with one guarded session per
content block:

- ``text_delta.text`` (the answer), ``thinking_delta.thinking`` (reasoning,
  never shown unjudged) and ``input_json_delta.partial_json`` (tool
  arguments) carry only released text; text held back for judging is "" in
  its event and arrives in a later ``content_block_delta`` of the same block
  (at the latest just before its ``content_block_stop``);
- every other event and field (``message_start``, ``signature_delta``,
  ``citations_delta``, tool ids and names, ``usage``, ``ping`` ...) passes
  through unchanged;
- a block stops the whole message: the upstream is closed, the open content
  block gets its ``content_block_stop``, then a ``message_delta`` with
  ``stop_reason: "refusal"`` (Anthropic's own stop reason for a streaming
  refusal) carrying a ``guardkit`` field (:meth:`GuardBlock.to_dict`: the
  verdict and the policy's replacement message), then ``message_stop``.

``on_block="raise"`` raises :class:`~guardkit.StreamBlocked` after the released
text instead. Pass the raw event stream, not ``client.messages.stream()``'s
helper events: their snapshots would carry unjudged text, so they are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from guardkit.adapters._driver import AsyncShapedStream, ChannelRules, GuardBlock, Key, Read, ShapedStream, Shaper, get, replace, text_field
from guardkit.streams import OnBlockMode

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.guard import Guard

__all__ = ["AnthropicEventShaper", "AnthropicGuardedStream", "AsyncAnthropicGuardedStream", "aguard_anthropic_stream", "guard_anthropic_stream"]

#: delta type -> (channel kind, its text field)
_DELTAS = {"text_delta": ("text", "text"), "thinking_delta": ("thinking", "thinking"), "input_json_delta": ("tool", "partial_json")}
_BLOCKS = {"text": ("text", "text"), "thinking": ("thinking", "thinking")}
_CHANNELS = {"text": "answer", "thinking": "reasoning", "tool": "tool_arguments"}
_HELPER_EVENTS = {"text", "thinking", "input_json", "citation", "signature"}


def _new(template: Any, cls_name: str, **fields: Any) -> Any:
    """A new event/object of the template's family: a dict, an ``anthropic.types`` model, or a namespace."""
    if template is None or isinstance(template, dict):
        return fields
    if hasattr(template, "model_copy"):
        from anthropic import types
        from anthropic.types import raw_message_delta_event

        cls = getattr(types, cls_name, None) or getattr(raw_message_delta_event, cls_name)
        return cls.model_construct(**fields)
    return SimpleNamespace(**fields)


class AnthropicEventShaper(Shaper[Any]):
    """Raw Messages stream events: a channel per content block (text, thinking, tool input); a block halts the message."""

    primary: Key = None  # the first text block, set when it starts

    def __init__(self) -> None:
        self._last: Any = None
        self._open: dict[int, str] = {}  # content blocks started and not stopped: index -> channel kind
        self._usage: Any = None
        self._blocked = False

    def read(self, event: Any) -> Read:
        kind = get(event, "type")
        if kind is None:
            raise TypeError(f"expected Anthropic stream events (objects or dicts with a 'type'), got {type(event).__name__}")
        if kind in _HELPER_EVENTS or (kind == "content_block_stop" and get(event, "content_block") is not None) or (
            kind == "message_stop" and get(event, "message") is not None
        ):
            raise TypeError(
                f"{kind!r} is a messages.stream() helper event whose snapshot carries unjudged text; "
                "guard the raw stream of client.messages.create(stream=True) instead"
            )
        self._last = event
        read = Read()
        index = get(event, "index")
        if kind == "message_start":
            self._usage = get(get(event, "message"), "usage")
        elif kind == "content_block_start":
            block = get(event, "content_block")
            btype = get(block, "type")
            channel = _BLOCKS.get(btype, ("tool", None) if btype in ("tool_use", "server_tool_use") else (None, None))[0]
            self._open[index] = channel or btype
            if btype in _BLOCKS:
                text = text_field(block, _BLOCKS[btype][1])
                if text:
                    read.texts.append(((index, channel), text))
            if channel == "text" and self.primary is None:
                self.primary = (index, "text")
        elif kind == "content_block_delta":
            delta = get(event, "delta")
            spec = _DELTAS.get(get(delta, "type"))
            if spec is not None:
                text = text_field(delta, spec[1])
                if text is not None:
                    read.texts.append(((index, spec[0]), text))
        elif kind == "content_block_stop":
            channel = self._open.pop(index, None)
            read.ends.append((index, channel))
        elif kind in ("message_delta", "message_stop"):
            if get(event, "usage") is not None:
                self._usage = get(event, "usage")
            read.end_all = True
        return read

    def channel(self, key: Key) -> str:
        return _CHANNELS.get(key[1], "answer")  # type: ignore[index]

    def rebuild(self, event: Any, released: dict[Key, str], finished: set[Key]) -> list[Any]:
        if event is None:
            return [self._delta(None, key, text) for key, text in released.items() if text]
        kind = get(event, "type")
        own: Key | None = None
        if kind == "content_block_delta":
            spec = _DELTAS.get(get(get(event, "delta"), "type"))
            if spec is not None:
                own = (get(event, "index"), spec[0])
                delta = get(event, "delta")
                event = replace(event, delta=replace(delta, **{spec[1]: released.get(own, "")}))
        elif kind == "content_block_start":
            block = get(event, "content_block")
            btype = get(block, "type")
            if btype in _BLOCKS and text_field(block, _BLOCKS[btype][1]):
                own = (get(event, "index"), _BLOCKS[btype][0])
                event = replace(event, content_block=replace(block, **{_BLOCKS[btype][1]: released.get(own, "")}))
        before = [self._delta(event, key, text) for key, text in released.items() if key != own and text]
        if self._blocked and ((kind == "content_block_delta" and not released.get(own)) or kind in ("message_delta", "message_stop")):  # type: ignore[arg-type]
            return before  # blocked at this event: the block items say how the message ends
        return before + [event]

    def block(self, signal: GuardBlock, like: Any) -> list[Any]:
        if signal.channel_only:  # that block's text stops, the message goes on: an empty delta saying so
            event = self._delta(like, signal.key, "")
            return [replace(event, guardkit=signal.to_dict())]
        self._blocked = True
        template = like if like is not None else self._last
        out: list[Any] = []
        if signal.channel == "prompt" and get(like, "type") == "message_start":
            out.append(like)  # the message's envelope (no text), so SDK accumulators see a whole message
        for index in sorted(self._open):
            out.append(_new(template, "RawContentBlockStopEvent", type="content_block_stop", index=index))
        self._open.clear()
        usage = _new(template, "MessageDeltaUsage", output_tokens=get(self._usage, "output_tokens", 0) or 0)
        delta = _new(template, "Delta", stop_reason="refusal", stop_sequence=None)
        out.append(_new(template, "RawMessageDeltaEvent", type="message_delta", delta=delta, usage=usage, guardkit=signal.to_dict()))
        out.append(_new(template, "RawMessageStopEvent", type="message_stop"))
        return out

    def _delta(self, template: Any, key: Key, text: str) -> Any:
        """A ``content_block_delta`` carrying text released late for channel ``key``."""
        template = template if template is not None else self._last
        index, kind = key  # type: ignore[misc]
        dtype = {"text": "text_delta", "thinking": "thinking_delta", "tool": "input_json_delta"}[kind]
        cls = {"text": "TextDelta", "thinking": "ThinkingDelta", "tool": "InputJSONDelta"}[kind]
        delta = _new(template, cls, type=dtype, **{_DELTAS[dtype][1]: text})
        return _new(template, "RawContentBlockDeltaEvent", type="content_block_delta", index=index, delta=delta)


class AnthropicGuardedStream(ShapedStream[Any]):
    """Guarded Anthropic stream events; ``.verdict``, ``.blocked``, ``.blocks``, ``.released_text`` (first text block) afterwards."""

    def __init__(
        self, guard: Guard, events: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
        *, channels: ChannelRules | None = None,
    ) -> None:
        super().__init__(guard, events, AnthropicEventShaper(), prompt=prompt, on_block=on_block, channels=channels)


class AsyncAnthropicGuardedStream(AsyncShapedStream[Any]):
    """Async twin of :class:`AnthropicGuardedStream` (e.g. over an ``AsyncAnthropic`` stream)."""

    def __init__(
        self, guard: Guard, events: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
        *, channels: ChannelRules | None = None,
    ) -> None:
        super().__init__(guard, events, AnthropicEventShaper(), prompt=prompt, on_block=on_block, channels=channels)


def guard_anthropic_stream(
    guard: Guard, events: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
    *, channels: ChannelRules | None = None,
) -> AnthropicGuardedStream:
    """Guard a sync Anthropic Messages event stream (``client.messages.create(..., stream=True)``)."""
    return AnthropicGuardedStream(guard, events, prompt, on_block, channels=channels)


def aguard_anthropic_stream(
    guard: Guard, events: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
    *, channels: ChannelRules | None = None,
) -> AsyncAnthropicGuardedStream:
    """Guard an async Anthropic Messages event stream (``await AsyncAnthropic().messages.create(..., stream=True)``)."""
    return AsyncAnthropicGuardedStream(guard, events, prompt, on_block, channels=channels)
