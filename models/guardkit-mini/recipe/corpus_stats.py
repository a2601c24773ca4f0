"""Print corpus counts (per source x label, per category, per split) as Markdown tables.

Usage:  python models/guardkit-mini/recipe/corpus_stats.py > models/guardkit-mini/work/corpus_stats.md
"""
import json
import os
from collections import Counter, defaultdict

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../work")
items = [json.loads(l) for l in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8")]

print("| source | kind | items | resp safe / contr. / unsafe | prompt safe / contr. / unsafe / unlabelled | train / dev / test |")
print("|---|---|---|---|---|---|")
by = defaultdict(list)
for x in items:
    by[(x["source"], x["kind"])].append(x)
for (s, k), xs in sorted(by.items()):
    r = Counter(x["resp_label"] for x in xs)
    p = Counter(x["prompt_label"] for x in xs)
    sp = Counter(x["split"] for x in xs)
    rs = f"{r['safe']} / {r['controversial']} / {r['unsafe']}" if k == "response" else "-"
    print(f"| {s} | {k} | {len(xs)} | {rs} | {p['safe']} / {p['controversial']} / {p['unsafe']} / {p[None]} | {sp['train']} / {sp['dev']} / {sp['test']} |")
print()
print("| category | responses controversial | responses unsafe | prompts controversial | prompts unsafe |")
print("|---|---|---|---|---|")
rc = Counter((x["resp_cat"], x["resp_label"]) for x in items if x["kind"] == "response")
pc = Counter((x["prompt_cat"], x["prompt_label"]) for x in items if x.get("prompt_label"))
cats = sorted({c for c, _ in rc} | {c for c, _ in pc}, key=lambda c: (c is None, c or ""))
for c in cats:
    print(f"| {c or '(none / unknown)'} | {rc[(c, 'controversial')]} | {rc[(c, 'unsafe')]} | {pc[(c, 'controversial')]} | {pc[(c, 'unsafe')]} |")
print()
sp = Counter((x["split"], x["kind"]) for x in items)
print("splits:", dict(sp))
