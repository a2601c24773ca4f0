"""Benign prompts and answers for the guardkit-mini 0.3 training pool.

0.1 and 0.2 were trained almost only on harmful or toxic text, so the prompt head
learnt "a request" -> unsafe.  These loaders read the benign part of
../shared/data/raw (SOURCES.md, last section) into the corpus record schema of
build_corpus.py, minding each source's caveats:

* CoCoNot: only the contrast prompts and the non-safety categories are benign; the
  "Requests with safety concerns" of coconot_eval are left for the dev suite.
* awesome-chatgpt-prompts: jailbreak personas are screened out (JAILBREAK_MARKERS).
* TruthfulQA: the "incorrect answers" are misinformation and are never used.
* Sources held out whole for the out-of-distribution dev suite (dev_suite.py) are not
  read here: BANKING77, M-IFEval, self-instruct user-oriented instructions and their
  predictions, the CoCoNot contrast eval set, TruthfulQA, Vicuna-bench, Arena-Hard v2.0.
"""
from __future__ import annotations

import csv
import glob
import gzip
import json
import random
import re

SAFE = "safe"
JAILBREAK_MARKERS = re.compile(r"\b(DAN|jailbr\w*|unfiltered|no (ethical|moral) (guidelines|restrictions)|without any (restrictions|filters)|"
                               r"ignore (all|your) (previous|prior)|developer mode|uncensored|amoral|do anything now)\b", re.I)


def _jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _sample(rows, n, seed):
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def benign_prompts(raw: str, rec) -> list[dict]:
    """Ordinary and edgy-but-benign user prompts, labelled safe by source."""
    out = []

    def P(src, text):
        out.append(rec(src, "prompt", text, None, None, None, SAFE, None))

    data = json.load(open(f"{raw}/clinc150/data_full.json", encoding="utf-8"))
    for text, _intent in _sample(data["train"] + data["oos_train"], 3000, 11):
        P("clinc150", text)
    for q in _jsonl(f"{raw}/fastchat-llm-judge/mt_bench/question.jsonl"):
        for t in q["turns"]:
            P("mt-bench", t)
    for q in _jsonl(f"{raw}/arena-hard-auto/arena-hard-v0.1/question.jsonl"):
        P("arena-hard-v0.1", q["prompt"])
    for r in _jsonl(f"{raw}/coconot/coconot_pref.jsonl"):
        P("coconot-pref", r["prompt"])
    for r in _jsonl(f"{raw}/coconot/coconot_eval.jsonl"):
        if r["category"] != "Requests with safety concerns":  # incomplete / unsupported / indeterminate / humanizing
            P("coconot-noncompliance-benign", r["prompt"])
    for p in sorted(glob.glob(f"{raw}/or-bench-80k-hevs/*.csv")):
        for r in csv.DictReader(open(p, encoding="utf-8")):
            if r.get("text_en", "").strip():
                P("or-bench-80k", r["text_en"])
    for r in json.load(open(f"{raw}/purplellama-mitre-frr/mitre_frr.json", encoding="utf-8")):
        P("mitre-frr", r["mutated_prompt"])
    for r in json.load(open(f"{raw}/gpteacher/roleplay-simple-deduped-roleplay-instruct.json", encoding="utf-8")):
        P("gpteacher-roleplay", (r["instruction"] + "\n" + r.get("input", "")).strip())
    for r in _sample(json.load(open(f"{raw}/gpteacher/codegen-instruct.json", encoding="utf-8")), 800, 12):
        P("gpteacher-code", (r["instruction"] + "\n" + r.get("input", "")).strip())
    for r in _jsonl(f"{raw}/self-instruct/seed_tasks.jsonl"):
        P("self-instruct-seed", r["instruction"])
    for r in _sample(_jsonl(f"{raw}/gsm8k/test.jsonl"), 400, 13):
        P("gsm8k", r["question"])
    for r in _jsonl(f"{raw}/human-eval/HumanEval.jsonl.gz"):
        P("human-eval", r["prompt"])
    for r in csv.DictReader(open(f"{raw}/awesome-chatgpt-prompts/prompts.csv", encoding="utf-8")):
        text = r.get("prompt", "")
        if text and not JAILBREAK_MARKERS.search(text + " " + r.get("act", "")):
            P("awesome-chatgpt-prompts", text)
    from self_written import BENIGN_PROMPTS, EDGY_PAIRS, EVERYDAY_PROMPTS
    for t in BENIGN_PROMPTS + [p for p, _ in EDGY_PAIRS]:
        P("self-written-benign", t)
    for t in EVERYDAY_PROMPTS:
        P("self-written-everyday", t)
    return out


def benign_responses(raw: str, rec, non_english: bool = False) -> list[dict]:
    """Benign assistant answers (with their prompts), labelled safe on every token; ``non_english``
    (build_corpus.py --non-english, 0.6) adds Japanese answers and Chinese non-offensive comments."""
    out = []

    def R(src, prompt, answer):
        if answer and answer.strip():
            out.append(rec(src, "response", prompt, answer, SAFE, None, SAFE, None))

    qs = {q["question_id"]: q["turns"] for q in _jsonl(f"{raw}/fastchat-llm-judge/mt_bench/question.jsonl")}
    rows = []
    for p in sorted(glob.glob(f"{raw}/fastchat-llm-judge/mt_bench/model_answer/*.jsonl")):
        for r in _jsonl(p):
            turns = r["choices"][0]["turns"]
            for i, ans in enumerate(turns[:2]):
                rows.append((qs.get(r["question_id"], ["", ""])[i] if r["question_id"] in qs else "", ans))
    for prompt, ans in _sample(rows, 2500, 21):
        R("mt-bench-answers", prompt, ans)
    rows = []
    for p in sorted(glob.glob(f"{raw}/arena-hard-auto/arena-hard-v0.1/model_answer/*.jsonl")):
        for r in _jsonl(p):
            msgs = r["messages"]
            ans = msgs[-1]["content"]
            rows.append((msgs[0]["content"], ans["answer"] if isinstance(ans, dict) else ans))
    for prompt, ans in _sample(rows, 1000, 22):
        R("arena-hard-v0.1-answers", prompt, ans)
    for r in _jsonl(f"{raw}/coconot/coconot_pref.jsonl"):
        R("coconot-pref-chosen", r["prompt"], r["chosen"])
        R("coconot-pref-rejected", r["prompt"], r["rejected"])  # over-refusals and hedges: still safe text
    for r in _sample(json.load(open(f"{raw}/gpteacher/roleplay-simple-deduped-roleplay-instruct.json", encoding="utf-8")), 1200, 23):
        R("gpteacher-roleplay", (r["instruction"] + "\n" + r.get("input", "")).strip(), r["response"])
    for r in _sample(json.load(open(f"{raw}/gpteacher/codegen-instruct.json", encoding="utf-8")), 600, 24):
        R("gpteacher-code", (r["instruction"] + "\n" + r.get("input", "")).strip(), r["response"])
    for r in _sample(_jsonl(f"{raw}/gsm8k/test.jsonl"), 300, 25):
        R("gsm8k", r["question"], re.sub(r"<<[^>]*>>", "", r["answer"]))
    if non_english:
        # 0.6: the model is English-first, but it must not read CJK text as harm (0.5 blocked
        # Chinese and mixed Chinese/code answers early); Japanese answers and COLD's
        # non-offensive Chinese comments are safe on every token.
        questions = {q["question_id"]: q["turns"][0] for q in _jsonl(f"{raw}/ja-vicuna-qa/question.jsonl")}
        for p in sorted(glob.glob(f"{raw}/ja-vicuna-qa/model_answer/*.jsonl")):
            for r in _jsonl(p):
                R("ja-vicuna-answers", questions.get(r["question_id"], ""), r["choices"][0]["turns"][0].strip())
        cold = [r["TEXT"] for r in csv.DictReader(open(f"{raw}/cold/train.csv", encoding="utf-8-sig")) if r["label"] == "0"]
        for text in _sample(cold, 800, 26):
            R("cold-non-offensive", "", text)
    from self_written import EDGY_PAIRS
    for p, a in EDGY_PAIRS:
        R("self-written-benign", p, a)
    return out
