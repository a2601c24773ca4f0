"""OpenAI chat-completion chunk streams (``client.chat.completions.create(stream=True)``).

``guard_openai_stream(guard, chunks, prompt=...)`` yields the upstream's own
chunks (``ChatCompletionChunk`` objects in, ``ChatCompletionChunk`` objects
out, rebuilt with ``model_copy(update=...)``; dicts in, dicts out), one guarded
session per channel of each choice:

- ``delta.content`` and ``delta.audio.transcript`` (the answer),
  ``delta.refusal``, each ``delta.tool_calls[k].function.arguments`` (and
  the legacy ``delta.function_call.arguments``), and the reasoning text some
  OpenAI-compatible servers stream in ``delta.reasoning_content`` /
  ``delta.reasoning`` (never shown unjudged) carry only released text;
  ``logprobs`` entries (they spell the text) are released in step with it;
- every other field (ids, ``role``, tool-call ids and names, ``usage``,
  ``system_fingerprint``, ``obfuscation`` ...) passes through unchanged, one
  output chunk per upstream chunk; text held back for judging is "" there and
  arrives in a later chunk of the same choice;
- a blocked choice ends with an extra chunk for that choice: empty ``delta``,
  ``finish_reason: "content_filter"`` and a ``guardkit`` field (an extra field
  on SDK objects, a key on dicts) holding :meth:`GuardBlock.to_dict` (the
  verdict and the policy's replacement message). Other choices continue; the
  upstream is closed once every choice it started has finished or been
  blocked (so a final usage chunk never comes after a block).

``on_block="raise"`` raises :class:`~guardkit.StreamBlocked` after the
released text instead. Pass the raw stream, not the ``chat.completions.stream()``
helper's events (their snapshots would carry unjudged text; they are refused).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from guardkit.adapters._driver import (
    ALL,
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
    "AsyncOpenAIGuardedStream",
    "ChatChunkShaper",
    "OpenAIGuardedStream",
    "aguard_openai_stream",
    "chunk_text",
    "guard_openai_stream",
]

_MISSING = object()
_CHANNELS = {
    "content": "answer", "audio": "answer", "refusal": "refusal", "tool": "tool_arguments", "function_call": "tool_arguments",
    "reasoning_content": "reasoning", "reasoning": "reasoning",
}
#: the delta's own text fields: the SDK's, then the reasoning fields OpenAI-compatible servers add
#: (``reasoning_content``: vLLM, DeepSeek; ``reasoning``: OpenRouter, Ollama), extra fields on SDK objects
_TEXT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")


def chunk_text(chunk: Any) -> str | None:
    """The ``choices[0].delta.content`` of a chunk (object or dict), or None."""
    choices = get(chunk, "choices")
    if not choices:
        return None
    delta = get(choices[0], "delta")
    return None if delta is None else text_field(delta, "content")


def _new(template: Any, cls_name: str, **fields: Any) -> Any:
    """A new object of the template's family: a dict, an OpenAI SDK model, or a namespace."""
    if template is None or isinstance(template, dict):
        return fields
    if hasattr(template, "model_copy"):
        from openai.types.chat import chat_completion_chunk as types

        return getattr(types, cls_name).model_construct(**fields)
    return SimpleNamespace(**fields)


def _delta_texts(i: int, delta: Any) -> list[tuple[Key, str]]:
    texts: list[tuple[Key, str]] = []
    for name in _TEXT_FIELDS:
        text = text_field(delta, name)
        if text is not None:
            texts.append(((i, name), text))
    for call in get(delta, "tool_calls") or []:
        function = get(call, "function")
        text = text_field(function, "arguments") if function is not None else None
        if text is not None:
            texts.append(((i, "tool", get(call, "index")), text))
    for name, field in (("function_call", "arguments"), ("audio", "transcript")):
        part = get(delta, name)
        text = text_field(part, field) if part is not None else None
        if text is not None:
            texts.append(((i, name), text))
    return texts


class ChatChunkShaper(Shaper[Any]):
    """Chat-completion chunks: a channel per (choice, content | refusal | tool call k | audio); a choice blocks alone."""

    primary: Key = (0, "content")

    def __init__(self) -> None:
        self._keys: dict[int, set[Key]] = {}
        self._blocked: set[int] = set()
        self._ended: set[int] = set()
        self._last: Any = None
        self._logprobs: dict[Key, Aligned] = {}
        self._logprobs_like: Any = None

    # -- Shaper -----------------------------------------------------------------
    def read(self, chunk: Any) -> Read:
        choices = get(chunk, "choices", _MISSING)
        if choices is _MISSING or not isinstance(choices, list):
            raise TypeError(
                f"expected chat.completion.chunk objects or dicts (the raw stream of chat.completions.create(stream=True)), got {type(chunk).__name__}"
            )
        self._last = chunk
        read = Read()
        for pos, choice in enumerate(choices):
            i = get(choice, "index", pos)
            keys = self._keys.setdefault(i, set())
            delta = get(choice, "delta")
            for key, text in _delta_texts(i, delta) if delta is not None else []:
                keys.add(key)
                read.texts.append((key, text))
            if self._logprobs_like is None and get(choice, "logprobs") is not None:
                self._logprobs_like = get(choice, "logprobs")
            if get(choice, "finish_reason") is not None:
                read.ends += list(keys)
                self._ended.add(i)
        return read

    def channel(self, key: Key) -> str:
        return _CHANNELS[key[1]]  # type: ignore[index]

    def scope(self, key: Key) -> Any:
        return key[0]  # type: ignore[index]

    def rebuild(self, chunk: Any, released: dict[Key, str], finished: set[Key]) -> list[Any]:
        by_choice: dict[int, dict[Key, str]] = {}
        for key, text in released.items():
            by_choice.setdefault(key[0], {})[key] = text  # type: ignore[index]
        if chunk is None:  # the upstream ended without finish reasons: text released at the end
            template = self._last
            return [
                self._chunk(template, [self._choice(self._empty_choice(template, i), i, rel, finished)])
                for i, rel in sorted(by_choice.items())
                if i not in self._blocked
            ]
        choices = get(chunk, "choices")
        touched = bool(released) or any(
            get(c, "index", pos) in self._blocked or (get(c, "delta") is not None and _delta_texts(get(c, "index", pos), get(c, "delta")))
            or get(c, "logprobs") is not None
            for pos, c in enumerate(choices)
        )
        if not touched:
            return [chunk]
        out = []
        for pos, choice in enumerate(choices):
            i = get(choice, "index", pos)
            rel = by_choice.get(i, {})
            if i in self._blocked:
                if rel:  # text released up to the onset, before the block item
                    out.append(self._choice(self._empty_choice(chunk, i), i, rel, finished))
                continue
            out.append(self._choice(choice, i, rel, finished))
        if choices and not out:
            return []
        return [replace(chunk, choices=out)]

    def block(self, signal: GuardBlock, like: Any) -> list[Any]:
        template = like if like is not None else self._last
        info = signal.to_dict()
        if signal.channel_only:  # that channel stops, its choice goes on: a chunk saying so, no finish reason
            i = signal.key[0]  # type: ignore[index]
            return [self._chunk(template, [self._empty_choice(template, i)], guardkit=info)]
        if signal.scope == ALL:
            indices = sorted(set(self._keys) | {get(c, "index", p) for p, c in enumerate(get(template, "choices") or [])}) or [0]
        else:
            indices = [signal.scope]
        self._blocked.update(indices)
        for i in indices:
            for key, aligned in self._logprobs.items():
                if key[0] == i:  # type: ignore[index]
                    aligned.take(None, "", final=False, dropped=True)
        return [
            self._chunk(template, [replace(self._empty_choice(template, i), finish_reason="content_filter")], guardkit=info)
            for i in indices
        ]

    def halted(self) -> bool:
        # stop the upstream once a blocked choice is still generating and no other choice is;
        # if every blocked choice already finished upstream, read on (only the usage chunk is left)
        return bool(self._blocked - self._ended) and set(self._keys) <= (self._blocked | self._ended)

    # -- building chunks ----------------------------------------------------------
    def _chunk(self, template: Any, choices: list[Any], **extra: Any) -> Any:
        fields: dict[str, Any] = {
            "id": get(template, "id", "guardkit"),
            "object": "chat.completion.chunk",
            "created": get(template, "created", 0),
            "model": get(template, "model", "unknown"),
        }
        if get(template, "system_fingerprint") is not None:
            fields["system_fingerprint"] = get(template, "system_fingerprint")
        return _new(template, "ChatCompletionChunk", **fields, choices=choices, **extra)

    def _empty_choice(self, template: Any, i: int) -> Any:
        return _new(template, "Choice", index=i, delta=_new(template, "ChoiceDelta"), finish_reason=None)

    def _choice(self, choice: Any, i: int, rel: dict[Key, str], finished: set[Key]) -> Any:
        """``choice`` with every text field of its delta replaced by the released text (``rel``)."""
        delta = get(choice, "delta")
        changes: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            if text_field(delta, name) is not None or (i, name) in rel:
                changes[name] = rel.get((i, name), "")
        calls = list(get(delta, "tool_calls") or [])
        new_calls, placed = [], set()
        for call in calls:
            k = get(call, "index")
            function = get(call, "function")
            if function is not None and (text_field(function, "arguments") is not None or (i, "tool", k) in rel):
                call = replace(call, function=replace(function, arguments=rel.get((i, "tool", k), "")))
            placed.add(k)
            new_calls.append(call)
        for key, text in rel.items():
            if key[1] == "tool" and key[2] not in placed:  # type: ignore[index]
                function = _new(choice, "ChoiceDeltaToolCallFunction", arguments=text)
                new_calls.append(_new(choice, "ChoiceDeltaToolCall", index=key[2], function=function))  # type: ignore[index]
        if new_calls != calls:
            changes["tool_calls"] = new_calls
        for name, field, cls_name in (("function_call", "arguments", "ChoiceDeltaFunctionCall"), ("audio", "transcript", "ChoiceDeltaAudio")):
            part = get(delta, name)
            if part is not None and (text_field(part, field) is not None or (i, name) in rel):
                changes[name] = replace(part, **{field: rel.get((i, name), "")})
            elif part is None and (i, name) in rel:
                changes[name] = _new(choice, cls_name, **{field: rel[(i, name)]})
        updates: dict[str, Any] = {}
        if changes:
            updates["delta"] = replace(delta, **changes)
        if self._logprobs_like is not None:
            logprobs = get(choice, "logprobs")
            lp_changes = {}
            for name in ("content", "refusal"):
                aligned = self._logprobs.setdefault((i, name), Aligned())
                entries = get(logprobs, name) if logprobs is not None else None
                # the rest only once the channel was judged to its end (never for a dropped or blocked one)
                taken = aligned.take(entries, rel.get((i, name), ""), final=(i, name) in finished)
                if taken or entries is not None:
                    lp_changes[name] = taken
            if lp_changes:
                base = {} if logprobs is not None else {"content": None, "refusal": None}
                updates["logprobs"] = replace(logprobs if logprobs is not None else self._logprobs_like, **{**base, **lp_changes})
        return replace(choice, **updates) if updates else choice


class OpenAIGuardedStream(ShapedStream[Any]):
    """Guarded chat-completion chunks; ``.verdict``, ``.blocked``, ``.blocks``, ``.released_text`` (choice 0) afterwards."""

    def __init__(
        self, guard: Guard, chunks: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
        *, channels: ChannelRules | None = None,
    ) -> None:
        super().__init__(guard, chunks, ChatChunkShaper(), prompt=prompt, on_block=on_block, channels=channels)


class AsyncOpenAIGuardedStream(AsyncShapedStream[Any]):
    """Async twin of :class:`OpenAIGuardedStream` (e.g. over an ``AsyncOpenAI`` stream)."""

    def __init__(
        self, guard: Guard, chunks: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
        *, channels: ChannelRules | None = None,
    ) -> None:
        super().__init__(guard, chunks, ChatChunkShaper(), prompt=prompt, on_block=on_block, channels=channels)


def guard_openai_stream(
    guard: Guard, chunks: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
    *, channels: ChannelRules | None = None,
) -> OpenAIGuardedStream:
    """Guard a sync chat-completion chunk stream (``client.chat.completions.create(stream=True)``)."""
    return OpenAIGuardedStream(guard, chunks, prompt, on_block, channels=channels)


def aguard_openai_stream(
    guard: Guard, chunks: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None,
    *, channels: ChannelRules | None = None,
) -> AsyncOpenAIGuardedStream:
    """Guard an async chat-completion chunk stream (``await AsyncOpenAI().chat.completions.create(stream=True)``)."""
    return AsyncOpenAIGuardedStream(guard, chunks, prompt, on_block, channels=channels)
