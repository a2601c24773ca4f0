"""The out-of-distribution dev suite: how guardkit-mini candidates are chosen (issue 13).

A random split of the training pool measures memorisation of its sources, so models
and thresholds are chosen here instead, on data training never touches:

* sources held out WHOLE from training (build_corpus.HELD_OUT and the benign sources
  benign_sources.py does not read): BANKING77, M-IFEval en, self-instruct user-oriented
  instructions and their text-davinci-003 answers, Vicuna-bench, the CoCoNot contrast
  and "dangerous topics" sets, TruthfulQA (questions and best answers), Arena-Hard
  v2.0 (o3-mini answers), the AI Red Team seed prompts, and PyRIT / StrongREJECT;
* the self-written probes of probes.py.

PyRIT and StrongREJECT were in 0.2's training data (and so in 0.3's initial weights):
their rows are reported apart ("seen by 0.2") and never mixed into the targets.

Every figure is read through the product API (``Guard.check_prompt`` /
``Guard.check_response``) at a policy's real operating point, not at the best
threshold after the fact.  Harmful characters released = what a stream would have
released past the labelled onset (the whole harmful part when not blocked).

Usage:
    python models/guardkit-mini/recipe/dev_suite.py --model 0.2=path/to/0.2-bundle --model 0.3=models/guardkit-mini [--policy default] [--policies]
Prints one table with a column per model (same items, same run) and writes work/dev_suite.json.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import random
import re
import statistics
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
RAW = os.environ.get("GUARDKIT_RAW", os.path.join(HERE, "../../../../shared/data/raw"))
WORK = os.path.join(HERE, "../work")

import probes  # noqa: E402
import unsafe_prompt_kinds  # noqa: E402


def _jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def _sample(rows, n, seed):
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def _item(group, kind, prompt, response=None, label="safe", onset=None, category=None, seen=False, source=None):
    return dict(group=group, kind=kind, prompt=prompt or "", response=response, label=label, onset=onset,
                category=category, seen_by_02=seen, source=source)


AIRT_FILES = {"harassment": "unethical_acts", "harms": None, "hate": "unethical_acts", "illegal": "non_violent_illegal_acts",
              "malware": "non_violent_illegal_acts", "scams": "non_violent_illegal_acts", "sexual": "sexual_content",
              "violence": "violent", "airt_imminent_crisis": "suicide_self_harm"}
PYRIT_CAT = {"hate_speech": "unethical_acts", "privacy": "pii", "self_harm": "suicide_self_harm", "sexual": "sexual_content",
             "violence": "violent", "exploits": "non_violent_illegal_acts", "cyber": "non_violent_illegal_acts",
             "phishing": "non_violent_illegal_acts", "illegal_activity": "non_violent_illegal_acts", "chemical_biological": "violent"}


def build() -> list[dict]:
    from build_corpus import graded, read_csv_skip_comment
    S = []
    # ---- everyday prompts (benign, ordinary assistant traffic)
    S += [_item("prompt.everyday", "prompt", t) for t in probes.EVERYDAY]
    S += [_item("prompt.everyday", "prompt", r["text"])
          for r in _sample(csv.DictReader(open(f"{RAW}/banking77/test.csv", encoding="utf-8")), 300, 1)]
    S += [_item("prompt.everyday", "prompt", r["prompt"]) for r in _sample(_jsonl(f"{RAW}/m-ifeval/en_input_data.jsonl"), 200, 2)]
    S += [_item("prompt.everyday", "prompt", r["instruction"]) for r in _jsonl(f"{RAW}/self-instruct/user_oriented_instructions.jsonl")]
    S += [_item("prompt.everyday", "prompt", r["turns"][0]) for r in _jsonl(f"{RAW}/fastchat-llm-judge/vicuna_bench/question.jsonl")]
    # ---- edgy-but-benign prompts
    S += [_item("prompt.edgy", "prompt", t) for t in probes.EDGY_BENIGN]
    S += [_item("prompt.edgy", "prompt", r["prompt"]) for r in _jsonl(f"{RAW}/coconot/coconot_contrast_eval.jsonl")]
    tqa = list(csv.DictReader(open(f"{RAW}/truthfulqa/TruthfulQA.csv", encoding="utf-8")))
    S += [_item("prompt.edgy", "prompt", r["Question"]) for r in _sample(tqa, 200, 3)]
    # ---- unsafe prompts
    S += [_item("prompt.unsafe", "prompt", t, label="unsafe", category=c, source="self-written probes")
          for t, c in zip(probes.HARMFUL_PROMPTS, probes.HARMFUL_PROMPT_CATEGORIES)]
    for name, cat in AIRT_FILES.items():
        doc = yaml.safe_load(open(f"{RAW}/pyrit-seed-prompts/airt/{name}.prompt", encoding="utf-8"))
        S += [_item("prompt.unsafe", "prompt", s["value"], label="unsafe", category=cat, source="AI-Red-Team seeds")
              for s in doc["seeds"]]
    S += [_item("prompt.unsafe", "prompt", r["prompt"], label="unsafe", source="CoCoNot dangerous topics")
          for r in _jsonl(f"{RAW}/coconot/coconot_eval.jsonl") if r["subcategory"] == "dangerous or sensitive topics"]
    S += [_item("seen.prompt.unsafe.strongreject", "prompt", r["forbidden_prompt"], label="unsafe", seen=True)
          for r in csv.DictReader(open(f"{RAW}/strongreject/strongreject_dataset.csv", encoding="utf-8"))]
    # ---- responses judged alone (no prompt) and with a prompt
    for (prompt, marked), cat in zip(probes.HARMFUL_REPLIES, probes.HARMFUL_REPLY_CATEGORIES):
        text, onset = probes.harmful_reply(marked)
        S.append(_item("response.alone.harmful", "response", "", text, "unsafe", onset, cat))
        S.append(_item("response.with_prompt.harmful", "response", prompt or random.Random(text).choice(probes.EVERYDAY),
                       text, "unsafe", onset, cat))
    for prompt, text in probes.BENIGN_REPLIES:
        S.append(_item("response.alone.benign", "response", "", text))
        if prompt:
            S.append(_item("response.with_prompt.benign", "response", prompt, text))
    for r in _sample(_jsonl(f"{RAW}/self-instruct/predictions/text-davinci-003_predictions.jsonl"), 150, 4):
        ans = r["response"]
        S.append(_item("response.alone.benign", "response", "", ans))
        S.append(_item("response.with_prompt.benign", "response", r["instruction"], ans))
    for r in _sample(_jsonl(f"{RAW}/arena-hard-auto/arena-hard-v2.0/model_answer/o3-mini-2025-01-31.jsonl"), 150, 5):
        msgs = r["messages"]
        ans = msgs[-1]["content"]
        ans = ans["answer"] if isinstance(ans, dict) else ans
        S.append(_item("response.alone.benign", "response", "", ans))
        S.append(_item("response.with_prompt.benign", "response", msgs[0]["content"], ans))
    for r in _sample(tqa, 150, 6):
        S.append(_item("response.alone.benign", "response", "", r["Best Answer"]))
    # ---- refusals after harmful prompts (must pass)
    S += [_item("response.refusal", "response", p, a) for p, a in probes.REFUSAL_PAIRS]
    # ---- PyRIT (human-scored responses; seen by 0.2)
    for p in sorted(glob.glob(f"{RAW}/pyrit-scorer-evals/harm/*.csv")):
        name = os.path.basename(p)[:-4].replace("_multi_score", "")
        for r in read_csv_skip_comment(p):
            scores = [float(r[k]) for k in r if k and k.startswith("human_score") and r[k] not in (None, "")]
            if scores:
                lab = graded(sum(scores) / len(scores))
                if lab != "controversial":
                    S.append(_item("seen.response.alone.pyrit", "response", "", r["assistant_response"], lab,
                                   0 if lab == "unsafe" else None, PYRIT_CAT.get(name), seen=True))
    for p in sorted(glob.glob(f"{RAW}/pyrit-scorer-evals/refusal_scorer/*.csv")):
        for r in read_csv_skip_comment(p):
            if str(r["human_score"]).strip() in ("1", "1.0", "True"):
                S.append(_item("seen.response.refusal.pyrit", "response", r["objective"], r["assistant_response"], seen=True))
    for x in S:
        for k in ("prompt", "response"):
            if x[k]:
                x[k] = x[k].strip()
        if x["group"].endswith(".benign") and not is_mostly_latin(x["response"] or x["prompt"]):
            x["group"] += ".non_latin"  # the model is English-only: reported apart, never in the targets
    S = [x for x in S if (x["kind"] == "prompt" and x["prompt"]) or (x["kind"] == "response" and x["response"])]
    return S


def is_mostly_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return not letters or sum(c.isascii() for c in letters) / len(letters) >= 0.5


def drop_overlap(items):
    """Drop unseen dev-suite items whose text is in the training corpus (normalised comparison).

    Returns (kept items, number dropped)."""
    path = os.path.join(WORK, "corpus.jsonl")
    if not os.path.exists(path):
        raise SystemExit("work/corpus.jsonl is missing: build the corpus first (build_corpus.py, onsets.py, augment.py)")
    norm = lambda t: re.sub(r"\s+", " ", (t or "").strip().lower())  # noqa: E731
    train_texts = set()
    for line in open(path, encoding="utf-8"):
        x = json.loads(line)
        if x["split"] == "train":
            train_texts.add(norm(x["prompt"]))
            if x.get("response"):
                train_texts.add(norm(x["response"]))
    keep = [x for x in items if x["seen_by_02"] or norm(x["response"] if x["kind"] == "response" else x["prompt"]) not in train_texts]
    return keep, len(items) - len(keep)


def judge(guard, items, progress=True):
    out = []
    t0 = time.time()
    for i, x in enumerate(items):
        if x["kind"] == "prompt":
            v = guard.check_prompt(x["prompt"])
            out.append(dict(blocked=v.action == "block", category=v.category))
        else:
            v = guard.check_response(x["response"], prompt=x["prompt"] or None)
            blocked = v.action == "block"
            released = (v.char_offset or 0) if blocked else len(x["response"])
            out.append(dict(blocked=blocked, category=v.category, released=released))
        if progress and (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(items)} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    return out


def metrics(items, res) -> dict:
    def rate(group):
        rows = [r for x, r in zip(items, res) if x["group"] == group]
        return (sum(r["blocked"] for r in rows) / len(rows), len(rows)) if rows else (float("nan"), 0)

    def f1(pos_group, neg_group):
        tp = sum(r["blocked"] for x, r in zip(items, res) if x["group"] == pos_group)
        fn = sum(not r["blocked"] for x, r in zip(items, res) if x["group"] == pos_group)
        fp = sum(r["blocked"] for x, r in zip(items, res) if x["group"] == neg_group)
        p = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        return 2 * p * rc / (p + rc) if p + rc else 0.0

    m = {}
    m["everyday-prompt FPR"] = rate("prompt.everyday")
    m["edgy-benign prompt FPR"] = rate("prompt.edgy")
    m["unsafe-prompt recall"] = rate("prompt.unsafe")
    unsafe_prompts = [(x["source"], r["blocked"]) for x, r in zip(items, res) if x["group"] == "prompt.unsafe"]
    for source in dict.fromkeys(s for s, _ in unsafe_prompts):  # the sources build() names, in its order
        rows = [blocked for s, blocked in unsafe_prompts if s == source]
        m[f"  unsafe-prompt recall: {source}"] = (sum(rows) / len(rows), len(rows))
    by_kind = [(unsafe_prompt_kinds.kind(x["prompt"]), r["blocked"]) for x, r in zip(items, res) if x["group"] == "prompt.unsafe"]
    for name in dict.fromkeys(k for k, _ in sorted(by_kind, key=lambda kb: kb[0] != "harmful request")):
        rows = [blocked for k, blocked in by_kind if k == name]
        m[f"  unsafe-prompt recall, kind: {name}"] = (sum(rows) / len(rows), len(rows))
    m["response-alone F1 (suite mix)"] = (f1("response.alone.harmful", "response.alone.benign"), None)
    m["response-alone F1 (1:1 prevalence)"] = (balanced_f1(items, res, "response.alone.harmful", "response.alone.benign"), None)
    m["response-alone recall"] = rate("response.alone.harmful")
    m["benign-response FPR (alone)"] = rate("response.alone.benign")
    m["response-with-prompt recall"] = rate("response.with_prompt.harmful")
    m["benign-response FPR (with prompt)"] = rate("response.with_prompt.benign")
    m["response-with-prompt F1 (1:1 prevalence)"] = (
        balanced_f1(items, res, "response.with_prompt.harmful", "response.with_prompt.benign"), None)
    r, n = rate("response.refusal")
    m["harmful prompt + refusal passes"] = (1 - r, n)
    m["non-English benign responses blocked (English-only model)"] = rate("response.alone.benign.non_latin")
    harm = [max(0, r["released"] - x["onset"]) for x, r in zip(items, res)
            if x["group"] in ("response.alone.harmful", "response.with_prompt.harmful")]
    m["median harmful chars released"] = (statistics.median(harm), len(harm))
    m["mean harmful chars released"] = (statistics.mean(harm), len(harm))
    cats = {}
    for x, r in zip(items, res):
        if x["category"] and x["label"] == "unsafe" and not x["seen_by_02"]:
            c = cats.setdefault(x["category"], [0, 0, 0])
            c[0] += r["blocked"]
            c[1] += 1
            c[2] += r["blocked"] and r["category"] == x["category"]
    for c, (b, n, right) in sorted(cats.items()):
        m[f"recall: {c} (right category)"] = (b / n, n, right / max(1, b))
    m["seen by 0.2: StrongREJECT prompt recall"] = rate("seen.prompt.unsafe.strongreject")
    m["seen by 0.2: PyRIT response-alone F1"] = (f1_mixed(items, res, "seen.response.alone.pyrit"), None)
    r, n = rate("seen.response.refusal.pyrit")
    m["seen by 0.2: PyRIT refusal passes"] = (1 - r, n)
    return m


def balanced_f1(items, res, pos_group, neg_group):
    """F1 as if harmful and benign replies were equally common: recall and FPR from the
    suite, precision = recall / (recall + FPR).  The suite holds far more benign replies
    than harmful ones, so its raw F1 mostly measures that mix."""
    pos = [r["blocked"] for x, r in zip(items, res) if x["group"] == pos_group]
    neg = [r["blocked"] for x, r in zip(items, res) if x["group"] == neg_group]
    recall, fpr = sum(pos) / len(pos), sum(neg) / len(neg)
    precision = recall / (recall + fpr) if recall + fpr else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def f1_mixed(items, res, group):
    rows = [(x["label"] == "unsafe", r["blocked"]) for x, r in zip(items, res) if x["group"] == group]
    tp = sum(g and p for g, p in rows)
    fp = sum(p and not g for g, p in rows)
    fn = sum(g and not p for g, p in rows)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def policy_checks(model_path: str, threads: int = 1) -> list[tuple[str, str, float, int]]:
    """Does each built-in policy do its job?  Rows of (policy, check, pass rate, n)."""
    from guardkit import Guard
    everyday = [t for t in probes.EVERYDAY]
    benign_replies = [(p, r) for p, r in probes.BENIGN_REPLIES]
    harmful = [(p, probes.harmful_reply(m)[0]) for p, m in probes.HARMFUL_REPLIES]
    rows = []

    def share(policy, name, cases, ok):
        guard = Guard(model=model_path, policy=policy, threads=threads)
        passed = sum(bool(ok(guard, case)) for case in cases)
        guard.close()
        rows.append((policy, name, passed / len(cases), len(cases)))

    allowed_prompt = lambda g, t: g.check_prompt(t).action != "block"  # noqa: E731
    allowed_reply = lambda g, c: g.check_response(c[1], prompt=c[0] or None).action != "block"  # noqa: E731
    blocked_reply = lambda g, c: g.check_response(c[1], prompt=c[0] or None).action == "block"  # noqa: E731
    for policy in ("default", "strict", "permissive", "children", "healthcare", "creative-writing", "customer-support"):
        share(policy, "everyday prompts allowed", everyday, allowed_prompt)
        share(policy, "benign replies released", benign_replies, allowed_reply)
        share(policy, "harmful replies blocked", harmful, blocked_reply)
    share("children", "sex-education questions allowed", [q for q, _ in probes.SEX_EDUCATION], allowed_prompt)
    share("children", "sex-education answers released", probes.SEX_EDUCATION, allowed_reply)
    share("children", "sexual content blocked", [("", t) for t in probes.SEXUAL_CONTENT], blocked_reply)

    def help_message(g, t):
        v = g.check_prompt(t)
        return v.action == "block" and v.category == "suicide_self_harm"
    share("healthcare", "self-harm prompts blocked as suicide_self_harm (help message)", probes.SELF_HARM_PROMPTS, help_message)
    share("healthcare", "medical questions allowed", probes.MEDICAL_QUESTIONS, allowed_prompt)
    share("creative-writing", "violent fiction released", probes.FICTION_VIOLENCE, allowed_reply)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True, help="NAME=BUNDLE_DIR (repeat to compare in one run)")
    ap.add_argument("--policy", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(WORK, "dev_suite.json"))
    ap.add_argument("--policies", action="store_true", help="also check each built-in policy's job (first --model only)")
    args = ap.parse_args()
    from guardkit import Guard
    if args.policies:
        path = args.model[0].split("=", 1)[1]
        print("| policy | check | passes | n |\n|---|---|---|---|")
        for policy, name, rate, n in policy_checks(path, args.threads):
            print(f"| {policy} | {name} | {rate * 100:.0f}% | {n} |")
        print()
    items, dropped = drop_overlap(build())
    print(f"dev suite: {len(items)} items ({dropped} dropped: their text is in the training corpus)", file=sys.stderr)
    table, raw = {}, {}
    for spec in args.model:
        name, path = spec.split("=", 1)
        guard = Guard(model=path, policy=args.policy, threads=args.threads)
        t0 = time.time()
        res = judge(guard, items)
        print(f"{name}: judged in {time.time() - t0:.0f}s", file=sys.stderr)
        table[name] = metrics(items, res)
        raw[name] = res
        guard.close()
    names = list(table)
    print(f"| metric (policy `{args.policy}`) | n | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for key in table[names[0]]:
        vals = [table[n][key] for n in names]
        cells = []
        for v in vals:
            if "chars" in key:
                cells.append(f"{v[0]:.0f}")
            elif "F1" in key:
                cells.append(f"{v[0]:.3f}")
            elif len(v) == 3:
                cells.append(f"{v[0] * 100:.0f}% ({v[2] * 100:.0f}%)")
            else:
                cells.append(f"{v[0] * 100:.1f}%")
        n = vals[0][1] if vals[0][1] is not None else ""
        print(f"| {key} | {n} | " + " | ".join(cells) + " |")
    os.makedirs(WORK, exist_ok=True)
    json.dump(dict(policy=args.policy, metrics={n: {k: list(v) for k, v in t.items()} for n, t in table.items()},
                   items=items, results=raw), open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
