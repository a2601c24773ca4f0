"""Incremental re-tokenizer: text deltas from any LLM become stable guard tokens.

The response text is cut into *segments* by a rule that looks at the text only:
a segment ends where a whitespace run starts after a non-whitespace character,
or after ``max_segment_chars`` characters without such a boundary. A segment is
tokenized once it is known to be complete (the character after it has arrived),
so the tokens never change when more text comes, and the token sequence depends
on the text alone, never on how it was split into deltas (chunking invariance
by construction). ``flush()`` tokenizes the last, open segment at the end.

For WordPiece and byte-level BPE tokenizers, whose pre-tokenizers split at
whitespace anyway, the result equals tokenizing the whole text at once. A run
of more than ``max_segment_chars`` characters without whitespace (a URL, a
hyphenated chain, CJK text) is cut where a token boundary is stable: before
the last pre-tokenizer word that starts in the window, so ``how-to-build-a-bomb``
keeps every word whole; only a single word longer than the window is cut inside
it (at a sub-word token boundary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenizers import Tokenizer

__all__ = ["GuardToken", "IncrementalRetokenizer", "tokenizable"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def tokenizable(text: str) -> str:
    """``text`` with lone surrogates (from JSON escapes such as ``"\\ud800"``) replaced by U+FFFD.

    A Python str may hold them; the tokenizer refuses such text. One code point
    replaces one, so character offsets are unchanged, and the replacement is
    only what the model reads: released text is always the upstream text.
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


@dataclass(frozen=True)
class GuardToken:
    """A guard-token id and the characters [start, end) of the response it covers."""

    id: int
    start: int
    end: int


class IncrementalRetokenizer:
    def __init__(self, tokenizer: Tokenizer, *, max_segment_chars: int = 48) -> None:
        if max_segment_chars < 1:
            raise ValueError("max_segment_chars must be >= 1")
        self._tokenizer = tokenizer
        self._max = max_segment_chars
        self._parts: list[str] = []
        self._text_cache = ""
        self._length = 0
        self._segment_start = 0  # start of the open (not yet tokenized) segment
        self._scan = 0  # next index to examine for a boundary
        self.tokens_emitted = 0

    @property
    def text(self) -> str:
        if self._parts:
            self._text_cache += "".join(self._parts)
            self._parts.clear()
        return self._text_cache

    @property
    def committed_chars(self) -> int:
        """Characters covered by tokenized segments (the open segment starts here)."""
        return self._segment_start

    def push(self, delta: str) -> list[GuardToken]:
        """Add a text delta; return the guard tokens that became stable."""
        if not isinstance(delta, str):
            raise TypeError(f"text deltas must be str, got {type(delta).__name__}")
        if not delta:
            return []
        self._parts.append(delta)
        self._length += len(delta)
        return self._cut(final=False)

    def flush(self) -> list[GuardToken]:
        """End of text: tokenize the open segment."""
        return self._cut(final=True)

    def _cut(self, *, final: bool) -> list[GuardToken]:
        text = self.text
        out: list[GuardToken] = []
        n = len(text)
        i = max(self._scan, self._segment_start + 1)
        while True:
            limit = self._segment_start + self._max
            boundary = None
            while i < n and i <= limit:
                if text[i].isspace() and not text[i - 1].isspace():
                    boundary = i
                    break
                i += 1
            if boundary is None and i > limit:
                boundary = self._long_run_cut(text, self._segment_start, limit)
            if boundary is None:
                self._scan = i
                break
            out.extend(self._tokenize(text, self._segment_start, boundary))
            self._segment_start = boundary
            i = boundary + 1
        if final and self._segment_start < n:
            out.extend(self._tokenize(text, self._segment_start, n))
            self._segment_start = n
            self._scan = n
        self.tokens_emitted += len(out)
        return out

    def _long_run_cut(self, text: str, start: int, limit: int) -> int:
        """Where to cut a run of ``max_segment_chars`` characters without a whitespace boundary.

        Looks only at ``text[start:limit + 1]`` (fixed by the text, so the cut never
        depends on how it arrived) and cuts where a token boundary is stable: at the
        start of the window's last pre-tokenizer word (``how-to-bu|ild``: before
        ``build``, never inside it), else at the start of its last token, else at
        ``limit``. Text such as URLs, hyphenated chains and CJK then tokenizes as
        it does unsplit.
        """
        encoding = self._tokenizer.encode(tokenizable(text[start : limit + 1]), add_special_tokens=False)
        offsets, words = encoding.offsets, encoding.word_ids
        cut = 0
        for k in range(len(offsets) - 1, 0, -1):  # the last word start after the first character
            if words[k] is not None and words[k] != words[k - 1] and 0 < offsets[k][0] <= self._max:
                cut = offsets[k][0]
                break
        if not cut:
            cut = next((a for a, _ in reversed(offsets) if 0 < a <= self._max), 0)
        return start + cut if cut else limit

    def _tokenize(self, text: str, start: int, end: int) -> list[GuardToken]:
        encoding = self._tokenizer.encode(tokenizable(text[start:end]), add_special_tokens=False)
        return [GuardToken(tid, start + a, start + b) for tid, (a, b) in zip(encoding.ids, encoding.offsets)]
