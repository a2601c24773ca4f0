"""Evaluate on labelled data that training never saw (out of distribution), with peers.

Two sets from ../shared/data/raw that the corpus does not use:
  * ETHOS binary (984 English comments, `isHate` >= 0.5 -> unsafe).  GPL-3.0, so it can
    never be trained on or shipped; reading it for evaluation is fine.
  * RTP-LX, English locale (999 human-rated toxic / non-toxic sentence openings;
    mean Toxicity >= 3 of 1..5 -> unsafe, <= 2 -> safe, in between dropped).  MIT repo,
    the EN prompts come from RealToxicityPrompts (Apache-2.0).
Each text is scored twice: as an assistant response to an empty prompt (the response
head, the runtime's streaming rule: two consecutive tokens with p_unsafe >= 0.5) and as
a user prompt (the prompt head at the prompt's last token).  Peers on the same texts:
alt-profanity-check (p >= 0.5) and hatesonar (top class not "neither").

Usage:  LC_ALL=en_US.UTF-8 python evaluate_ood.py [--model models/guardkit-mini/model.onnx]
Writes work/eval_ood.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os

import numpy as np
from tokenizers import Tokenizer

from bench import Runner
from build_corpus import RAW
from evaluate import MAX_RESP, f1, halt_index, render, softmax

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")


def ethos():
    rows = csv.DictReader(open(f"{RAW}/ethos/Ethos_Dataset_Binary.csv", encoding="utf-8"), delimiter=";")
    return [(r["comment"].strip(), float(r["isHate"]) >= 0.5) for r in rows if r["comment"].strip()]


def rtp_lx_en():
    out = []
    for line in open(f"{RAW}/rtp-lx/RTP_LX_EN.json", encoding="utf-8"):
        r = json.loads(line)
        tox = r["Annotations"]["Toxicity"]
        if tox >= 3 or tox <= 2:
            out.append((r["Prompt"].strip().strip('"').strip(), tox >= 3))
    return out


def scores(run, tok, texts):
    resp_blocked, prompt_unsafe = [], []
    pids = render(tok, {"prompt": ""})  # responses to an empty prompt
    for t in texts:
        rids = tok.encode(t, add_special_tokens=False).ids[:MAX_RESP]
        ids = np.array([pids + rids], np.int64)
        p = softmax(run.run_chunked(ids, ids.shape[1])[0][0, len(pids):])
        resp_blocked.append(halt_index(p) is not None)
        q = render(tok, {"prompt": t})
        o = run.run_chunked(np.array([q], np.int64), len(q))
        prompt_unsafe.append(bool(softmax(o[2][0, -1])[2] >= 0.5))
    return np.array(resp_blocked), np.array(prompt_unsafe)


def with_fpr(pred, gold):
    return dict(**f1(pred, gold), fpr=float(pred[~gold].mean()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(BUNDLE, "model.onnx"))
    ap.add_argument("--out", default=os.path.join(WORK, "eval_ood.json"))
    args = ap.parse_args()
    os.environ.setdefault("LC_ALL", "en_US.UTF-8")
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    run = Runner(args.model, threads=1)
    from hatesonar import Sonar
    from profanity_check import predict_prob
    sonar = Sonar()
    res = {}
    for name, data in (("ethos", ethos()), ("rtp-lx-en", rtp_lx_en())):
        texts = [t for t, _ in data]
        gold = np.array([g for _, g in data])
        rb, pu = scores(run, tok, texts)
        prof = predict_prob(texts) >= 0.5
        hs = np.array([sonar.ping(text=t[:2000])["top_class"] != "neither" for t in texts])
        res[name] = {"n": len(texts), "unsafe": int(gold.sum()),
                     "guardkit-mini response head": with_fpr(rb, gold),
                     "guardkit-mini prompt head": with_fpr(pu, gold),
                     "alt-profanity-check": with_fpr(prof, gold),
                     "hatesonar": with_fpr(hs, gold)}
        for k, v in res[name].items():
            if isinstance(v, dict):
                print(f"{name:10s} {k:30s} F1 {v['f1']:.3f}  P {v['precision']:.3f}  R {v['recall']:.3f}  FPR {v['fpr']:.3f}")
    json.dump(res, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
