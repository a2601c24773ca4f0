"""Keep self-written training text away from the dev suite.

Self-written training sets are written from the same everyday knowledge as the dev suite's
self-written probes, so a few land on (nearly) the same sentence ("How to burn a CD?").
Training drops any such text, so the dev suite stays unseen."""
from __future__ import annotations

import re
from functools import lru_cache


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@lru_cache(maxsize=None)
def _dev_words(field: str) -> tuple[frozenset[str], ...]:
    import dev_suite
    items, _ = dev_suite.drop_overlap(dev_suite.build())
    return tuple(frozenset(words(x[field])) for x in items if x.get(field))


def near_dev(text: str, field: str = "prompt", threshold: float = 0.6) -> bool:
    """True when ``text`` shares most of its words (Jaccard >= threshold) with a dev-suite
    prompt (``field="prompt"``) or response (``field="response"``)."""
    w = words(text)
    return any(len(w & d) >= threshold * len(w | d) for d in _dev_words(field))
