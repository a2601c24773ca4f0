"""Per-token response risk exactly as the runtime computes it, for calibration.

calibrate_suite.py used to score the first 384 response tokens in one full-text pass.
The product (``Guard.check_response`` / ``Guard.stream``) judges the whole reply: past the
model's 512 positions it re-prefills the prompt plus a recent window of the response
(guardkit.kvwindow), and those later views are where several long benign answers were
blocked (0.5: 4.0 % benign-reply FPR on the truncated path, 5.2 % through ``Guard``).

``response_log_probs`` runs each reply through a real ``StreamSession`` of the bundle whose
per-chunk judging is replaced by a recorder: every token is scored as the runtime scores it
(same chunks, same re-prefills), nothing is blocked, and the canonical (safe,
controversial, unsafe) log-probabilities of each token come back.  Adding ``d`` to their
unsafe column and re-normalising equals baking an unsafe-logit offset ``d`` into the graph.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

import numpy as np

from guardkit import Guard
from guardkit.session import StreamSession


@contextlib.contextmanager
def _recording(sink: list[np.ndarray]) -> Iterator[None]:
    original = StreamSession._apply

    def record(self, chunk, out):  # type: ignore[no-untyped-def]
        self._tokens.extend(chunk)  # the session's bookkeeping (offsets of later tokens) stays right
        sink.append(np.asarray(out.risk[: len(chunk)], dtype=np.float64))
        return []

    StreamSession._apply = record  # type: ignore[method-assign]
    try:
        yield
    finally:
        StreamSession._apply = original  # type: ignore[method-assign]


def response_log_probs(bundle: str, items: list[dict], threads: int = 2, progress: bool = True) -> list[np.ndarray]:
    """For each item (``prompt``, ``response``): log p(level) per response token, shape [tokens, 3]."""
    guard = Guard(model=bundle, policy="default", threads=threads)
    out: list[np.ndarray] = []
    t0 = time.time()
    for i, x in enumerate(items):
        rows: list[np.ndarray] = []
        with _recording(rows):
            guard.check_response(x["response"], prompt=x["prompt"] or None)
        probs = np.concatenate(rows) if rows else np.zeros((0, 3))
        out.append(np.log(np.clip(probs, 1e-12, 1.0)))
        if progress and (i + 1) % 200 == 0:
            print(f"  product path: {i + 1}/{len(items)} replies ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    return out
