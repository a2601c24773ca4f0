"""Choose the unsafe-logit offsets on the DEV split and bake them into model.onnx.

The runtime's default rule uses a fixed 0.5 threshold on p_unsafe, so instead of a
threshold we shift the bias of the 'unsafe' column of the risk classifiers (response
head and prompt head) by a constant.  The offset is picked on dev (never test) to
maximise F1 (unsafe vs rest) under the runtime rule, subject to a benign
false-positive rate <= --max-fpr (default 0.05, the target).  Adding a constant to one logit is exact and
per-token, so chunk invariance is untouched.  The same offsets are applied to
work/model.fp32.onnx so quantised-vs-fp32 agreement stays comparable.

Usage:  python models/guardkit-mini/recipe/calibrate.py [--max-fpr 0.05]
Writes the chosen offsets to work/calibration.json and patches the ONNX files.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import onnx
from onnx import numpy_helper
from tokenizers import Tokenizer

from bench import Runner
from evaluate import MAX_RESP, blocked_at_offset, f1, pick, render, softmax, unique_prompts

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")


def patch(path, resp_delta, prompt_delta):
    """Set the offsets (idempotent: the offsets already baked in are read from metadata and undone)."""
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    old = json.loads(meta.get("guardkit_unsafe_logit_offsets", '{"response": 0, "prompt": 0}'))
    inits = {i.name: i for i in m.graph.initializer}
    done = 0
    for node in m.graph.node:
        for head, d in (("/m/resp_head/risk/Add", resp_delta - old["response"]),
                        ("/m/prompt_head/risk/Add", prompt_delta - old["prompt"])):
            if node.name == head:
                bname = [n for n in node.input if n in inits][0]
                b = numpy_helper.to_array(inits[bname]).copy()
                b[2] += d
                inits[bname].CopyFrom(numpy_helper.from_array(b, bname))
                done += 1
    assert done == 2, f"risk bias nodes not found in {path}"
    for p in list(m.metadata_props):
        if p.key == "guardkit_unsafe_logit_offsets":
            m.metadata_props.remove(p)
    m.metadata_props.add(key="guardkit_unsafe_logit_offsets", value=json.dumps({"response": resp_delta, "prompt": prompt_delta}))
    onnx.save(m, path)


def current_offsets(path):
    meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    return json.loads(meta.get("guardkit_unsafe_logit_offsets", '{"response": 0, "prompt": 0}'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(BUNDLE, "model.onnx"))
    ap.add_argument("--max-fpr", type=float, default=0.05)
    ap.add_argument("--limit", type=int, default=2500)
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    items = [json.loads(l) for l in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8")]
    dev = [x for x in items if x["split"] == "dev"]
    run = Runner(args.model, threads=2)
    rng = np.random.RandomState(0)
    resp = [x for x in dev if x["kind"] == "response"]
    resp = [resp[i] for i in rng.permutation(len(resp))[: args.limit]]
    logits = []
    for x in resp:
        pids = render(tok, x)
        rids = tok.encode(x["response"], add_special_tokens=False).ids[:MAX_RESP]
        ids = np.array([pids + rids], np.int64)
        logits.append(run.run_chunked(ids, ids.shape[1])[0][0, len(pids):])
    gold = np.array([x["resp_label"] == "unsafe" for x in resp])
    safe = np.array([x["resp_label"] == "safe" for x in resp])
    prompts = unique_prompts(dev)
    plog = np.array([run.run_chunked(np.array([render(tok, x)], np.int64), len(render(tok, x)))[2][0, -1] for x in prompts])
    pgold = np.array([x["prompt_label"] == "unsafe" for x in prompts])
    psafe = np.array([x["prompt_label"] == "safe" for x in prompts])
    base = current_offsets(args.model)  # offsets already in the file; the grid is absolute
    grid = np.round(np.arange(-3.0, 3.01, 0.25), 2)
    table = []
    for d in grid:
        pred = blocked_at_offset(logits, d - base["response"])
        fr = f1(pred, gold)["f1"]
        fpr = float(pred[safe].mean())
        pl = plog.copy()
        pl[:, 2] += d - base["prompt"]
        pp = softmax(pl)[:, 2] >= 0.5
        fp = f1(pp, pgold)["f1"]
        pfpr = float(pp[psafe].mean())
        table.append(dict(delta=float(d), resp_f1=fr, resp_fpr=fpr, prompt_f1=fp, prompt_fpr=pfpr))

    resp_row = pick(table, "resp_f1", "resp_fpr", args.max_fpr)
    prompt_row = pick(table, "prompt_f1", "prompt_fpr", args.max_fpr)
    best_r, best_p = (resp_row["delta"], resp_row["resp_f1"]), (prompt_row["delta"], prompt_row["prompt_f1"])
    for row in table:
        print(row)
    rd, pd = best_r[0], best_p[0]
    print(f"chosen offsets: response {rd} (dev F1 {best_r[1]:.3f}), prompt {pd} (dev F1 {best_p[1]:.3f})")
    for p in (args.model, os.path.join(WORK, "model.fp32.onnx")):
        if os.path.exists(p):
            patch(p, rd, pd)
    json.dump(dict(response_delta=rd, prompt_delta=pd, dev_response_f1=best_r[1], dev_prompt_f1=best_p[1],
                   max_fpr=args.max_fpr, table=table), open(os.path.join(WORK, "calibration.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
