"""Reply check points: where a bundle's classifier judges the reply so far.

The stream model reads a reply causally, token by token, and halts mid-sentence
when it is sure; a bidirectional classifier reading the whole reply so far
catches harm the stream model misses (harm phrased as plain advice, with no
alarming word: see the model card). A bundle declares its prompt classifier fit
for replies with ``prompt_model.reply_check`` in its manifest; the policy's
``reply_check`` says what its verdict does.

The reply is checked after a guard token that ends a sentence and before a
token that follows a line break, once at least :data:`MIN_CHECK_TOKENS` tokens
are unchecked (one check costs about as much CPU as ten stream steps, and code
or lists end "sentences" every few tokens), and whenever ``gap`` guard tokens
went unchecked, so there is always a check before the classifier's window runs out. Each
point depends on the text alone (the guard tokens and the characters between
them), never on how the text was split into deltas, so verdicts and halt
positions stay chunking-invariant. With ``action: block`` the text after the
last passed check is held back, so a sentence the check refuses is never
released; the halt is placed at the start of that unchecked text.
"""

from __future__ import annotations

__all__ = ["ReplyCheckPoints", "ends_sentence"]

#: A guard token whose text ends with one of these closes a sentence.
SENTENCE_END = frozenset(".!?;。！？；…")
#: A sentence end or line break is a check point once this many guard tokens are unchecked.
MIN_CHECK_TOKENS = 8


def ends_sentence(token_text: str) -> bool:
    """Whether a guard token's text ends a sentence (``.``, ``!``, ``?``, ``;`` and their CJK forms)."""
    return bool(token_text) and token_text[-1] in SENTENCE_END


class ReplyCheckPoints:
    """Tracks which guard tokens have passed a reply check and says when the next is due.

    ``checked`` is the number of leading guard tokens covered by a passed (or
    flagged) check: tokens ``[0, checked)``. ``gap`` is the most tokens left
    unchecked before a check is due.
    """

    def __init__(self, gap: int) -> None:
        if gap < 1:
            raise ValueError("gap must be >= 1")
        self.least = min(MIN_CHECK_TOKENS, gap)
        self.gap = gap
        self.checked = 0

    def due_before(self, index: int, gap_text: str) -> bool:
        """Before token ``index``: check tokens ``[.., index)`` when a line break precedes it and enough are unchecked."""
        return index - self.checked >= self.least and "\n" in gap_text

    def due_after(self, index: int, token_text: str) -> bool:
        """After token ``index``: check tokens ``[.., index]`` at a sentence end or once ``gap`` tokens are unchecked."""
        unchecked = index + 1 - self.checked
        return (ends_sentence(token_text) and unchecked >= self.least) or unchecked >= self.gap

    def passed(self, end: int) -> None:
        """Tokens ``[0, end)`` are checked."""
        self.checked = max(self.checked, end)
