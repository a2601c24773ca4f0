"""The earliest halt the labels allow: a lower bound for the earliness metric.

evaluate.py reports, for halted unsafe responses, the fraction of response tokens seen
when the stream is halted ((halt token + 2) / tokens: the runtime blocks at the second
of two consecutive flagged tokens).  A model that halts exactly where the labelled harm
begins (the human toxic-span start, or the teacher onset; onsets.py) scores
(onset token + 2) / tokens.  Only a model that predicts harm *before* it appears can do
better, so this floor shows how far the split's data lets the metric go.

Usage:  python earliness_floor.py [--split test]
"""
from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict

import numpy as np
from tokenizers import Tokenizer

from evaluate import MAX_RESP

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    by_source = defaultdict(list)
    for line in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8"):
        x = json.loads(line)
        if x["split"] != args.split or x["kind"] != "response" or x["resp_label"] != "unsafe":
            continue
        offsets = tok.encode(x["response"], add_special_tokens=False).offsets[:MAX_RESP]
        onset = x.get("onset") or 0
        first = next((i for i, (_, end) in enumerate(offsets) if end > onset), len(offsets) - 1)
        by_source[x["source"]].append(min(1.0, (first + 2) / len(offsets)))
    every = [f for fs in by_source.values() for f in fs]
    print(f"all unsafe responses: {len(every)}, floor of the mean fraction seen at halt {np.mean(every):.3f}")
    for source, fs in sorted(by_source.items()):
        print(f"  {source:18s} n={len(fs):4d}  floor {np.mean(fs):.3f}")


if __name__ == "__main__":
    main()
