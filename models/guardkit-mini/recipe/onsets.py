"""Derive the harm onset (character offset) of every unsafe / controversial response.

Token labels follow the Qwen3Guard-Stream convention: tokens before the onset are
safe, the onset token and everything after it take the response's label.

* Toxic-spans data: onset = start of the first annotated span (human, exact).
* Everything else: a cheap full-text *teacher* (a word+char n-gram TF-IDF logistic
  regression trained on the TRAIN split's full responses, not-safe vs safe) scores
  pieces of the response (the rollout-free analogue of Qwen3Guard's / SCM's labelling):
  1. sentence view (SCM-like): the response is cut into sentences / lines; the onset
     is the start of the first sentence whose own score is >= 0.5.  This keeps a
     refusal or a harmless preamble before a jailbroken answer on the safe side.
  2. if no sentence reaches 0.5 (harm spread over sentences), prefix view: the first
     word boundary whose prefix score reaches min(0.5, 0.8 * score(full response));
     the relative threshold makes sure every labelled-harmful response gets an onset.
     Prefix points: every word for the first 80 words, then every 4th word.

Usage:  python models/guardkit-mini/recipe/onsets.py   (after build_corpus.py)
Rewrites work/corpus.jsonl adding "onset" (char offset or null), and prints a
sample of onsets for reading (work/onset_sample.txt).
"""
from __future__ import annotations

import json
import os
import random
import re

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

WORK = os.path.join(os.path.dirname(__file__), "../work")


def prefix_points(text: str):
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    pts = ends[:80] + ends[80::4]
    if ends and pts[-1] != ends[-1]:
        pts.append(ends[-1])
    return pts


def main():
    path = os.path.join(WORK, "corpus.jsonl")
    items = [json.loads(l) for l in open(path, encoding="utf-8")]
    resp = [x for x in items if x["kind"] == "response"]
    train = [x for x in resp if x["split"] == "train"]
    wv = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200000, sublinear_tf=True)
    cv = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=3, max_features=200000, sublinear_tf=True)
    texts = [x["response"] for x in train]
    y = np.array([x["resp_label"] != "safe" for x in train], dtype=int)
    X = hstack([wv.fit_transform(texts), cv.fit_transform(texts)]).tocsr()
    clf = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
    clf.fit(X, y)
    dev = [x for x in resp if x["split"] == "dev"]
    Xd = hstack([wv.transform([x["response"] for x in dev]), cv.transform([x["response"] for x in dev])])
    pd = clf.predict_proba(Xd)[:, 1]
    yd = np.array([x["resp_label"] != "safe" for x in dev])
    tp = ((pd >= 0.5) & yd).sum()
    print(f"teacher dev: precision {tp / max(1, (pd >= 0.5).sum()):.3f} recall {tp / max(1, yd.sum()):.3f}")

    def score(strs):
        return clf.predict_proba(hstack([wv.transform(strs), cv.transform(strs)]))[:, 1]

    n_span = n_teacher = 0
    for x in items:
        x["onset"] = None
        if x["kind"] != "response" or x["resp_label"] == "safe":
            continue
        if x.get("spans"):
            x["onset"] = x["spans"][0][0]
            n_span += 1
            continue
        t = x["response"]
        sents = [(m.start(), m.group()) for m in re.finditer(r"[^.!?\n]+[.!?\n]*", t) if m.group().strip()]
        if len(sents) > 1:
            ss = score([s for _, s in sents])
            hit = np.flatnonzero(ss >= 0.5)
            if len(hit):
                st = sents[hit[0]][0]
                x["onset"] = st + (len(t[st:]) - len(t[st:].lstrip()))
                x["onset_method"] = "sentence"
                n_teacher += 1
                continue
        x["onset_method"] = "prefix"
        pts = prefix_points(t)
        if not pts:
            x["onset"] = 0
            continue
        sc = score([t[:p] for p in pts])
        thr = min(0.5, 0.8 * sc[-1])
        k = int(np.argmax(sc >= thr))
        # onset = start of the word that ended the first qualifying prefix
        end = pts[k]
        start = t.rfind(" ", 0, end - 1) + 1 if k > 0 else 0
        x["onset"] = max(0, start)
        x["teacher_full"] = float(sc[-1])
        n_teacher += 1
    print(f"onsets: {n_span} from spans, {n_teacher} from the teacher")
    with open(path, "w", encoding="utf-8") as f:
        for x in items:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    rnd = random.Random(3)
    sample = rnd.sample([x for x in items if x.get("onset") is not None and not x.get("spans")], 25)
    with open(os.path.join(WORK, "onset_sample.txt"), "w", encoding="utf-8") as f:
        for x in sample:
            t = x["response"]
            o = x["onset"]
            f.write(f"--- [{x['source']}/{x['resp_label']}/{x.get('onset_method')}] onset {o}/{len(t)} ({o / max(1, len(t)):.0%})\n")
            f.write(f"PROMPT: {x['prompt'][:150]!r}\n")
            f.write(f"BEFORE: {t[max(0, o - 200):o]!r}\nAFTER : {t[o:o + 160]!r}\n")
    fr = [x["onset"] / max(1, len(x["response"])) for x in items if x.get("onset") is not None]
    print(f"mean onset fraction (chars) {np.mean(fr):.3f}, median {np.median(fr):.3f}")
    from collections import Counter
    print(Counter(x.get("onset_method") for x in items if x.get("onset") is not None and not x.get("spans")))


if __name__ == "__main__":
    main()
