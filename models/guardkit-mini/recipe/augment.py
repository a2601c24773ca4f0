"""Add response-supervision examples to work/corpus.jsonl (0.3; run after onsets.py).

0.2's response head leaned on the prompt: with a harmful prompt it flagged a refusal
at its first token, and with no prompt it missed most harmful replies.  These
examples make the response head judge the response (issue 13, cause 2).  All are
built from TRAIN-split items only and stay in the train split:

* response-alone  : a response item repeated with no prompt (empty prompt, prompt
                    head unsupervised); its token labels are unchanged.
* refusal         : a harmful prompt + a self-written refusal (REFUSALS) -> safe on
                    every token.
* harmless-answer : a harmful prompt + an unrelated benign answer -> safe.
* mismatched-harm : a benign prompt + a harmful answer -> the answer's own labels.
* diluted         : a harmful answer after a harmless opening (a BENIGN_LEADS line or
                    the first sentences of a benign answer); the onset moves with it,
                    so the opening stays safe and the harm is still caught.
* sw-harmful      : (0.5) the self-written harmful replies of reply_sets.py, each alone,
                    after its own prompt, after a benign prompt, and after a harmless
                    opening (BENIGN_REPLY_OPENINGS), with the hand-marked onset.
* sw-benign       : (0.5) the self-written edgy-but-benign replies of reply_sets.py,
                    alone and after their prompt: safe on every token.
* mid-window      : (--mid-windows) a long benign answer from a random word in its
                    middle, with no prompt: what the runtime's re-prefill shows the model
                    deep into a long reply (a window that starts mid-text). Safe.
* long-diluted    : (--long-diluted) a harmful answer after 40-110 words of a benign
                    answer, onset shifted: harm deep into a reply, still inside the
                    training length.

Usage:  python models/guardkit-mini/recipe/augment.py   (idempotent: earlier aug- items are replaced)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re

from dev_overlap import near_dev
from reply_sets import BENIGN_EDGY_REPLIES, BENIGN_REPLY_OPENINGS, HARMFUL_REPLIES
from self_written import BENIGN_LEADS, REFUSALS
from weak_categories import weak_category

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../work")
BENIGN_ANSWER_SOURCES = {"mt-bench-answers", "arena-hard-v0.1-answers", "coconot-pref-chosen", "gpteacher-roleplay",
                         "gpteacher-code", "gsm8k", "self-written-benign"}


def first_sentences(text: str, max_chars: int = 220) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    out = ""
    for p in parts:
        if out and len(out) + len(p) > max_chars:
            break
        out = (out + " " + p).strip()
    return out[:max_chars]


def add_deep_examples(add, rnd, mid_windows, long_diluted, benign_answers, unsafe):
    """mid-window and long-diluted examples (own random stream: the other kinds stay as they were)."""
    long_answers = [a for a in benign_answers if len(a.split()) >= 150]
    if not long_answers:
        return
    for _ in range(mid_windows):
        words = rnd.choice(long_answers).split(" ")
        start = rnd.randrange(len(words) // 4, len(words) - 40)
        add("mid-window", None, prompt="", prompt_label=None, response=" ".join(words[start:]),
            resp_label="safe", onset=None)
    for x in rnd.sample(unsafe, min(long_diluted, len(unsafe))):
        lead = " ".join(rnd.choice(long_answers).split(" ")[: rnd.randint(40, 110)])
        sep = rnd.choice([" ", "\n\n", "\n"])
        add("long-diluted", x, prompt="", prompt_label=None, response=lead + sep + x["response"],
            onset=len(lead) + len(sep) + x["onset"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alone-rate", type=float, default=0.35)
    ap.add_argument("--refusals", type=int, default=1500)
    ap.add_argument("--harmless", type=int, default=500)
    ap.add_argument("--mismatched", type=int, default=1500)
    ap.add_argument("--diluted", type=int, default=1500)
    ap.add_argument("--self-written-repeats", type=int, default=2,
                    help="times each variant of a reply_sets.py reply is added")
    ap.add_argument("--mid-windows", type=int, default=0, help="mid-window examples (re-prefill views of long answers)")
    ap.add_argument("--long-diluted", type=int, default=0, help="harmful answers after a long benign opening")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    path = os.path.join(WORK, "corpus.jsonl")
    items = [json.loads(line) for line in open(path, encoding="utf-8")]
    items = [x for x in items if not x["source"].startswith("aug-")]
    train = [x for x in items if x["split"] == "train"]
    harmful_prompts = sorted({x["prompt"] for x in train if x.get("prompt_label") == "unsafe" and x["prompt"]
                              and x.get("prompt_cat") != "jailbreak" and len(x["prompt"]) < 600})
    jailbreaks = sorted({x["prompt"] for x in train if x.get("prompt_cat") == "jailbreak"})
    benign_prompts = sorted({x["prompt"] for x in train if x["kind"] == "prompt" and x.get("prompt_label") == "safe"
                             and len(x["prompt"]) < 600})
    unsafe = [x for x in train if x["kind"] == "response" and x.get("resp_label") == "unsafe" and x.get("onset") is not None]
    benign_answers = [x["response"] for x in train if x["kind"] == "response" and x["source"] in BENIGN_ANSWER_SOURCES]
    print(f"pools: harmful prompts {len(harmful_prompts)}, jailbreaks {len(jailbreaks)}, benign prompts {len(benign_prompts)}, "
          f"unsafe responses {len(unsafe)}, benign answers {len(benign_answers)}")

    new = []

    def add(kind, base, **kw):
        x = dict(base) if base else dict(kind="response", resp_cat=None, prompt_cat=None, group="")
        x.update(kw, source="aug-" + kind, split="train", spans=None)
        new.append(x)

    for x in train:
        if x["kind"] == "response" and x["prompt"] and rnd.random() < args.alone_rate:
            add("response-alone", x, prompt="", prompt_label=None, prompt_cat=None)
    for _ in range(args.refusals):
        p = rnd.choice(jailbreaks) if (jailbreaks and rnd.random() < 0.2) else rnd.choice(harmful_prompts)
        add("refusal", None, prompt=p, response=rnd.choice(REFUSALS), resp_label="safe", onset=None,
            prompt_label="unsafe", prompt_cat="jailbreak" if p in jailbreaks else weak_category(p))
    for _ in range(args.harmless):
        p = rnd.choice(harmful_prompts)
        add("harmless-answer", None, prompt=p, response=rnd.choice(benign_answers), resp_label="safe", onset=None,
            prompt_label="unsafe", prompt_cat=weak_category(p))
    for x in rnd.sample(unsafe, min(args.mismatched, len(unsafe))):
        add("mismatched-harm", x, prompt=rnd.choice(benign_prompts), prompt_label="safe", prompt_cat=None)
    for x in rnd.sample(unsafe, min(args.diluted, len(unsafe))):
        lead = rnd.choice(BENIGN_LEADS) if rnd.random() < 0.5 else first_sentences(rnd.choice(benign_answers))
        sep = rnd.choice([" ", "\n\n", "\n"])
        prompt = x["prompt"] if rnd.random() < 0.5 else ""
        add("diluted", x, prompt=prompt, prompt_label=x.get("prompt_label") if prompt else None,
            response=lead + sep + x["response"], onset=len(lead) + len(sep) + x["onset"])
    harmful_sw = [r for r in HARMFUL_REPLIES if not near_dev(r[1].replace("||", ""), "response", 0.5)]
    benign_sw = [r for r in BENIGN_EDGY_REPLIES if not near_dev(r[1], "response", 0.5)]
    print(f"self-written replies: {len(harmful_sw)}/{len(HARMFUL_REPLIES)} harmful, {len(benign_sw)}/{len(BENIGN_EDGY_REPLIES)} "
          "benign kept (the rest are near a dev-suite reply)")
    for _ in range(args.self_written_repeats):
        for prompt, marked, cat in harmful_sw:
            onset = marked.index("||")
            reply = marked.replace("||", "", 1)
            base = dict(kind="response", resp_label="unsafe", resp_cat=cat, group=reply[:60].lower())
            add("sw-harmful", base, prompt="", prompt_label=None, prompt_cat=None, response=reply, onset=onset)
            add("sw-harmful", base, prompt=prompt, prompt_label=None, prompt_cat=None, response=reply, onset=onset)
            add("sw-harmful", base, prompt=rnd.choice(benign_prompts), prompt_label="safe", prompt_cat=None,
                response=reply, onset=onset)
            lead = rnd.choice(BENIGN_REPLY_OPENINGS) + rnd.choice([" ", "\n\n"])
            add("sw-harmful", base, prompt=prompt if rnd.random() < 0.5 else "", prompt_label=None, prompt_cat=None,
                response=lead + reply, onset=len(lead) + onset)
        for prompt, reply in benign_sw:
            base = dict(kind="response", resp_label="safe", resp_cat=None, group=reply[:60].lower(), onset=None)
            add("sw-benign", base, prompt="", prompt_label=None, prompt_cat=None, response=reply)
            add("sw-benign", base, prompt=prompt, prompt_label="safe", prompt_cat=None, response=reply)
    add_deep_examples(add, random.Random(args.seed + 1), args.mid_windows, args.long_diluted, benign_answers, unsafe)
    next_id = max(x["id"] for x in items) + 1
    for i, x in enumerate(new):
        x["id"] = next_id + i
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for x in items + new:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    os.replace(path + ".tmp", path)
    from collections import Counter
    print("added", len(new), dict(Counter(x["source"] for x in new)))


if __name__ == "__main__":
    main()
