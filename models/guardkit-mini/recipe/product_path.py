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

A bundle whose classifier judges replies (manifest ``prompt_model.reply_check``) is also
checked at the runtime's reply check points; ``product_path_log_probs`` returns those
checks too (with the manifest's reply offset), so the reply offset can be swept the same way.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

import numpy as np

from guardkit import Guard
from guardkit.session import StreamSession, _Offload


@contextlib.contextmanager
def _recording(sink: list[np.ndarray], checks: list[tuple[int, int, np.ndarray]]) -> Iterator[None]:
    """Record every token's stream risk into ``sink`` and every reply check into ``checks``; block nothing.

    A reply check is recorded as (first unchecked token, end token, its (safe, controversial,
    unsafe) probabilities with the manifest's reply offset); every check point is visited
    because every check passes.
    """
    original_apply, original_check = StreamSession._apply, StreamSession._check_reply

    def record(self, chunk, out):  # type: ignore[no-untyped-def]
        points, text = self._reply_points, self._retok.text
        for token in chunk:  # the session's bookkeeping (offsets of later tokens) stays right
            index = len(self._tokens)
            if points is not None and index and points.due_before(index, text[self._tokens[-1].end : token.start]):
                yield from self._check_reply(index)
            self._tokens.append(token)
            if points is not None and points.due_after(index, text[token.start : token.end]):
                yield from self._check_reply(index + 1)
        sink.append(np.asarray(out.risk[: len(chunk)], dtype=np.float64))
        return []

    def check(self, end):  # type: ignore[no-untyped-def]
        start = self._reply_points.checked
        if end > start:
            ids = [t.id for t in self._tokens[max(0, end - self.model.reply_window) : end]]
            risk, _ = yield _Offload(lambda: self.model.classify_reply(ids))
            checks.append((start, end, np.asarray(risk, dtype=np.float64)))
            self._reply_points.passed(end)
        return []

    StreamSession._apply, StreamSession._check_reply = record, check  # type: ignore[method-assign]
    try:
        yield
    finally:
        StreamSession._apply, StreamSession._check_reply = original_apply, original_check  # type: ignore[method-assign]


def product_path_log_probs(bundle: str, items: list[dict], threads: int = 2, progress: bool = True) -> list[dict]:
    """For each item (``prompt``, ``response``) a dict: ``log`` (log p(level) per response token,
    [tokens, 3]), ``starts`` (each token's first character) and ``checks`` (the reply checks as
    (first unchecked token, end token, log p(level)); empty when the bundle has none)."""
    guard = Guard(model=bundle, policy="default", threads=threads)
    out: list[dict] = []
    t0 = time.time()
    for i, x in enumerate(items):
        rows: list[np.ndarray] = []
        checks: list[tuple[int, int, np.ndarray]] = []
        with _recording(rows, checks):
            # Guard.check_response's own session (the prompt is only context there)
            with guard._response_session(x["response"], x["prompt"] or None, None, None) as session:
                session.feed(x["response"])
                session.finish()
                starts = np.array([t.start for t in session.tokens], dtype=np.int64)
        probs = np.concatenate(rows) if rows else np.zeros((0, 3))
        out.append(dict(log=np.log(np.clip(probs, 1e-12, 1.0)), starts=starts,
                        checks=[(a, b, np.log(np.clip(p, 1e-12, 1.0))) for a, b, p in checks]))
        if progress and (i + 1) % 200 == 0:
            print(f"  product path: {i + 1}/{len(items)} replies ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    return out


def response_log_probs(bundle: str, items: list[dict], threads: int = 2, progress: bool = True) -> list[np.ndarray]:
    """For each item (``prompt``, ``response``): log p(level) per response token, shape [tokens, 3]."""
    return [r["log"] for r in product_path_log_probs(bundle, items, threads, progress)]
