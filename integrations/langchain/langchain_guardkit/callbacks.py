"""Callback handlers that run guardkit inside a LangChain model run.

``GuardkitCallbackHandler`` (sync) and ``AsyncGuardkitCallbackHandler`` (async)
check the prompt when a chat model or LLM run starts, feed every streamed token
to a :class:`guardkit.StreamSession` and raise :class:`guardkit.StreamBlocked`
when the policy blocks. Both set ``raise_error = True`` so LangChain re-raises
the exception instead of logging it; the provider's stream then stops.

Limits (why :class:`~langchain_guardkit.GuardkitRunnable` exists):

* A callback cannot withhold text. LangChain calls ``on_llm_new_token`` just
  before it yields a chunk, so raising keeps *that* chunk from the consumer,
  but every earlier chunk has already been handed out, including the start of
  the harmful span (the guard needs the following tokens to decide, and the
  policy's debounce holds the decision back by a few more). To show users only
  judged text, pass ``on_release`` and display what it receives, or wrap the
  model with :func:`~langchain_guardkit.guard_runnable`.
* Providers are supposed to call ``on_llm_new_token`` before yielding each
  chunk; integrations that yield first leak one more chunk per decision, and
  ones that never call it are only checked at ``on_llm_end``.
* An async handler cannot stop a *sync* run: LangChain runs async handlers of a
  sync run in a private event loop and swallows their exceptions even with
  ``raise_error``. Use the sync handler for ``invoke``/``stream`` and the async
  one for ``ainvoke``/``astream`` (the sync handler also works in async runs,
  where LangChain calls it in a worker thread).
* Non-streaming calls (``invoke`` on a model that does not stream) produce no
  tokens; the whole response is then judged at ``on_llm_end`` and a block
  raises there, after the provider has already been paid for the response.

* A block is reported, not logged as a failure: LangChain logs every exception
  a handler raises as "Error in <handler>.<event> callback"; this module filters
  that record out for :class:`guardkit.StreamBlocked` (the run still stops, and
  ``langchain_guardkit`` logs the block at INFO with the verdict). Pass
  ``on_block`` to receive ``(verdict, run_id)`` for each blocked run.

One handler instance may serve many concurrent runs: state lives in a dict
keyed by run id behind a lock.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from guardkit import Guard, StreamBlocked, StreamSession
from guardkit.verdict import Blocked, Event, Flagged, Released, Verdict
from langchain_guardkit._messages import ModelRunsOnly, content_text, last_human_text

__all__ = ["AsyncGuardkitCallbackHandler", "GuardkitCallbackHandler", "OnBlock", "OnRelease"]

logger = logging.getLogger("langchain_guardkit")


class _BlockIsNotACallbackError(logging.Filter):
    """Drops LangChain's "Error in <handler>.<event> callback: StreamBlocked(...)" warning: a block is the handler's job."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            str(record.msg).startswith("Error in ")
            and isinstance(args, tuple)
            and len(args) == 3
            and isinstance(args[2], str)
            and args[2].startswith(f"{StreamBlocked.__name__}(")
        )


_LANGCHAIN_CALLBACK_LOGGER = logging.getLogger("langchain_core.callbacks.manager")
if not any(isinstance(f, _BlockIsNotACallbackError) for f in _LANGCHAIN_CALLBACK_LOGGER.filters):
    _LANGCHAIN_CALLBACK_LOGGER.addFilter(_BlockIsNotACallbackError())

#: ``on_release(text, run_id)``: called with each piece of judged (released) text of a run.
OnRelease = Callable[[str, UUID], "Awaitable[None] | None"]
#: ``on_block(verdict, run_id)``: called once when a run is blocked (its prompt or its response).
OnBlock = Callable[[Verdict, UUID], None]


@dataclass
class _Run:
    session: StreamSession
    fed: bool = False
    blocked: Verdict | None = None


class _RunRegistry:
    """Per-run guard sessions, keyed by run id, safe across threads."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()

    def open(self, run_id: UUID, prompt: str | None) -> _Run:
        run = _Run(self.guard.session(prompt))
        with self._lock:
            old = self._runs.pop(run_id, None)
            self._runs[run_id] = run
        if old is not None:  # pragma: no cover - a reused run id
            old.session.close()
        return run

    def get_or_open(self, run_id: UUID) -> _Run:
        with self._lock:
            run = self._runs.get(run_id)
        return run if run is not None else self.open(run_id, None)

    def pop(self, run_id: UUID) -> _Run | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def discard(self, run_id: UUID) -> None:
        run = self.pop(run_id)
        if run is not None:
            run.session.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


def _chat_prompt(messages: Sequence[Sequence[BaseMessage]]) -> str | None:
    # LangChain starts one run per conversation, so ``messages`` holds one list
    return last_human_text(messages[-1]) if messages else None


def _llm_prompt(prompts: Sequence[str]) -> str | None:
    return prompts[-1] if prompts else None


def _token_text(token: Any, chunk: Any) -> str:
    if isinstance(token, str) and token:
        return token
    if token and not isinstance(token, str):  # content blocks passed as the token
        return content_text(token)
    message = getattr(chunk, "message", None)
    if message is not None:
        return content_text(message.content)
    return ""


def _response_text(response: LLMResult) -> str:
    if not response.generations or not response.generations[0]:
        return ""
    generation = response.generations[0][0]
    message = getattr(generation, "message", None)
    if message is not None:
        return content_text(message.content)
    return generation.text or ""


def _split(events: list[Event]) -> tuple[list[str], Verdict | None]:
    texts: list[str] = []
    blocked: Verdict | None = None
    for event in events:
        if isinstance(event, Released):
            texts.append(event.text)
        elif isinstance(event, Blocked):
            blocked = event.verdict
        elif isinstance(event, Flagged):
            logger.info("guardkit flagged a %s: %s", event.verdict.source, event.verdict.to_dict())
    return texts, blocked


class _HandlerBase(ModelRunsOnly):
    raise_error: bool = True

    def __init__(self, guard: Guard, *, on_release: OnRelease | None = None, on_block: OnBlock | None = None) -> None:
        self.guard = guard
        self.on_release = on_release
        self.on_block = on_block
        self._runs = _RunRegistry(guard)

    @property
    def active_runs(self) -> int:
        """How many runs currently hold a guard session (0 once every run has ended)."""
        return len(self._runs)

    def _accept_token(self, run_id: UUID, token: str, chunk: Any) -> tuple[_Run, str] | None:
        """The run and the text to feed for a new token; None when it carries no text."""
        run = self._runs.get_or_open(run_id)
        if run.blocked is not None:
            raise StreamBlocked(run.blocked, run.session.released_text)
        text = _token_text(token, chunk)
        if not text:
            return None
        run.fed = True
        return run, text

    def _blocked_error(self, run_id: UUID, run: _Run, verdict: Verdict) -> StreamBlocked:
        run.blocked = verdict
        run.session.close()
        logger.info("guardkit blocked the %s of run %s: %s", verdict.source, run_id, verdict.to_dict())
        if self.on_block is not None:
            self.on_block(verdict, run_id)
        if verdict.source == "prompt":
            self._runs.pop(run_id)  # the model is not called, so no end/error event follows
        return StreamBlocked(verdict, run.session.released_text)


class GuardkitCallbackHandler(_HandlerBase, BaseCallbackHandler):
    """Sync handler: stops a sync (or async) model run when guardkit blocks it.

    Args:
        guard: the :class:`guardkit.Guard` (model + policy) to apply.
        on_release: optional ``callable(text, run_id)`` receiving each piece of
            judged text, in order: display this instead of the raw tokens to
            show users nothing the guard has not cleared.

    Pass it as a callback, e.g. ``model.stream(msgs, config={"callbacks": [handler]})``.
    A block raises :class:`guardkit.StreamBlocked` out of the LangChain call.
    """

    def __init__(self, guard: Guard, *, on_release: Callable[[str, UUID], None] | None = None, on_block: OnBlock | None = None) -> None:
        super().__init__(guard, on_release=on_release, on_block=on_block)

    def _emit(self, texts: list[str], run_id: UUID) -> None:
        if self.on_release is not None:
            for text in texts:
                self.on_release(text, run_id)

    def _start(self, run_id: UUID, prompt: str | None) -> None:
        run = self._runs.open(run_id, prompt)
        texts, blocked = _split(run.session.start())
        self._emit(texts, run_id)
        if blocked is not None:
            raise self._blocked_error(run_id, run, blocked)

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any) -> None:
        self._start(run_id, _chat_prompt(messages))

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        self._start(run_id, _llm_prompt(prompts))

    def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        accepted = self._accept_token(run_id, token, chunk)
        if accepted is None:
            return
        run, text = accepted
        texts, blocked = _split(run.session.feed(text))
        self._emit(texts, run_id)
        if blocked is not None:
            raise self._blocked_error(run_id, run, blocked)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id)
        if run is None or run.blocked is not None:
            return
        try:
            events: list[Event] = []
            if not run.fed:  # a non-streaming call: judge the whole response now
                events += run.session.feed(_response_text(response))
            events += run.session.finish()
        finally:
            run.session.close()
        texts, blocked = _split(events)
        self._emit(texts, run_id)
        if blocked is not None:
            raise self._blocked_error(run_id, run, blocked)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._runs.discard(run_id)


class AsyncGuardkitCallbackHandler(_HandlerBase, AsyncCallbackHandler):
    """Async handler for ``ainvoke``/``astream``/``abatch``; model inference runs in a worker thread.

    It cannot stop a sync run (LangChain swallows async-handler errors there);
    use :class:`GuardkitCallbackHandler` for sync calls. ``on_release`` may be a
    plain function or a coroutine function.
    """

    def __init__(self, guard: Guard, *, on_release: OnRelease | None = None, on_block: OnBlock | None = None) -> None:
        super().__init__(guard, on_release=on_release, on_block=on_block)

    async def _emit(self, texts: list[str], run_id: UUID) -> None:
        if self.on_release is not None:
            for text in texts:
                result = self.on_release(text, run_id)
                if inspect.isawaitable(result):
                    await result

    async def _start(self, run_id: UUID, prompt: str | None) -> None:
        run = self._runs.open(run_id, prompt)
        texts, blocked = _split(await run.session.astart())
        await self._emit(texts, run_id)
        if blocked is not None:
            raise self._blocked_error(run_id, run, blocked)

    async def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any) -> None:
        await self._start(run_id, _chat_prompt(messages))

    async def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        await self._start(run_id, _llm_prompt(prompts))

    async def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        accepted = self._accept_token(run_id, token, chunk)
        if accepted is None:
            return
        run, text = accepted
        texts, blocked = _split(await run.session.afeed(text))
        await self._emit(texts, run_id)
        if blocked is not None:
            raise self._blocked_error(run_id, run, blocked)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id)
        if run is None or run.blocked is not None:
            return

        try:
            events: list[Event] = []
            if not run.fed:
                events += await run.session.afeed(_response_text(response))
            events += await run.session.afinish()
        finally:
            run.session.close()
        texts, blocked = _split(events)
        await self._emit(texts, run_id)
        if blocked is not None:
            raise self._blocked_error(run_id, run, blocked)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._runs.discard(run_id)
