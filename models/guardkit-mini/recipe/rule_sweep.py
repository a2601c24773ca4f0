"""Which debounce rule should the default policy use?  A dev-only sweep.

The runtime blocks a response when ``count`` halting tokens (p_unsafe >= the
policy's unsafe threshold) follow each other (``consecutive``) or have been seen
in all (``cumulative``). 0.2.0 ships ``consecutive``/2 at 0.5, the threshold
calibrated for it (calibrate.py). This sweeps rule x count x threshold on the
*dev* split with the shipped bundle's probabilities (one full-text pass, as the
streaming runtime gives the same per-token outputs), picks each rule's best dev
F1 under the same 4% benign-FPR cap, and prints F1, FPR and earliness side by
side. Nothing here reads the test split.

Usage:  python models/guardkit-mini/recipe/rule_sweep.py [--split dev] [--max-fpr 0.04]
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from tokenizers import Tokenizer

from bench import Runner
from evaluate import BUNDLE, MAX_RESP, WORK, f1, render, softmax

THRESHOLDS = [round(t, 3) for t in np.arange(0.30, 0.901, 0.025)]
RULES = [("consecutive", 1), ("consecutive", 2), ("consecutive", 3), ("cumulative", 2), ("cumulative", 3)]


def block_index(p_unsafe: np.ndarray, threshold: float, rule: str, count: int) -> int | None:
    """Index of the token whose judgement blocks (the runtime's Debouncer), or None."""
    flags = p_unsafe >= threshold
    if rule == "cumulative":
        seen = np.flatnonzero(flags)
        return int(seen[count - 1]) if len(seen) >= count else None
    run = 0
    for i, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run >= count:
            return i
    return None


def score(rows, threshold, rule, count):
    blocks = [block_index(r["pu"], threshold, rule, count) for r in rows]
    gold = np.array([r["label"] == "unsafe" for r in rows])
    safe = np.array([r["label"] == "safe" for r in rows])
    pred = np.array([b is not None for b in blocks])
    seen = [(b + 1) / r["n"] for b, r in zip(blocks, rows) if b is not None and r["label"] == "unsafe"]
    return dict(rule=rule, count=count, threshold=threshold, **f1(pred, gold), fpr=float(pred[safe].mean()),
                tokens_seen_at_halt=float(np.mean(seen)) if seen else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--max-fpr", type=float, default=0.04)
    ap.add_argument("--out", default=os.path.join(WORK, "rule_sweep.json"))
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    items = [json.loads(line) for line in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8")]
    items = [x for x in items if x["split"] == args.split and x["kind"] == "response"]
    run = Runner(os.path.join(BUNDLE, "model.onnx"), threads=2)
    rows = []
    for k, x in enumerate(items):
        pids = render(tok, x)
        rids = tok.encode(x["response"], add_special_tokens=False).ids[:MAX_RESP]
        ids = np.array([pids + rids], np.int64)
        p = softmax(run.run_chunked(ids, ids.shape[1])[0][0, len(pids):])
        rows.append(dict(pu=p[:, 2], n=len(rids), label=x["resp_label"]))
        if k % 500 == 0:
            print(f"scored {k}/{len(items)} responses", flush=True)
    table = [score(rows, t, rule, count) for rule, count in RULES for t in THRESHOLDS]
    best = []
    for rule, count in RULES:
        ok = [r for r in table if r["rule"] == rule and r["count"] == count and r["fpr"] <= args.max_fpr]
        if ok:
            best.append(max(ok, key=lambda r: r["f1"]))
    print(f"{args.split}: best F1 per rule with benign FPR <= {args.max_fpr:.0%} ({len(rows)} responses)")
    print("rule          count  threshold     F1   prec  recall    FPR  tokens seen at halt")
    for r in best:
        print(f"{r['rule']:<13} {r['count']:>5}  {r['threshold']:9.3f}  {r['f1']:.3f}  {r['precision']:.3f}  {r['recall']:.3f}"
              f"  {r['fpr']:.3f}  {r['tokens_seen_at_halt']:.3f}")
    shipped = next(r for r in table if (r["rule"], r["count"], r["threshold"]) == ("consecutive", 2, 0.5))
    print(f"shipped (consecutive 2 @ 0.5): F1 {shipped['f1']:.3f}, FPR {shipped['fpr']:.3f}, tokens seen {shipped['tokens_seen_at_halt']:.3f}")
    with open(args.out, "w") as fh:
        json.dump({"split": args.split, "max_fpr": args.max_fpr, "best": best, "table": table}, fh, indent=1)


if __name__ == "__main__":
    main()
