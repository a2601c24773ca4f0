"""Drivers that put a :class:`StreamSession` in the path of a token stream.

``GuardedStream`` wraps any iterable of text deltas, ``AsyncGuardedStream`` any
async (or plain) iterable, running model inference in a worker thread so the
event loop never blocks. Both close the upstream iterator as soon as the guard
blocks or the consumer stops early, so the LLM stops spending compute.

A stream the consumer drops without closing it (a client that disconnected, a
``break``) is cleaned up as soon as it becomes unreachable, without waiting for
a garbage-collection pass: the driver's generator never refers back to the
stream object (it runs on a separate :class:`_Core`), so there is no reference
cycle, and dropping the stream finalizes the generator, which closes the
upstream and the session (freeing its slot).
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
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


def _identity(chunk: Any) -> str:
    if not isinstance(chunk, str):
        raise TypeError(f"text deltas must be str, got {type(chunk).__name__}")
    return chunk


class _Core:
    """A stream's state, shared by the stream object and its driver generator (which never sees the stream)."""

    def __init__(self, session: StreamSession, chunks: Any, on_block: OnBlockMode, message: str, text_of: TextOf) -> None:
        self.session = session
        self.chunks = chunks
        self.text_of = text_of
        self.on_block: OnBlockMode = on_block
        self.message = message
        self.retracted_from: int | None = None
        self.upstream_exhausted = False
        self.upstream: Any = None  # the iterator actually read (iter()/aiter() of chunks)
        self.upstream_closed = False

    def outputs(self, events: list[Event]) -> tuple[list[str], Verdict | None]:
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

    def blocked_outcome(self, verdict: Verdict) -> str:
        """The replacement message to yield, or raise StreamBlocked.

        After released text, the message starts with the policy's ``on_block.separator``
        (a newline by default), so it is never glued to the last released word.
        """
        if self.on_block == "raise":
            raise StreamBlocked(verdict, self.session.released_text)
        if verdict.source == "prompt":
            return self.session.policy.prompt.message
        return _separated(self.session.released_text, self.session.policy.on_block.separator, self.message)

    def _closers(self) -> list[Any]:
        """The iterator read, then the iterable given if it is another object (an SDK stream and its iterator)."""
        objects = [self.upstream] if self.upstream is not None else []
        if all(self.chunks is not o for o in objects):
            objects.append(self.chunks)
        return objects

    def close_upstream(self) -> None:
        self.upstream_closed = True
        for upstream in self._closers():
            close = getattr(upstream, "close", None)
            if callable(close):
                close()

    async def aclose_upstream(self) -> None:
        self.upstream_closed = True
        for upstream in self._closers():
            for name in ("aclose", "close"):
                closer = getattr(upstream, name, None)
                if callable(closer):
                    result = closer()
                    if inspect.isawaitable(result):
                        await result
                    break


class _StreamState:
    """What both drivers expose after (or during) iteration."""

    _core: _Core

    @property
    def session(self) -> StreamSession:
        return self._core.session

    @property
    def on_block(self) -> OnBlockMode:
        return self._core.on_block

    @property
    def message(self) -> str:
        return self._core.message

    @property
    def retracted_from(self) -> int | None:
        return self._core.retracted_from

    @property
    def upstream_exhausted(self) -> bool:
        return self._core.upstream_exhausted

    @property
    def verdict(self) -> Verdict:
        """The response verdict (or the prompt's, if the prompt was blocked)."""
        return self._core.session.verdict

    @property
    def prompt_verdict(self) -> Verdict | None:
        return self._core.session.prompt_verdict

    @property
    def blocked(self) -> bool:
        return self._core.session.blocked

    @property
    def released_text(self) -> str:
        return self._core.session.released_text


class GuardedStream(_StreamState, Iterator[str]):
    """Iterate to receive released text; afterwards read ``.verdict`` and ``.blocked``.

    On block it closes the upstream iterator, then yields the policy's message
    once (``on_block="replace"``) or raises :class:`~guardkit.StreamBlocked`
    (``on_block="raise"``), always after all released text.
    """

    def __init__(self, session: StreamSession, chunks: Iterable[Any], *, on_block: OnBlockMode, message: str, text_of: TextOf = _identity) -> None:
        self._core = _Core(session, chunks, on_block, message, text_of)
        self._gen = _run(self._core)

    def __iter__(self) -> GuardedStream:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        """Stop early: closes the upstream iterator and frees the session."""
        self._gen.close()
        if not self._core.upstream_closed:
            self._core.close_upstream()
        self._core.session.close()

    def __enter__(self) -> GuardedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _run(core: _Core) -> Iterator[str]:
    session = core.session
    try:
        texts, blocked = core.outputs(session.start())
        yield from texts
        if blocked is None:
            core.upstream = iter(core.chunks)
            for chunk in core.upstream:
                texts, blocked = core.outputs(session.feed(_text(core, chunk)))
                yield from texts
                if blocked is not None:
                    break
            else:
                core.upstream_exhausted = True
                texts, blocked = core.outputs(session.finish())
                yield from texts
        if blocked is not None:
            core.close_upstream()
            yield core.blocked_outcome(blocked)
    finally:
        try:
            if not (core.upstream_exhausted or core.upstream_closed):
                core.close_upstream()
        finally:
            session.close()  # even if closing the upstream raised


def _text(core: _Core, chunk: Any) -> str:
    """The chunk's text ('' when a provider chunk carries none)."""
    text = core.text_of(chunk)
    return "" if text is None else text


class AsyncGuardedStream(_StreamState, AsyncIterator[str]):
    """The async twin of :class:`GuardedStream`.

    Judging runs on the event loop; each model step is awaited (on the batch
    scheduler when the Guard batches, else in a worker thread), so the loop is
    never blocked by inference. Dropped without ``aclose()``, it frees its
    session at once and its async generator is closed by the event loop
    (closing the upstream).
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
        if executor is not None:  # where the session's model steps run when it has no batch scheduler
            session.executor = executor
        self._core = _Core(session, chunks, on_block, message, text_of)
        self._agen = _arun(self._core)
        # as soon as this stream is unreachable its session's slot comes back and (on the event
        # loop's thread) its upstream is closed, at once when its aclose() awaits nothing
        weakref.finalize(self, _dropped, self._core).atexit = False

    def __aiter__(self) -> AsyncGuardedStream:
        return self

    async def __anext__(self) -> str:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Stop early: closes the upstream (async) iterator and frees the session."""
        await self._agen.aclose()
        if not self._core.upstream_closed:
            await self._core.aclose_upstream()
        self._core.session.close()

    async def __aenter__(self) -> AsyncGuardedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _arun(core: _Core) -> AsyncIterator[str]:
    session = core.session
    try:
        texts, blocked = core.outputs(await session.astart())
        for text in texts:
            yield text
        if blocked is None:
            if hasattr(core.chunks, "__aiter__"):
                upstream = core.upstream = core.chunks.__aiter__()
                next_chunk = upstream.__anext__
            else:
                sync_upstream = core.upstream = iter(core.chunks)
                next_chunk = _sync_next(sync_upstream)
            while True:
                try:
                    chunk = await next_chunk()
                except StopAsyncIteration:
                    core.upstream_exhausted = True
                    texts, blocked = core.outputs(await session.afinish())
                    for released in texts:
                        yield released
                    break
                texts, blocked = core.outputs(await session.afeed(_text(core, chunk)))
                for released in texts:
                    yield released
                if blocked is not None:
                    break
        if blocked is not None:
            await core.aclose_upstream()
            yield core.blocked_outcome(blocked)
    finally:
        try:
            if not (core.upstream_exhausted or core.upstream_closed):
                await core.aclose_upstream()
        finally:
            session.close()  # even if closing the upstream raised


def _dropped(core: _Core) -> None:
    """An async stream became unreachable without aclose(): free its session, close its upstream.

    Runs as a finalizer, so it never raises. The upstream's ``aclose()`` is run
    here as far as it goes without waiting; the rest (if it awaits) continues on
    the running loop. Off the loop's thread only the session is freed (asyncio
    then closes the stream's async generator, which closes the upstream).
    """
    try:
        core.session.close()
        if core.upstream_exhausted or core.upstream_closed:
            return
        loop = asyncio.get_running_loop()
    except Exception:  # noqa: BLE001 - no running loop here, or a broken session: nothing more to do
        return
    for upstream in core._closers():
        closer = getattr(upstream, "aclose", None) or getattr(upstream, "close", None)
        if not callable(closer):
            continue
        try:
            result = closer()
        except Exception:  # noqa: BLE001 - a finalizer must not raise
            continue
        if inspect.iscoroutine(result) or type(result).__name__ == "async_generator_athrow":
            _run_detached(loop, result)  # a coroutine or an async generator's aclose(): step it now
        elif inspect.isawaitable(result):
            loop.create_task(_await(result))


async def _await(awaitable: Any) -> None:
    await awaitable


def _run_detached(loop: asyncio.AbstractEventLoop, coro: Any) -> None:
    """Step ``coro`` now; if it waits, resume it on ``loop`` when what it waits for is done."""
    try:
        waiting = coro.send(None)
    except BaseException:  # noqa: BLE001 - finished (StopIteration) or failed: either way it is over
        return
    if isinstance(waiting, asyncio.Future):
        waiting.add_done_callback(lambda _: _run_detached(loop, coro))
    else:  # a bare yield (asyncio.sleep(0)): go on at the loop's next turn
        loop.call_soon(_run_detached, loop, coro)


def _sync_next(iterator: Iterator[Any]) -> Callable[[], Any]:
    async def next_chunk() -> Any:
        try:
            return next(iterator)
        except StopIteration:
            raise StopAsyncIteration from None

    return next_chunk
