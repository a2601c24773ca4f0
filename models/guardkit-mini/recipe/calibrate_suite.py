"""Choose the unsafe-logit offsets on the out-of-distribution dev suite and bake them in.

Like calibrate.py (which picked them on the random dev split of the training pool,
and so rewarded memorising its sources), the offset is a constant added to the
'unsafe' logit of the response and prompt risk heads: exact per token, so chunk
invariance is untouched and the policies keep their plain 0.5 thresholds.  Here the
offsets are chosen on dev_suite.py's unseen groups (never its "seen by 0.2" rows):

* prompt offset: the highest unsafe-prompt recall with everyday-prompt FPR <= --max-everyday
  and edgy-benign FPR <= --max-edgy;
* response offset: the best F1 (at 1:1 prevalence) over harmful replies (alone and after a prompt) with
  benign-response FPR <= --max-fpr (alone and with a prompt) and refusals passing >= --min-refusal.

Prompt logits are computed once with ONNX Runtime (full-text chunks; the runtime's
incremental steps give the same logits within 1e-4).  Response log-probabilities come
from the product path (product_path.py): every token of the whole reply, scored by a real
guardkit session with its re-prefills past 512 positions (0.5 and earlier scored only the
first 384 tokens, which hid the long-answer false positives).  The default policy's rule
(p_unsafe >= 0.5 on two consecutive tokens) is then replayed for every offset.

Usage:  python models/guardkit-mini/recipe/calibrate_suite.py [--model models/guardkit-mini/model.onnx]
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from tokenizers import Tokenizer

from bench import Runner
from calibrate import current_offsets, patch
from dev_suite import build, drop_overlap
from evaluate import blocked_at_offset, render, softmax
from product_path import response_log_probs

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(BUNDLE, "model.onnx"))
    ap.add_argument("--max-everyday", type=float, default=0.015)
    ap.add_argument("--max-edgy", type=float, default=0.08)
    ap.add_argument("--max-fpr", type=float, default=0.04)
    ap.add_argument("--min-refusal", type=float, default=0.96)
    ap.add_argument("--dry-run", action="store_true", help="print the sweep, patch nothing")
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    items, _ = drop_overlap(build())
    items = [x for x in items if not x["seen_by_02"]]
    run = Runner(args.model, threads=2)
    base = current_offsets(args.model)
    prompts = [x for x in items if x["kind"] == "prompt"]
    plog = np.array([run.run_chunked(np.array([render(tok, x)], np.int64), 512)[2][0, -1] for x in prompts])
    pgroup = np.array([x["group"] for x in prompts])
    resp = [x for x in items if x["kind"] == "response"]
    rlog = response_log_probs(os.path.dirname(os.path.abspath(args.model)), resp)
    rgroup = np.array([x["group"] for x in resp])
    grid = np.round(np.arange(-3.0, 3.01, 0.25), 2)
    prompt_rows, resp_rows = [], []
    for d in grid:
        pl = plog.copy()
        pl[:, 2] += d - base["prompt"]
        flagged = softmax(pl)[:, 2] >= 0.5
        prompt_rows.append(dict(delta=float(d), everyday=float(flagged[pgroup == "prompt.everyday"].mean()),
                                edgy=float(flagged[pgroup == "prompt.edgy"].mean()),
                                recall=float(flagged[pgroup == "prompt.unsafe"].mean())))
        blocked = blocked_at_offset(rlog, d - base["response"])
        harm = np.isin(rgroup, ["response.alone.harmful", "response.with_prompt.harmful"])
        benign = np.isin(rgroup, ["response.alone.benign", "response.with_prompt.benign"])
        recall, fpr = blocked[harm].mean(), blocked[benign].mean()
        precision = recall / (recall + fpr) if recall + fpr else 0.0  # at 1:1 prevalence (see dev_suite.balanced_f1)
        resp_rows.append(dict(delta=float(d), f1=float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
                              fpr_alone=float(blocked[rgroup == "response.alone.benign"].mean()),
                              fpr_with_prompt=float(blocked[rgroup == "response.with_prompt.benign"].mean()),
                              refusal_pass=float(1 - blocked[rgroup == "response.refusal"].mean()),
                              recall=float(blocked[harm].mean())))
    for p, r in zip(prompt_rows, resp_rows):
        print(f"delta {p['delta']:+.2f} | prompt: everyday FPR {p['everyday']:.3f} edgy FPR {p['edgy']:.3f} recall {p['recall']:.3f}"
              f" | response: F1 {r['f1']:.3f} recall {r['recall']:.3f} FPR {r['fpr_alone']:.3f}/{r['fpr_with_prompt']:.3f}"
              f" refusals pass {r['refusal_pass']:.3f}")
    ok_p = [p for p in prompt_rows if p["everyday"] <= args.max_everyday and p["edgy"] <= args.max_edgy]
    ok_r = [r for r in resp_rows if r["fpr_alone"] <= args.max_fpr and r["fpr_with_prompt"] <= args.max_fpr
            and r["refusal_pass"] >= args.min_refusal]
    if not ok_p or not ok_r:
        raise SystemExit("no offset meets the caps; relax them or train a better model")
    pd = max(ok_p, key=lambda p: (p["recall"], -p["delta"]))["delta"]
    rd = max(ok_r, key=lambda r: (r["f1"], -r["delta"]))["delta"]
    print(f"chosen offsets: response {rd:+.2f}, prompt {pd:+.2f}")
    if args.dry_run:
        return
    for path in (args.model, os.path.join(WORK, "model.fp32.onnx")):
        if os.path.exists(path):
            patch(path, rd, pd)
    json.dump(dict(response_delta=rd, prompt_delta=pd, caps=vars(args), prompt=prompt_rows, response=resp_rows),
              open(os.path.join(WORK, "calibration_suite.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
