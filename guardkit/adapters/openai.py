"""OpenAI-style chat-completion chunk streams (SDK objects or plain dicts).

The guarded stream yields chunks in the same shape as dicts
(``{"id", "object", "created", "model", "choices": [{"index", "delta", "finish_reason"}]}``)
whose ``delta.content`` is only released text. A blocked stream ends with the
policy's message and ``finish_reason: "content_filter"`` (Azure's convention),
or raises :class:`~guardkit.StreamBlocked` with ``on_block="raise"``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Iterable, Iterator

from guardkit.streams import AsyncGuardedStream, GuardedStream, OnBlockMode
from guardkit.verdict import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.guard import Guard

__all__ = ["AsyncOpenAIGuardedStream", "OpenAIGuardedStream", "aguard_openai_stream", "guard_openai_stream", "chunk_text"]


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def chunk_text(chunk: Any) -> str | None:
    """The ``choices[0].delta.content`` of a chunk (object or dict), or None."""
    choices = _get(chunk, "choices")
    if not choices:
        return None
    delta = _get(choices[0], "delta")
    if delta is None:
        return None
    content = _get(delta, "content")
    if content is not None and not isinstance(content, str):
        raise TypeError(f"chunk delta content must be str, got {type(content).__name__}")
    return content


class _ChunkShaper:
    """Remembers the upstream's id/model/created and finish reason to build output chunks."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {"id": "guardkit", "object": "chat.completion.chunk", "created": int(time.time()), "model": "unknown"}
        self.finish_reason: str | None = None

    def text_of(self, chunk: Any) -> str | None:
        for key in ("id", "created", "model", "system_fingerprint"):
            value = _get(chunk, key)
            if value is not None:
                self.meta[key] = value
        choices = _get(chunk, "choices")
        if choices:
            reason = _get(choices[0], "finish_reason")
            if reason is not None:
                self.finish_reason = reason
        return chunk_text(chunk)

    def chunk(self, content: str | None, finish_reason: str | None) -> dict[str, Any]:
        delta: dict[str, Any] = {"content": content} if content is not None else {}
        return {**self.meta, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    def final(self, blocked: bool) -> dict[str, Any]:
        return self.chunk(None, "content_filter" if blocked else (self.finish_reason or "stop"))


class OpenAIGuardedStream(Iterator[dict[str, Any]]):
    """Guarded OpenAI-style chunks; ``.verdict``/``.blocked``/``.released_text`` afterwards."""

    def __init__(self, guard: Guard, chunks: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None) -> None:
        self._shaper = _ChunkShaper()
        self.text_stream = GuardedStream(
            guard.session(prompt), chunks, on_block=guard._on_block(on_block), message=guard.policy.on_block.message, text_of=self._shaper.text_of
        )
        self._gen = self._run()

    def _run(self) -> Iterator[dict[str, Any]]:
        for text in self.text_stream:
            yield self._shaper.chunk(text, None)
        yield self._shaper.final(self.text_stream.blocked)

    def __iter__(self) -> OpenAIGuardedStream:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()
        self.text_stream.close()

    @property
    def verdict(self) -> Verdict:
        return self.text_stream.verdict

    @property
    def blocked(self) -> bool:
        return self.text_stream.blocked

    @property
    def released_text(self) -> str:
        return self.text_stream.released_text


class AsyncOpenAIGuardedStream(AsyncIterator[dict[str, Any]]):
    """Async twin of :class:`OpenAIGuardedStream` (e.g. over ``AsyncOpenAI`` streams)."""

    def __init__(self, guard: Guard, chunks: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None) -> None:
        self._shaper = _ChunkShaper()
        self.text_stream = AsyncGuardedStream(
            guard.session(prompt), chunks, on_block=guard._on_block(on_block), message=guard.policy.on_block.message, text_of=self._shaper.text_of
        )
        self._agen = self._run()

    async def _run(self) -> AsyncIterator[dict[str, Any]]:
        async for text in self.text_stream:
            yield self._shaper.chunk(text, None)
        yield self._shaper.final(self.text_stream.blocked)

    def __aiter__(self) -> AsyncOpenAIGuardedStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        await self._agen.aclose()
        await self.text_stream.aclose()

    @property
    def verdict(self) -> Verdict:
        return self.text_stream.verdict

    @property
    def blocked(self) -> bool:
        return self.text_stream.blocked

    @property
    def released_text(self) -> str:
        return self.text_stream.released_text


def guard_openai_stream(guard: Guard, chunks: Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None) -> OpenAIGuardedStream:
    """Guard a sync OpenAI-style chunk stream (``client.chat.completions.create(stream=True)``)."""
    return OpenAIGuardedStream(guard, chunks, prompt, on_block)


def aguard_openai_stream(
    guard: Guard, chunks: AsyncIterable[Any] | Iterable[Any], prompt: str | None = None, on_block: OnBlockMode | None = None
) -> AsyncOpenAIGuardedStream:
    """Guard an async OpenAI-style chunk stream."""
    return AsyncOpenAIGuardedStream(guard, chunks, prompt, on_block)
