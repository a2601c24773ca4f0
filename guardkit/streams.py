"""Drivers that put a :class:`StreamSession` in the path of a token stream.

``GuardedStream`` wraps any iterable of text deltas, ``AsyncGuardedStream`` any
async (or plain) iterable, running model inference in a worker thread so the
event loop never blocks. Both close the upstream generator as soon as the guard
blocks or the consumer stops early, so the LLM stops spending compute.
"""

from __future__ import annotations

import inspect
from concurrent.futures import Executor
from typing import Any, AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Literal

from guardkit.errors import StreamBlocked
from guardkit.session import StreamSession
from guardkit.verdict import Blocked, Event, Released, Retracted, Verdict

__all__ = ["AsyncGuardedStream", "GuardedStream", "OnBlockMode"]

OnBlockMode = Literal["replace", "raise"]
TextOf = Callable[[Any], "str | None"]


def _separated(released: str, separator: str, message: str) -> str:
    """``message`` preceded by ``separator`` when text was released and does not already end with it."""
    return separator + message if separator and released and not released.endswith(separator) else message


def _identity(chunk: Any) -> str | None:
    return chunk  # type: ignore[no-any-return]  # non-str is rejected by StreamSession.feed


class _StreamState:
    """What both drivers expose after (or during) iteration."""

    def __init__(self, session: StreamSession, on_block: OnBlockMode, message: str) -> None:
        self.session = session
        self.on_block: OnBlockMode = on_block
        self.message = message
        self.retracted_from: int | None = None
        self.upstream_exhausted = False

    @property
    def verdict(self) -> Verdict:
        """The response verdict (or the prompt's, if the prompt was blocked)."""
        return self.session.verdict

    @property
    def prompt_verdict(self) -> Verdict | None:
        return self.session.prompt_verdict

    @property
    def blocked(self) -> bool:
        return self.session.blocked

    @property
    def released_text(self) -> str:
        return self.session.released_text

    def _outputs(self, events: list[Event]) -> tuple[list[str], Verdict | None]:
        texts: list[str] = []
        blocked: Verdict | None = None
        for event in events:
            if isinstance(event, Released):
                texts.append(event.text)
            elif isinstance(event, Retracted):
                self.retracted_from = event.char_offset
            elif isinstance(event, Blocked):
                blocked = event.verdict
        return texts, blocked

    def _blocked_outcome(self, verdict: Verdict) -> str:
        """The replacement message to yield, or raise StreamBlocked.

        After released text, the message starts with the policy's ``on_block.separator``
        (a newline by default), so it is never glued to the last released word.
        """
        if self.on_block == "raise":
            raise StreamBlocked(verdict, self.session.released_text)
        if verdict.source == "prompt":
            return self.session.policy.prompt.message
        return _separated(self.session.released_text, self.session.policy.on_block.separator, self.message)


class GuardedStream(_StreamState, Iterator[str]):
    """Iterate to receive released text; afterwards read ``.verdict`` and ``.blocked``.

    On block it closes the upstream iterator, then yields the policy's message
    once (``on_block="replace"``) or raises :class:`~guardkit.StreamBlocked`
    (``on_block="raise"``), always after all released text.
    """

    def __init__(self, session: StreamSession, chunks: Iterable[Any], *, on_block: OnBlockMode, message: str, text_of: TextOf = _identity) -> None:
        super().__init__(session, on_block, message)
        self._chunks = chunks
        self._text_of = text_of
        self._upstream: Iterator[Any] | None = None
        self._gen = self._run()

    def __iter__(self) -> GuardedStream:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        """Stop early: closes the upstream generator and frees the session."""
        self._gen.close()
        self._close_upstream()
        self.session.close()

    def __enter__(self) -> GuardedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _close_upstream(self) -> None:
        upstream = self._upstream if self._upstream is not None else self._chunks
        close = getattr(upstream, "close", None)
        if callable(close):
            close()

    def _run(self) -> Iterator[str]:
        session = self.session
        try:
            texts, blocked = self._outputs(session.start())
            yield from texts
            if blocked is None:
                self._upstream = iter(self._chunks)
                for chunk in self._upstream:
                    text = self._text_of(chunk)
                    if text is None:
                        continue
                    texts, blocked = self._outputs(session.feed(text))
                    yield from texts
                    if blocked is not None:
                        break
                else:
                    self.upstream_exhausted = True
                    texts, blocked = self._outputs(session.finish())
                    yield from texts
            if blocked is not None:
                self._close_upstream()
                yield self._blocked_outcome(blocked)
        finally:
            if not self.upstream_exhausted:
                self._close_upstream()
            session.close()


class AsyncGuardedStream(_StreamState, AsyncIterator[str]):
    """The async twin of :class:`GuardedStream`.

    Judging runs on the event loop; each model step is awaited (on the batch
    scheduler when the Guard batches, else in a worker thread), so the loop is
    never blocked by inference.
    """

    def __init__(
        self,
        session: StreamSession,
        chunks: AsyncIterable[Any] | Iterable[Any],
        *,
        on_block: OnBlockMode,
        message: str,
        text_of: TextOf = _identity,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(session, on_block, message)
        self._chunks = chunks
        self._text_of = text_of
        if executor is not None:  # where the session's model steps run when it has no batch scheduler
            session.executor = executor
        self._agen = self._run()

    def __aiter__(self) -> AsyncGuardedStream:
        return self

    async def __anext__(self) -> str:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Stop early: closes the upstream (async) generator and frees the session."""
        await self._agen.aclose()
        await self._close_upstream()
        self.session.close()

    async def __aenter__(self) -> AsyncGuardedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _close_upstream(self) -> None:
        for name in ("aclose", "close"):
            closer = getattr(self._chunks, name, None)
            if callable(closer):
                result = closer()
                if inspect.isawaitable(result):
                    await result
                return

    async def _iterate_upstream(self) -> AsyncIterator[Any]:
        if hasattr(self._chunks, "__aiter__"):
            async for chunk in self._chunks:  # type: ignore[union-attr]
                yield chunk
        else:
            for chunk in self._chunks:  # type: ignore[union-attr]
                yield chunk

    async def _run(self) -> AsyncIterator[str]:
        session = self.session
        try:
            texts, blocked = self._outputs(await session.astart())
            for text in texts:
                yield text
            if blocked is None:
                upstream = self._iterate_upstream()
                try:
                    async for chunk in upstream:
                        text = self._text_of(chunk)
                        if text is None:
                            continue
                        texts, blocked = self._outputs(await session.afeed(text))
                        for released in texts:
                            yield released
                        if blocked is not None:
                            break
                    else:
                        self.upstream_exhausted = True
                        texts, blocked = self._outputs(await session.afinish())
                        for released in texts:
                            yield released
                finally:
                    await upstream.aclose()
            if blocked is not None:
                await self._close_upstream()
                yield self._blocked_outcome(blocked)
        finally:
            if not self.upstream_exhausted:
                await self._close_upstream()
            session.close()
