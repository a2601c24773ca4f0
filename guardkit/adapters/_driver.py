"""One driver under every provider adapter: guarded channels in, provider items out.

A provider stream is a sequence of *items* (chat chunks, Responses events,
Anthropic events). An item may carry text on one or more *channels* (a
choice's content, a tool call's arguments, a thinking block ...); each channel
gets its own :class:`~guardkit.StreamSession`. A :class:`Shaper` knows the
provider's format and only that:

- :meth:`Shaper.read` says which text an item carries on which channel and
  which channels it ends;
- :meth:`Shaper.rebuild` returns the item with each channel's text replaced by
  the text the guard released (every other field as the upstream sent it);
- :meth:`Shaper.block` returns the items that signal a block (the provider's
  own stop reason plus a ``guardkit`` field holding :meth:`GuardBlock.to_dict`).

The driver's logic is written once, as generators that yield the session calls
they need (``start``/``feed``/``finish``); :class:`ShapedStream` runs them with
blocking calls and :class:`AsyncShapedStream` awaits ``astart``/``afeed``/
``afinish``, as httpx runs one ``auth_flow`` under a sync and an async client.
Text reaches the consumer only from ``Released`` events; when a channel blocks,
every channel in its *scope* (a chat choice, or the whole response) is closed,
their later text is dropped, and the upstream is closed once no scope is left
that could still release text.
"""

from __future__ import annotations

import copy
import inspect
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    TypeVar,
)

from guardkit.errors import GuardConfigError, StreamBlocked
from guardkit.session import StreamSession
from guardkit.verdict import RISK_LEVELS, Blocked, Event, Flagged, Released, Retracted, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.guard import Guard

__all__ = ["ALL", "AsyncShapedStream", "Channel", "ChannelRules", "GuardBlock", "Read", "ShapedStream", "Shaper"]

T = TypeVar("T")
Key = Hashable
#: Which kind of text a channel carries (the names the policy's channels will use).
Channel = Literal["answer", "refusal", "reasoning", "tool_arguments"]
_CHANNEL_NAMES = ("answer", "refusal", "reasoning", "tool_arguments", "other")
#: The scope of a block that ends the whole response.
ALL: Hashable = "*"

#: Overrides of the policy's ``channels`` section, per channel kind (``answer``, ``refusal``,
#: ``reasoning``, ``tool_arguments``, ``other``); a kind given here replaces its policy rule whole.
#: A value is ``"judge"`` (the Guard's policy), ``"drop"`` (never shown, not judged), ``"pass"``
#: (shown unjudged: an explicit opt-out), a policy (name, path or :class:`~guardkit.Policy`) to
#: judge that channel with instead, or a mapping ``{"policy": <any of those>, "on_block": "halt" |
#: "drop" | "replace", "message": str}``: ``"halt"`` (the default) stops the channel's scope (the
#: chat choice, or the whole response), ``"drop"`` (also spelled ``"channel"``) stops that channel
#: alone, ``"replace"`` stops it alone and shows ``message`` (default: the policy's
#: ``on_block.message``) in it.
ChannelRules = Mapping[str, Any]
_Call = tuple[StreamSession, str, "str | None"]
_Steps = Generator[_Call, "list[Event]", Any]


@dataclass(frozen=True)
class GuardBlock:
    """The block signal every adapter emits, as its own item, after all released text.

    ``channel`` is the kind of text that was blocked (``"prompt"`` when the
    prompt was), ``message`` the policy's replacement message for the UI to
    show instead, ``retracted_from`` (pass-through policies only) the offset in
    that channel's text from which already-shown text must be withdrawn, ``key``
    the shaper's key of the blocked channel, ``scope`` what stopped with it (a
    chat choice, :data:`ALL`, or ``("channel", key)`` for a channel rule with
    ``on_block: drop`` or ``replace``: see :attr:`channel_only`), ``action`` the
    channel rule's ``on_block`` (``replace``: ``message`` follows in that
    channel's own text).
    """

    verdict: Verdict
    message: str
    channel: str
    scope: Hashable = ALL
    retracted_from: int | None = None
    key: Hashable = None
    action: Literal["halt", "drop", "replace"] = "halt"

    @property
    def channel_only(self) -> bool:
        """True when only this channel stopped (an ``on_block: "channel"`` rule); the response goes on."""
        return isinstance(self.scope, tuple) and len(self.scope) == 2 and self.scope[0] == "channel"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable ``guardkit`` field adapters attach to their block item."""
        return {
            "blocked": True,
            "channel": self.channel,
            "channel_only": self.channel_only,
            "action": self.action,
            "message": self.message,
            "retracted_from": self.retracted_from,
            "verdict": self.verdict.to_dict(),
        }


@dataclass
class Read:
    """What an item carries: ``(channel key, text delta)`` pairs and the channel keys it ends."""

    texts: list[tuple[Key, str]] = field(default_factory=list)
    ends: list[Key] = field(default_factory=list)
    end_all: bool = False


class Shaper(Generic[T]):
    """How one provider's items carry text. Subclass it; the driver does the rest."""

    #: the channel whose released text ``released_text`` reports
    primary: Key = None
    #: read the upstream's first item (for its ids) when the prompt is blocked; False: never start the upstream
    peek_on_prompt_block: bool = True

    def read(self, item: T) -> Read:
        """The text deltas ``item`` carries per channel and the channels it ends."""
        raise NotImplementedError

    def channel(self, key: Key) -> str:
        """The kind of text channel ``key`` carries (``"answer"``, ``"reasoning"`` ...)."""
        return "answer"

    def scope(self, key: Key) -> Hashable:
        """Channels that block together (a chat choice; :data:`ALL` for the whole response)."""
        return ALL

    def rebuild(self, item: T | None, released: dict[Key, str], finished: set[Key]) -> list[T]:
        """``item`` with its text replaced by ``released`` (per key); ``item=None``: new items for text released at the end.

        ``finished`` holds the keys judged to their end (cleanly) at this item.
        """
        raise NotImplementedError

    def block(self, signal: GuardBlock, like: T | None) -> list[T]:
        """Record that ``signal.scope`` is blocked; return the items that say so (``like``: an upstream item to copy ids from)."""
        raise NotImplementedError

    def halted(self) -> bool:
        """True once nothing more can be released (the upstream is then closed)."""
        return False


@dataclass(frozen=True)
class _Rule:
    """One channel kind's rule, resolved: ``mode`` judge | drop | pass, its own Guard (or None), on_block, message."""

    mode: str = "judge"
    guard: Guard | None = None
    on_block: str = "halt"
    message: str | None = None


#: the policy section each channel kind follows (refusals and unknown text are answers)
_POLICY_SECTION = {"answer": "answer", "refusal": "answer", "other": "answer", "reasoning": "reasoning", "tool_arguments": "tool_arguments"}
_ON_BLOCK_WORDS = {"halt": "halt", "drop": "drop", "channel": "drop", "replace": "replace"}


def resolve_rules(guard: Guard, overrides: ChannelRules | None = None) -> dict[str, _Rule]:
    """Each channel kind's rule: the Guard's policy ``channels`` section, then ``overrides`` (the adapters' ``channels=``)."""
    policy = guard.policy
    own: dict[str, Guard] = {}  # one Guard per policy section with its own thresholds
    rules: dict[str, _Rule] = {}
    for kind, section in _POLICY_SECTION.items():
        rule = getattr(policy.channels, section)
        mode = "drop" if not rule.shown else ("pass" if not rule.judged else "judge")
        channel_guard = None
        if mode == "judge" and rule.thresholds is not None:
            if section not in own:
                own[section] = guard.with_policy(policy.model_copy(update={"thresholds": rule.thresholds}))
            channel_guard = own[section]
        rules[kind] = _Rule(mode, channel_guard, rule.on_block, rule.message)
    for kind, value in (overrides or {}).items():
        if kind not in _CHANNEL_NAMES:
            raise GuardConfigError(f"unknown channel {kind!r}; channels are {', '.join(_CHANNEL_NAMES)}")
        on_block, message = "halt", None
        if isinstance(value, Mapping):
            unknown = set(value) - {"policy", "on_block", "message"}
            word = value.get("on_block", "halt")
            if unknown or word not in _ON_BLOCK_WORDS or not isinstance(value.get("message", ""), str):
                raise GuardConfigError(
                    f"channel rule for {kind!r}: keys are 'policy', 'on_block' ('halt', 'drop' or 'replace') and 'message', got {dict(value)!r}"
                )
            on_block, message = _ON_BLOCK_WORDS[word], value.get("message")
            value = value.get("policy", "judge")
        if isinstance(value, str) and value in ("judge", "drop", "pass"):
            rules[kind] = _Rule(value, None, on_block, message)
        else:  # judged with its own policy (thresholds, categories, debounce ...)
            rules[kind] = _Rule("judge", guard.with_policy(value), on_block, message)
    return rules


def _severity(v: Verdict) -> tuple[int, float]:
    return RISK_LEVELS.index(v.level), v.scores.get("unsafe", 0.0)


class _Core(Generic[T]):
    """The driver's logic: generators that yield session calls; shared by both drivers."""

    def __init__(self, guard: Guard, shaper: Shaper[T], prompt: str | None, on_block: str | None, channels: ChannelRules | None = None) -> None:
        mode = on_block if on_block is not None else guard.policy.on_block.mode
        if mode not in ("replace", "raise"):
            raise GuardConfigError(f"on_block must be 'replace' or 'raise', got {mode!r}")
        self.guard = guard
        self.rules: dict[str, _Rule] = resolve_rules(guard, channels)
        self.shaper = shaper
        self.prompt = prompt
        self.on_block = mode
        self.sessions: dict[Key, StreamSession] = {}
        self.blocks: list[GuardBlock] = []
        self.flags: list[Verdict] = []
        self.prompt_verdict: Verdict | None = None
        self.prompt_blocked = False
        self.raise_: StreamBlocked | None = None
        self._spare: StreamSession | None = None
        self._blocked_scopes: set[Hashable] = set()
        self._pending: list[T] = []

    # -- the steps ----------------------------------------------------------
    def start(self) -> _Steps:
        """Check the prompt once, before the upstream is read."""
        session = self.guard.session(self.prompt)
        self._spare = session
        events = yield session, "start", None
        self.prompt_verdict = session.prompt_verdict
        for event in events:
            if isinstance(event, Flagged):
                self.flags.append(event.verdict)
            elif isinstance(event, Blocked):
                self.prompt_blocked = True
                message = self.guard.policy.prompt.message
                self._signal(GuardBlock(event.verdict, message, "prompt", ALL), "")
        return None

    def prompt_block_items(self, like: T | None) -> list[T]:
        """The block items for a blocked prompt (``like``: the upstream's first item, never shown)."""
        if self.on_block == "raise":
            return []
        return self.shaper.block(self.blocks[0], like)

    def item(self, item: T | None) -> _Steps:
        """Judge one upstream item (``None``: the upstream ended) and return the items to yield."""
        shaper = self.shaper
        released: dict[Key, str] = {}
        finished: set[Key] = set()
        self._pending = []
        if item is not None:
            read = shaper.read(item)
            for key, text in read.texts:
                if not text or self._is_blocked(key):
                    continue
                mode = self._rule(key).mode
                if mode != "judge":  # "drop": never shown; "pass": shown unjudged (an explicit opt-out)
                    if mode == "pass":
                        released[key] = released.get(key, "") + text
                    continue
                session = self._session(key)
                events = yield session, "feed", text
                self._collect(key, events, released)
            ends = list(self.sessions) if read.end_all else [k for k in read.ends if k in self.sessions]
        else:
            ends = list(self.sessions)
        for key in ends:
            session = self.sessions[key]
            if session.finished or session.blocked or self._is_blocked(key):
                continue
            events = yield session, "finish", None
            self._collect(key, events, released)
            if not session.blocked:
                finished.add(key)
        out = shaper.rebuild(item, released, finished) if (item is not None or released or finished) else []
        return out + self._pending

    # -- internals ------------------------------------------------------------
    def _rule(self, key: Key) -> _Rule:
        return self.rules.get(self.shaper.channel(key)) or self.rules["answer"]

    def _scope(self, key: Key) -> Hashable:
        """The channel alone (``on_block: drop | replace`` rules), else the shaper's scope."""
        return ("channel", key) if self._rule(key).on_block != "halt" else self.shaper.scope(key)

    def _is_blocked(self, key: Key) -> bool:
        blocked = self._blocked_scopes
        return ALL in blocked or self.shaper.scope(key) in blocked or ("channel", key) in blocked

    def _session(self, key: Key) -> StreamSession:
        session = self.sessions.get(key)
        if session is None:
            own = self._rule(key).guard
            if own is not None:
                session = own.session(self.prompt)
            elif self._spare is not None:
                session, self._spare = self._spare, None
            else:
                session = self.guard.session(self.prompt)
                session.record_prompt = False  # the first channel's session recorded this prompt check
            session.channel = self.shaper.channel(key)  # for its decision record
            self.sessions[key] = session
        return session

    def _collect(self, key: Key, events: list[Event], released: dict[Key, str]) -> None:
        retracted: int | None = None
        for event in events:
            if isinstance(event, Released):
                released[key] = released.get(key, "") + event.text
            elif isinstance(event, Flagged):
                if event.verdict.source == "response":  # the prompt's flag was counted once, at start
                    self.flags.append(event.verdict)
            elif isinstance(event, Retracted):
                retracted = event.char_offset
            elif isinstance(event, Blocked):
                rule = self._rule(key)
                message = rule.message if rule.message is not None else self.guard.policy.on_block.message
                signal = GuardBlock(event.verdict, message, self.shaper.channel(key), self._scope(key), retracted, key, rule.on_block)
                self._signal(signal, self.sessions[key].released_text)

    def _signal(self, signal: GuardBlock, released_text: str) -> None:
        self.blocks.append(signal)
        self._blocked_scopes.add(signal.scope)
        for key, session in self.sessions.items():
            if signal.scope == ALL or self._scope(key) == signal.scope:
                session.close()
        if self.on_block == "raise" and not signal.channel_only:  # a channel-only block never ends the response
            if self.raise_ is None:
                self.raise_ = StreamBlocked(signal.verdict, released_text)
            self.shaper.block(signal, None)  # the shaper must still drop the scope's text
        elif signal.channel != "prompt":
            self._pending += self.shaper.block(signal, None)
            if signal.action == "replace":  # the message, in the channel's own text, after its signal
                separator = self.guard.policy.on_block.separator if released_text else ""
                self._pending += self.shaper.rebuild(None, {signal.key: separator + signal.message}, set())

    def halted(self) -> bool:
        return ALL in self._blocked_scopes or self.shaper.halted()

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        if self._spare is not None:
            self._spare.close()

    # -- what both drivers expose -----------------------------------------------
    @property
    def verdict(self) -> Verdict:
        """The first block's verdict, else the most severe channel verdict (or prompt flag)."""
        if self.blocks:
            return self.blocks[0].verdict
        verdicts = [s.verdict for s in self.sessions.values()] + self.flags
        if not verdicts:
            return Verdict(level="safe", action="allow", policy=self.guard.policy.name)
        return max(verdicts, key=_severity)


class _Exposed(Generic[T]):
    _core: _Core[T]

    @property
    def blocked(self) -> bool:
        """True once any channel (or the prompt) was blocked."""
        return bool(self._core.blocks)

    @property
    def blocks(self) -> list[GuardBlock]:
        """Every block signal so far (one per blocked scope)."""
        return list(self._core.blocks)

    @property
    def verdict(self) -> Verdict:
        return self._core.verdict

    @property
    def prompt_verdict(self) -> Verdict | None:
        return self._core.prompt_verdict

    @property
    def flags(self) -> list[Verdict]:
        return list(self._core.flags)

    @property
    def sessions(self) -> dict[Key, StreamSession]:
        """The session of each channel key (closed once the stream is done)."""
        return dict(self._core.sessions)

    @property
    def released_text(self) -> str:
        """The released text of the shaper's primary channel (a chat stream's first choice, ...)."""
        return self.released(self._core.shaper.primary)

    def released(self, key: Key) -> str:
        """The released text of channel ``key`` ("" if it carried none)."""
        session = self._core.sessions.get(key)
        return session.released_text if session is not None else ""

    @property
    def shaper(self) -> Shaper[T]:
        return self._core.shaper


def _run_sync(steps: _Steps) -> Any:
    try:
        call = next(steps)
        while True:
            session, op, text = call
            if op == "feed":
                events = session.feed(text)  # type: ignore[arg-type]
            elif op == "finish":
                events = session.finish()
            else:
                events = session.start()
            call = steps.send(events)
    except StopIteration as done:
        return done.value


async def _run_async(steps: _Steps) -> Any:
    try:
        call = next(steps)
        while True:
            session, op, text = call
            if op == "feed":
                events = await session.afeed(text)  # type: ignore[arg-type]
            elif op == "finish":
                events = await session.afinish()
            else:
                events = await session.astart()
            call = steps.send(events)
    except StopIteration as done:
        return done.value


class _Pipe(Generic[T]):
    """The upstream side of a stream: what was given, the iterator read, whether it ran out.

    The driver generators run on a ``_Pipe`` and a ``_Core``, never on the stream object, so a
    stream the consumer drops (a ``break``, a client that went away) is finalized at once, without
    waiting for a garbage-collection pass: its generator closes the upstream and frees every session.
    """

    def __init__(self, items: Any) -> None:
        self.items = items
        self.upstream: Any = None
        self.exhausted = False

    def _closers(self) -> list[Any]:
        """The iterator read, then the iterable given if it is another object (an SDK stream and its iterator)."""
        objects = [self.upstream] if self.upstream is not None else []
        if all(self.items is not o for o in objects):
            objects.append(self.items)
        return objects

    def close(self) -> None:
        if self.exhausted:
            return
        for upstream in self._closers():
            closer = getattr(upstream, "close", None)
            if callable(closer):
                closer()

    async def aclose(self) -> None:
        if self.exhausted:
            return
        for upstream in self._closers():
            for name in ("aclose", "close"):
                closer = getattr(upstream, name, None)
                if callable(closer):
                    result = closer()
                    if inspect.isawaitable(result):
                        await result
                    break


class ShapedStream(_Exposed[T], Iterator[T]):
    """Guard a sync stream of provider items with ``shaper``; iterate for guarded items.

    Closes the upstream (its ``close()``) when the guard halts it or the
    consumer stops early. With ``on_block="raise"`` a block raises
    :class:`~guardkit.StreamBlocked` after the released text instead of
    yielding the block items.
    """

    def __init__(
        self, guard: Guard, items: Iterable[T], shaper: Shaper[T], *, prompt: str | None = None, on_block: str | None = None,
        channels: ChannelRules | None = None,
    ) -> None:
        self._core = _Core(guard, shaper, prompt, on_block, channels)
        self._pipe: _Pipe[T] = _Pipe(items)
        self._gen = _run(self._core, self._pipe)

    def __iter__(self) -> ShapedStream[T]:
        return self

    def __next__(self) -> T:
        return next(self._gen)

    def close(self) -> None:
        """Stop early: close the upstream and free every session."""
        self._gen.close()
        self._pipe.close()
        self._core.close()

    def __enter__(self) -> ShapedStream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _run(core: _Core[T], pipe: _Pipe[T]) -> Iterator[T]:
    try:
        _run_sync(core.start())
        pipe.upstream = iter(pipe.items)
        if core.prompt_blocked:
            first = next(pipe.upstream, None) if core.shaper.peek_on_prompt_block else None  # never shown: ids
            pipe.close()
            yield from core.prompt_block_items(first)
        else:
            for item in pipe.upstream:
                yield from _run_sync(core.item(item))
                if core.raise_ is not None or core.halted():
                    break
            else:
                pipe.exhausted = True
                yield from _run_sync(core.item(None))
        pipe.close()
        if core.raise_ is not None:
            raise core.raise_
    finally:
        pipe.close()
        core.close()


class AsyncShapedStream(_Exposed[T], AsyncIterator[T]):
    """The async twin of :class:`ShapedStream` (over an async or plain iterable).

    Judging runs on the event loop and each model step is awaited (on the
    Guard's batcher, or in a worker thread); the upstream is closed with its
    ``aclose()``/``close()`` (awaited when it is a coroutine, as for
    ``openai.AsyncStream``). Dropped without ``aclose()``, it frees its sessions
    at once; the event loop finalizes its generator, which closes the upstream.
    """

    def __init__(
        self, guard: Guard, items: AsyncIterable[T] | Iterable[T], shaper: Shaper[T], *, prompt: str | None = None, on_block: str | None = None,
        channels: ChannelRules | None = None,
    ) -> None:
        self._core = _Core(guard, shaper, prompt, on_block, channels)
        self._pipe: _Pipe[T] = _Pipe(items)
        self._agen = _arun(self._core, self._pipe)
        weakref.finalize(self, self._core.close).atexit = False

    def __aiter__(self) -> AsyncShapedStream[T]:
        return self

    async def __anext__(self) -> T:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Stop early: close the upstream and free every session."""
        await self._agen.aclose()
        await self._pipe.aclose()
        self._core.close()

    async def __aenter__(self) -> AsyncShapedStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _arun(core: _Core[T], pipe: _Pipe[T]) -> AsyncIterator[T]:
    try:
        await _run_async(core.start())
        if hasattr(pipe.items, "__aiter__"):
            upstream = pipe.upstream = pipe.items.__aiter__()
            next_item = upstream.__anext__
        else:
            next_item = _sync_next(iter(pipe.items))
            pipe.upstream = None
        if core.prompt_blocked:
            try:
                first = await next_item() if core.shaper.peek_on_prompt_block else None  # never shown: ids
            except StopAsyncIteration:
                first = None
            await pipe.aclose()
            for out in core.prompt_block_items(first):
                yield out
        else:
            while True:
                try:
                    item = await next_item()
                except StopAsyncIteration:
                    pipe.exhausted = True
                    for out in await _run_async(core.item(None)):
                        yield out
                    break
                for out in await _run_async(core.item(item)):
                    yield out
                if core.raise_ is not None or core.halted():
                    break
        await pipe.aclose()
        if core.raise_ is not None:
            raise core.raise_
    finally:
        await pipe.aclose()
        core.close()


def _sync_next(iterator: Iterator[Any]) -> Callable[[], Any]:
    async def next_item() -> Any:
        try:
            return next(iterator)
        except StopIteration:
            raise StopAsyncIteration from None

    return next_item


# -- small helpers the shapers share -------------------------------------------


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for a dict, ``obj.key`` otherwise (``default`` when missing)."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of ``obj`` with ``changes``: dicts stay dicts, pydantic models go through ``model_copy(update=...)``."""
    if isinstance(obj, dict):
        return {**obj, **changes}
    model_copy = getattr(obj, "model_copy", None)
    if callable(model_copy):
        return model_copy(update=changes)
    new = copy.copy(obj)
    for key, value in changes.items():
        setattr(new, key, value)
    return new


def text_field(obj: Any, key: str) -> str | None:
    """A text field that must be a str (or absent)."""
    value = get(obj, key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} must be str, got {type(value).__name__}")
    return value


class Aligned:
    """Per-token side data (logprobs: they spell the text) released in step with a channel's text."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.released_chars = 0
        self.emitted_chars = 0

    def take(self, entries: Iterable[Any] | None, released: str, *, final: bool, dropped: bool = False) -> list[Any]:
        """Queue ``entries``; return those whose token text has now been released (all when ``final``)."""
        self.pending += list(entries or [])
        self.released_chars += len(released)
        if dropped:
            self.pending = []
            return []
        out: list[Any] = []
        while self.pending:
            token = get(self.pending[0], "token") or ""
            if not final and self.emitted_chars + len(token) > self.released_chars:
                break
            out.append(self.pending.pop(0))
            self.emitted_chars += len(token)
        return out
