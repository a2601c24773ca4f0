"""Compare trained checkpoints on the DEV split with PyTorch (no export needed).

Used to choose between training runs (e.g. several configurations trained side by
side on a GPU) before exporting one.  The numbers follow evaluate.py's full-text
rule (a causal model, so full text = streaming): a response is blocked at the second
of two consecutive tokens with p_unsafe >= 0.5; a prompt is unsafe when p_unsafe >=
0.5 at its last token.  As calibrate.py does, an offset is added to each head's
unsafe logit and chosen on dev to maximise F1 with a benign false-positive rate <=
--max-fpr; the table reports F1, FPR and earliness at that offset.

Usage:  python dev_select.py work/a_final.pt work/b_final.pt [--device cuda] [--out work/dev_select.json]
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from tokenizers import Tokenizer

from evaluate import MAX_RESP, f1, halt_index, pick, render, softmax, unique_prompts
from model import GuardMini

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")
GRID = np.round(np.arange(-6.0, 3.01, 0.25), 2)


@torch.no_grad()
def logits_for(model, seqs, device, batch=64):
    """Risk logits of both heads for each id sequence (right-padded batches)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    res = [None] * len(seqs)
    for c in range(0, len(order), batch):
        idx = order[c:c + batch]
        n = max(len(seqs[i]) for i in idx)
        ids = torch.zeros(len(idx), n, dtype=torch.long)
        am = torch.zeros(len(idx), n, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
            am[r, :len(seqs[i])] = 1
        pos = torch.arange(n).unsqueeze(0).expand(len(idx), n).contiguous()
        risk, _, prisk, _, _ = model(ids.to(device), am.to(device), pos.to(device))
        risk, prisk = risk.float().cpu().numpy(), prisk.float().cpu().numpy()
        for r, i in enumerate(idx):
            res[i] = (risk[r, :len(seqs[i])], prisk[r, :len(seqs[i])])
    return res


def score(model, items, tok, device, max_fpr):
    resp = [x for x in items if x["kind"] == "response"]
    pids = [render(tok, x) for x in resp]
    rids = [tok.encode(x["response"], add_special_tokens=False).ids[:MAX_RESP] for x in resp]
    lg = logits_for(model, [p + r for p, r in zip(pids, rids)], device)
    rlog = [l[0][len(p):] for l, p in zip(lg, pids)]
    gold = np.array([x["resp_label"] == "unsafe" for x in resp])
    safe = np.array([x["resp_label"] == "safe" for x in resp])
    prompts = unique_prompts(items)
    plg = logits_for(model, [render(tok, x) for x in prompts], device)
    plog = np.array([l[1][-1] for l in plg])
    pgold = np.array([x["prompt_label"] == "unsafe" for x in prompts])
    psafe = np.array([x["prompt_label"] == "safe" for x in prompts])
    table = []
    for d in GRID:
        halts = []
        for l in rlog:
            l = l.copy()
            l[:, 2] += d
            halts.append(halt_index(softmax(l)))
        pred = np.array([h is not None for h in halts])
        seen_frac = [(h + 2) / len(l) for h, l, g in zip(halts, rlog, gold) if g and h is not None]
        pl = plog.copy()
        pl[:, 2] += d
        pp = softmax(pl)[:, 2] >= 0.5
        table.append(dict(delta=float(d), resp_f1=f1(pred, gold)["f1"], resp_fpr=float(pred[safe].mean()),
                          seen=float(np.mean(seen_frac)) if seen_frac else None,
                          prompt_f1=f1(pp, pgold)["f1"], prompt_fpr=float(pp[psafe].mean())))
    r, p = pick(table, "resp_f1", "resp_fpr", max_fpr), pick(table, "prompt_f1", "prompt_fpr", max_fpr)
    by_source = {}
    for x, l, g in zip(resp, rlog, gold):
        if g:
            l = l.copy()
            l[:, 2] += r["delta"]
            h = halt_index(softmax(l))
            by_source.setdefault(x["source"], []).append(None if h is None else (h + 2) / len(l))
    r["seen_by_source"] = {s: dict(n=len(v), recall=float(np.mean([f is not None for f in v])),
                                   seen=float(np.mean([f for f in v if f is not None] or [np.nan])))
                           for s, v in sorted(by_source.items())}
    return dict(response=r, prompt=p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--max-fpr", type=float, default=0.04)
    ap.add_argument("--out", default=os.path.join(WORK, "dev_select.json"))
    ap.add_argument("--limit", type=int, default=0, help="first N items only (smoke tests)")
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    items = [json.loads(l) for l in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8")]
    items = [x for x in items if x["split"] == args.split][: args.limit or None]
    results = {}
    for path in args.ckpts:
        model = GuardMini()
        model.load_state_dict({k: v.float() for k, v in torch.load(path, map_location="cpu", weights_only=False).items()})
        model.to(args.device).eval()
        results[os.path.basename(path)] = res = score(model, items, tok, args.device, args.max_fpr)
        r, p = res["response"], res["prompt"]
        print(f"{os.path.basename(path)}: response F1 {r['resp_f1']:.3f} (FPR {r['resp_fpr']:.3f}, seen {r['seen']}, "
              f"offset {r['delta']}) | prompt F1 {p['prompt_f1']:.3f} (FPR {p['prompt_fpr']:.3f}, offset {p['delta']})",
              flush=True)
    best = max(results, key=lambda k: results[k]["response"]["resp_f1"] + results[k]["prompt"]["prompt_f1"])
    print("best:", best)
    json.dump(dict(best=best, results=results), open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
