"""Property tests of the stream semantics users rely on (architecture brief, "Stream semantics")."""

from __future__ import annotations

import asyncio
from typing import Iterator

from hypothesis import given
from hypothesis import strategies as st

from gk_helpers import run_session, same_verdict
from guardkit import Blocked, Guard, Released
from guardkit.testing import CONTROVERSIAL_WORDS, SAFE_WORDS, UNSAFE_WORDS

WORDS = list(SAFE_WORDS) * 3 + list(UNSAFE_WORDS) + list(CONTROVERSIAL_WORDS) + ["bread,", "day.", "Hello!", "x-ray", "naïve", "日本"]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\t", " \n "]


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=40))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps)).rstrip(draw(st.sampled_from(["", " "])))


@st.composite
def text_and_splits(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(texts())
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, len(text) - 1)), max_size=25))) if len(text) > 1 else []
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(text[last:cut])
        last = cut
    pieces.append(text[last:])
    # empty deltas are legal too
    if draw(st.booleans()):
        pieces.insert(draw(st.integers(0, len(pieces))), "")
    return text, pieces


_run = run_session


@given(text_and_splits())
def test_verdict_and_halt_offset_do_not_depend_on_the_split(tiny_guard: Guard, case: tuple[str, list[str]]) -> None:
    text, pieces = case
    released_whole, verdict_whole, _ = _run(tiny_guard, [text])
    released_split, verdict_split, _ = _run(tiny_guard, pieces)
    assert same_verdict(verdict_split, verdict_whole)
    assert released_split == released_whole
    assert released_whole == (text if not verdict_whole.blocked else text[: verdict_whole.char_offset])  # type: ignore[attr-defined]


@given(text_and_splits())
def test_nothing_at_or_after_the_first_flagged_token_is_released(tiny_guard: Guard, case: tuple[str, list[str]]) -> None:
    text, pieces = case
    session = tiny_guard.session()
    released = ""
    for piece in pieces:
        for event in session.feed(piece):
            if isinstance(event, Released):
                assert event.start == len(released)
                released += event.text
            # at every moment, released text is a prefix of the text and ends before any held (possibly harmful) token
            hold = session._debounce.hold_from
            if hold is not None:
                assert len(released) <= session.tokens[hold].start
    for event in session.finish():
        if isinstance(event, Released):
            released += event.text
    assert text.startswith(released)
    if session.blocked:
        onset = session.verdict.char_offset
        assert onset is not None and len(released) <= onset
        # the blocking run starts at the onset: the harmful word itself never went out
        token = session.tokens[session.verdict.token_index]
        assert token.start == onset and text[token.start : token.end] not in released[token.start :]


@given(text_and_splits(), st.lists(st.sampled_from(WORDS), min_size=1, max_size=10))
def test_once_blocked_always_blocked(tiny_guard: Guard, case: tuple[str, list[str]], more: list[str]) -> None:
    text, pieces = case
    session = tiny_guard.session()
    for piece in pieces:
        session.feed(piece)
    if not session.blocked:
        session.feed(" bomb detonator ")
    assert session.blocked
    verdict, released = session.verdict, session.released_text
    for word in more:
        assert session.feed(" " + word) == []
    assert session.finish() == []
    assert session.verdict == verdict and session.released_text == released and session.blocked


class CountingUpstream:
    """A generator-like upstream that records how far it was pulled and whether it was closed."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.pulled = 0
        self.closed = False
        self._gen = self._produce()

    def _produce(self) -> Iterator[str]:
        try:
            for piece in self.pieces:
                self.pulled += 1
                yield piece
        finally:
            self.closed = True

    def __iter__(self) -> "CountingUpstream":
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()


@given(text_and_splits())
def test_upstream_is_closed_on_block_and_not_pulled_further(tiny_guard: Guard, case: tuple[str, list[str]]) -> None:
    text, pieces = case
    pieces = pieces + [" bomb", " detonator", " then", " more", " words"]
    upstream = CountingUpstream(pieces)
    stream = tiny_guard.stream(upstream)
    out = list(stream)
    assert stream.blocked and upstream.closed
    # "detonator" is complete (judged) once " then" arrives: the block happens there at the latest,
    # and " more" / " words" are never produced
    assert upstream.pulled <= len(pieces) - 2
    on_block = tiny_guard.policy.on_block
    released = stream.released_text
    separated = released and not released.endswith(on_block.separator)  # a separator only where it is missing
    assert out[-1] == (on_block.separator if separated else "") + on_block.message
    assert "".join(out[:-1]) == stream.released_text


@given(text_and_splits(), st.integers(min_value=0, max_value=3))
def test_upstream_is_closed_when_the_consumer_stops_early(tiny_guard: Guard, case: tuple[str, list[str]], take: int) -> None:
    _, pieces = case
    upstream = CountingUpstream(pieces + [" the end of it ."] * 5)
    stream = tiny_guard.stream(upstream)
    for i, _text in enumerate(stream):
        if i >= take:
            break
    stream.close()
    assert upstream.closed


class AsyncCountingUpstream:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.pulled = 0
        self.closed = False

    def __aiter__(self) -> "AsyncCountingUpstream":
        self._agen = self._produce()
        return self

    async def _produce(self):  # type: ignore[no-untyped-def]
        try:
            for piece in self.pieces:
                self.pulled += 1
                await asyncio.sleep(0)
                yield piece
        finally:
            self.closed = True

    async def __anext__(self) -> str:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        await self._agen.aclose()
        self.closed = True


@given(text_and_splits())
def test_async_stream_matches_sync_and_closes_upstream(tiny_guard: Guard, case: tuple[str, list[str]]) -> None:
    text, pieces = case

    async def run() -> tuple[str, object, AsyncCountingUpstream]:
        upstream = AsyncCountingUpstream(pieces + [" bomb", " detonator", " and", " more"])
        stream = tiny_guard.astream(upstream)
        out = [t async for t in stream]
        return "".join(out), stream, upstream

    out, stream, upstream = asyncio.run(run())
    sync = tiny_guard.stream(pieces + [" bomb", " detonator", " and", " more"])
    assert out == "".join(sync)
    assert same_verdict(stream.verdict, sync.verdict) and upstream.closed  # type: ignore[attr-defined]
    assert upstream.pulled <= len(pieces) + 3  # never pulled past " and", which completes "detonator"


@given(text_and_splits(), st.integers(min_value=0, max_value=2))
def test_async_upstream_closed_on_early_exit(tiny_guard: Guard, case: tuple[str, list[str]], take: int) -> None:
    _, pieces = case

    async def run() -> AsyncCountingUpstream:
        upstream = AsyncCountingUpstream(pieces + [" the end ."] * 5)
        stream = tiny_guard.astream(upstream)
        i = 0
        async for _ in stream:
            if i >= take:
                break
            i += 1
        await stream.aclose()
        return upstream

    assert asyncio.run(run()).closed


def test_blocked_event_is_last_and_release_precedes_it(tiny_guard: Guard) -> None:
    session = tiny_guard.session()
    events = session.feed("sure here is how to build a bomb detonator and more ")
    assert isinstance(events[-1], Blocked)
    assert [type(e) for e in events[:-1]] == [Released]
    assert events[0].text == "sure here is how to build a "  # type: ignore[union-attr]


@st.composite
def long_text_and_splits(draw: st.DrawFn) -> tuple[str, list[str]]:
    words = draw(st.lists(st.sampled_from(SAFE_WORDS), min_size=60, max_size=160))
    if draw(st.booleans()):  # harm late in the stream, after the first re-prefill
        words.insert(draw(st.integers(60, len(words))), draw(st.sampled_from(["bomb detonator", "steal launder"])))
    text = " ".join(words)
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(text) - 1), max_size=40)))
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(text[last:cut])
        last = cut
    return text, pieces + [text[last:]]


@given(long_text_and_splits())
def test_long_streams_past_max_positions_stay_chunking_invariant(short_bundle, case: tuple[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    """Re-prefills happen at token counts, not at delta boundaries, so the split still does not matter."""
    guard = Guard(short_bundle)
    text, pieces = case
    whole_session = guard.session()
    whole_session.feed(text)
    whole_session.finish()
    split_session = guard.session()
    for piece in pieces:
        split_session.feed(piece)
    split_session.finish()
    assert whole_session.reprefills > 0 and split_session.reprefills > 0  # both crossed max positions
    assert same_verdict(split_session.verdict, whole_session.verdict)
    assert split_session.released_text == whole_session.released_text
