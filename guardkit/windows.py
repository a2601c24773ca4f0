"""Cutting a rendered prompt into overlapping windows (the stream model's and the prompt classifier's).

Pure functions over token ids, shared by :mod:`guardkit.kvwindow` and
:mod:`guardkit.prompt_model`, so both cut a long prompt the same way.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["overlapping_windows", "split_rendering"]


def split_rendering(ids: Sequence[int], head: Sequence[int], tail: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """A rendered prompt's ids as the template's head, the prompt text and the template's tail.

    ``head`` and ``tail`` are the template's text around ``{prompt}`` tokenized
    alone; where the rendering does not start/end with exactly those ids (a
    merge across the boundary), the head is the first token and the tail empty.
    """
    ids, head, tail = list(ids), list(head), list(tail)
    if len(head) + len(tail) < len(ids) and ids[: len(head)] == head and ids[len(ids) - len(tail) :] == tail:
        return head, ids[len(head) : len(ids) - len(tail)], tail
    return ids[:1], ids[1:], []


def overlapping_windows(head: list[int], body: list[int], tail: list[int], width: int) -> list[list[int]]:
    """``body`` in pieces of ``width`` tokens overlapping by half, each wrapped as head + piece + tail.

    Every stretch of up to half a window lies whole inside some window, and the
    last window ends where the body ends.
    """
    stride = max(1, width // 2)
    starts = list(range(0, max(1, len(body) - width + 1), stride))
    if starts[-1] + width < len(body):
        starts.append(len(body) - width)
    return [head + body[s : s + width] + tail for s in starts]
