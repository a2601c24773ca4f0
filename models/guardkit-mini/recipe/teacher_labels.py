"""Soft prompt labels from a larger teacher classifier, for distillation into the MiniLM prompt graph.

The teacher is a ``prompt_classifier.py`` checkpoint trained on another encoder (the model card's
mp1: all-mpnet-base-v2, selected with $GUARDKIT_BACKBONE_DIR).  It reads every training prompt
(``prompt_classifier.training_prompts`` with the recipe's flags) and the first human turns of
hh-rlhf harmless-base (red-team conversations: preference pairs, so no labels of their own; not a
dev-suite source) and writes one JSON line per distinct text: ``{"text", "logits": [safe,
controversial, unsafe], "source"}``.  Lines are appended as batches finish, so an interrupted run
resumes where it stopped.  ``prompt_classifier.py train --soft FILE`` reads them.  What distilling mp1 into the MiniLM prompt graph
measured (it did not beat the shipped soup): MODEL_CARD.md, "Distilling mp1".

Usage (from models/guardkit-mini):
    GUARDKIT_BACKBONE_DIR=DIR/all-mpnet-base-v2 python recipe/teacher_labels.py --teacher work/mp1.pt \\
        --out work/mp1_soft.jsonl [recipe flags as for training]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import prompt_classifier as pc


def hh_rlhf_first_turns() -> list[str]:
    """The opening human turn of each hh-rlhf harmless-base conversation (distinct, in file order)."""
    path = os.path.join(pc.RAW, "hh-rlhf", "harmless-base", "test.jsonl.gz")
    turns = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["chosen"]
            first = text.split("\n\nHuman: ", 1)[-1].split("\n\nAssistant:", 1)[0].strip()
            if first:
                turns.append(first)
    return list(dict.fromkeys(turns))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True, help="a prompt_classifier.py checkpoint (its encoder from $GUARDKIT_BACKBONE_DIR)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    for flag in ("contrast", "request", "constraint", "opinion", "medical"):
        ap.add_argument(f"--{flag}-repeats", type=int, default=2)
    ap.add_argument("--clinc-extra", type=int, default=4000)
    ap.add_argument("--no-hh-rlhf", action="store_true", help="label the training prompts only")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    rows = pc.training_prompts(args.contrast_repeats, args.request_repeats, args.constraint_repeats,
                               args.clinc_extra, args.opinion_repeats, args.medical_repeats)
    todo = {r["text"]: r["source"] for r in rows}
    if not args.no_hh_rlhf:
        for t in hh_rlhf_first_turns():
            todo.setdefault(t, "hh-rlhf-first-turn")
    done = set()
    if os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            done = {json.loads(line)["text"] for line in f if line.strip()}
    texts = sorted((t for t in todo if t not in done), key=len)
    print(f"{len(todo)} distinct prompts, {len(done)} already labelled, {len(texts)} to go", flush=True)

    ck = torch.load(args.teacher, weights_only=False)
    model = pc.build_model(ck["args"].get("arch", "bidirectional"))
    model.load_state_dict(ck["model"])
    tok = pc.tokenizer(128)
    t0 = time.time()
    with open(args.out, "a", encoding="utf-8") as out:
        for i in range(0, len(texts), args.batch * 10):
            chunk = texts[i:i + args.batch * 10]
            logits = pc.predict(model, tok, chunk, batch=args.batch)
            for t, z in zip(chunk, logits):
                out.write(json.dumps({"text": t, "logits": [round(float(v), 4) for v in z], "source": todo[t]}) + "\n")
            out.flush()
            n = i + len(chunk)
            print(f"{n}/{len(texts)} {time.time() - t0:.0f}s", flush=True)
    print(f"done: {args.out}", flush=True)


if __name__ == "__main__":
    main()
