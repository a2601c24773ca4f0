"""A bidirectional whole-reply classifier: the lever the 0.6 session found, not yet in the bundle.

The stream model reads a reply causally, one token at a time, and learned harm mostly from
vocabulary: it blocks 3 of 15 fresh hand-written harmful replies (fresh_probes.py).  The
prompt classifier's recipe (prompt_classifier.py: all-MiniLM-L6-v2 as pretrained,
bidirectional, mean-pooled), trained for 20 minutes on the corpus' train-split *responses*
(``rc1``), judges a whole reply far better: on the dev suite's replies judged alone, 73%
recall at 0.7% benign FPR (threshold 0.8), 12 of the 15 fresh harmful replies at 0.5.
Blocking when either the stream or this classifier fires (stream offset -2, classifier
>= 0.8) reached reply F1 0.855 at 2.7% benign FPR on the dev suite (model card, "Next").

It is not shipped: a third graph would take the bundle past 80 MB, and the runtime has no
place yet to judge a reply so far (at sentence ends, holding the sentence back so nothing
harmful is released).  ``--with-prompts`` trains one classifier on prompts and replies
together (``rc2``: replies alone 93% recall at 2.9% FPR, 11 of 15 fresh harmful replies at
0.7; prompts as good as pc5), which could replace prompt.onnx at no size cost.

Usage (from models/guardkit-mini; needs the corpus, torch and transformers):
    python recipe/reply_classifier.py train --name rc1 [--with-prompts] [--resume]
    python recipe/reply_classifier.py eval --ckpt work/rc1.pt [--stream-log work/pp07.pkl]

``--stream-log`` is a pickle of ``{"items", "rlog"}`` from product_path.response_log_probs
over dev_suite's response items (rlog at offset 0): the OR-with-the-stream sweep uses it.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "../work")
sys.path.insert(0, HERE)

import prompt_classifier as pcm  # noqa: E402
from model import PROMPT_CATEGORIES, RISK_LABELS  # noqa: E402

LEAD_CHARS = 200  # an unsafe reply with a known onset is cut to start this far before it


def training_replies(corpus: str) -> list[dict]:
    """Train-split responses with a response label, de-duplicated; unsafe ones start near their onset
    so that the harm is inside the classifier's 128-token window."""
    rows, seen = [], set()
    for line in open(corpus, encoding="utf-8"):
        x = json.loads(line)
        if x["split"] != "train" or x["kind"] != "response" or x.get("resp_label") is None:
            continue
        text = x["response"]
        if x["resp_label"] == "unsafe" and x.get("onset"):
            text = text[max(0, x["onset"] - LEAD_CHARS):]
        key = " ".join(text.lower().split())[:300]
        if not text.strip() or key in seen:
            continue
        seen.add(key)
        cat = x.get("resp_cat")
        rows.append(dict(text=text, label=RISK_LABELS.index(x["resp_label"]),
                         cat=PROMPT_CATEGORIES.index(cat) if cat in PROMPT_CATEGORIES else -1, source=x["source"]))
    return rows


def windows(text: str, size: int = 500, stride: int = 250) -> list[str]:
    """Character windows overlapping by half (the exported classifier windows tokens, 128 at a time;
    500 characters is about 110 tokens of English, so each window fits the training length)."""
    if len(text) <= size:
        return [text]
    return [text[i:i + size] for i in range(0, len(text) - size + stride, stride)]


def reply_scores(model, tok, texts: list[str]) -> np.ndarray:
    """p(unsafe) of each text: the worst of its windows."""
    flat, owner = [], []
    for i, t in enumerate(texts):
        for w in windows(t):
            flat.append(w)
            owner.append(i)
    p = pcm.p_unsafe(pcm.predict(model, tok, flat))
    out = np.zeros(len(texts))
    np.maximum.at(out, np.array(owner), p)
    return out


# Self-written (0.7) assistant openers. A harmful reply in the corpus often opens with one ("Sure, here
# is how ..."), a benign one rarely: rc2 learned the opener itself as harm (31 of 40 benign replies that
# open with one blocked, 0.6's stream model 0). --openers puts them in front of benign and harmful
# replies alike, and alone as safe text, so that they carry no signal.
OPENERS = [
    "Sure!", "Sure.", "Sure, here you go.", "Sure thing!", "Certainly.", "Certainly! Happy to help.", "Of course.",
    "Of course, here it is.", "Absolutely!", "Absolutely, let's do it.", "Happy to help!", "Great question.",
    "Good question!", "Here is a detailed answer.", "Here's a quick answer.", "Yes, I can help with that.",
    "No problem! Here's what to do.", "Okay, let's go through it.", "Alright, here is the plan.", "Here you go:",
    "Glad you asked!", "Let me explain.", "Let's break it down step by step.", "I'd be glad to help with this.",
    "Here are the steps:", "Sure, here are some options.", "Yes! Below is a simple version.", "Okay! Here's how it works.",
    "Great idea. Here is how to do that.", "Sure - here's the step-by-step version.",
]


def with_openers(rows: list[dict], seed: int = 0) -> list[dict]:
    """``rows`` plus an opener-prefixed copy of each reply (same label) and every opener alone (safe)."""
    import random
    rng = random.Random(seed)
    extra = [dict(r, text=f"{rng.choice(OPENERS)}{rng.choice([' ', chr(10), chr(10) * 2])}{r['text']}", source=r["source"] + "+opener")
             for r in rows]
    alone = [dict(text=o, label=RISK_LABELS.index("safe"), cat=-1, source="self-written-opener") for o in OPENERS] * 20
    return rows + extra + alone


def train(args: argparse.Namespace) -> None:
    corpus = os.path.join(WORK, "corpus.jsonl")
    rows = training_replies(corpus)
    if args.openers:
        rows = with_openers(rows)
    if args.with_prompts:
        rows += pcm.training_prompts(2, 2)  # pc5's prompts: corpus + contrast x2 + direct requests x2
    pcm.train(argparse.Namespace(name=args.name, epochs=1, steps=args.steps, batch=32, lr=args.lr, head_lr=args.lr * 25, max_len=128,
                                 unsafe_weight=1.0, threads=args.threads, seed=0, resume=args.resume,
                                 arch="bidirectional", init=args.init, contrast_repeats=0, request_repeats=0), rows)


def evaluate(args: argparse.Namespace) -> None:
    from dev_suite import build, drop_overlap
    from evaluate import blocked_at_offset
    from fresh_probes import BENIGN, HARM
    torch.set_num_threads(args.threads)
    ck = torch.load(args.ckpt, weights_only=False)
    model = pcm.build_model("bidirectional")
    model.load_state_dict(ck["model"])
    tok = pcm.tokenizer(128)
    if args.stream_log:
        log = pickle.load(open(args.stream_log, "rb"))
        items, rlog = log["items"], log["rlog"]
    else:
        items = [x for x in drop_overlap(build())[0] if x["kind"] == "response" and not x["seen_by_02"]]
        rlog = None
    group = np.array([x["group"] for x in items])
    score = reply_scores(model, tok, [x["response"] for x in items])
    fresh_h, fresh_b = reply_scores(model, tok, HARM), reply_scores(model, tok, BENIGN)

    def row(blocked: np.ndarray, label: str) -> None:
        r, f = blocked[group == "response.alone.harmful"].mean(), blocked[group == "response.alone.benign"].mean()
        precision = r / (r + f) if r + f else 0.0
        f1 = 2 * precision * r / (precision + r) if precision + r else 0.0
        print(f"{label}: alone recall {r:.3f} FPR {f:.3f} F1(1:1) {f1:.3f} | with prompt "
              f"{blocked[group == 'response.with_prompt.harmful'].mean():.3f} / {blocked[group == 'response.with_prompt.benign'].mean():.3f}"
              f" | refusals blocked {blocked[group == 'response.refusal'].mean():.2f}")

    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        row(score >= t, f"classifier >= {t:.1f}")
        print(f"    fresh replies: harmful {int((fresh_h >= t).sum())}/{len(HARM)}, benign {int((fresh_b >= t).sum())}/{len(BENIGN)}")
    if rlog is not None:
        for delta in (-2.0, -1.5, -1.0):
            stream = blocked_at_offset(rlog, delta)
            for t in (0.7, 0.8):
                row(stream | (score >= t), f"stream {delta:+.1f} OR classifier >= {t:.1f}")
    if args.with_prompts_eval:
        pcm.evaluate(argparse.Namespace(ckpt=args.ckpt, max_len=128, threads=args.threads, save=None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--name", required=True)
    t.add_argument("--with-prompts", action="store_true", help="also pc5's training prompts (one classifier for both)")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--openers", action="store_true", help="replies also with an assistant opener in front, openers alone as safe (0.7)")
    t.add_argument("--init", help="start from this classifier checkpoint (e.g. work/rc2.pt)")
    t.add_argument("--steps", type=int, default=0, help="0: one epoch")
    t.add_argument("--lr", type=float, default=4e-5)
    e = sub.add_parser("eval")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--stream-log", help="product_path pickle of the dev suite's replies (offset 0) for the OR sweep")
    e.add_argument("--with-prompts-eval", action="store_true", help="also the prompt classifier's dev-suite sweep")
    e.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    train(args) if args.cmd == "train" else evaluate(args)


if __name__ == "__main__":
    main()
