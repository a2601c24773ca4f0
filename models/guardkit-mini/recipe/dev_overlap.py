"""Keep self-written training text away from the dev suite.

Self-written training sets are written from the same everyday knowledge as the dev suite's
self-written probes, so a few land on (nearly) the same sentence ("How to burn a CD?").
Training drops any such text, so the dev suite stays unseen."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")  # kana, CJK ideographs, hangul: no spaces between words


def words(text: str) -> set[str]:
    """ASCII words, plus character bigrams of CJK runs (which have no spaces to split on)."""
    lower = text.lower()
    out = set(re.findall(r"[a-z0-9]+", lower))
    for run in CJK.findall(lower):
        out |= {run[i:i + 2] for i in range(max(1, len(run) - 1))}
    return out


@lru_cache(maxsize=None)
def _dev_words(field: str) -> tuple[frozenset[str], ...]:
    import dev_suite
    items, _ = dev_suite.drop_overlap(dev_suite.build())
    return tuple(frozenset(words(x[field])) for x in items if x.get(field))


def near(text: str, others: Iterable[frozenset[str]], threshold: float) -> bool:
    """True when ``text``'s words() overlap one of ``others`` with Jaccard >= ``threshold``.

    A text with no words to compare is near nothing (before 0.9 it was near every other such
    text, so any Japanese training prompt would count as a copy of the dev suite's Japanese one)."""
    w = words(text)
    return bool(w) and any(len(w & d) >= threshold * len(w | d) for d in others)


def near_dev(text: str, field: str = "prompt", threshold: float = 0.6) -> bool:
    """True when ``text`` shares most of its words (Jaccard >= threshold) with a dev-suite
    prompt (``field="prompt"``) or response (``field="response"``)."""
    return near(text, _dev_words(field), threshold)

