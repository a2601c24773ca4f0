"""Fine-tune guardkit-mini on work/corpus.jsonl (CPU friendly, resumable).

Input rendering matches the runtime template exactly:
    prompt ids   = encode("[CLS] " + prompt + " [SEP]")      (no special tokens added)
    response ids = encode(response)
Prompt text is truncated to its first --max-prompt content tokens, the whole
sequence to --max-len tokens (training only; evaluation uses longer sequences).

Loss (SCM-style dual supervision, Qwen3Guard-style heads):
  * token CE of the response risk head on every response token (labels from onsets:
    tokens ending after the onset take the response label, earlier ones are safe),
    averaged per sequence;
  * response-level term: CE at the last response token, plus for safe responses
    -log(1 - max_t p_unsafe(t)) (a safe response must never spike, which is what the
    two-consecutive-tokens streaming rule punishes);
  * category CE only on controversial/unsafe tokens with a known category (x0.5);
  * prompt risk CE (+ category CE x0.5) only at the prompt's last token ([SEP]).

Usage:  python models/guardkit-mini/recipe/train.py [--minutes 55] [--threads 2]
Writes work/train.log and work/ckpt.pt (every --save-every steps; rerun to resume).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from model import CATEGORIES, PROMPT_CATEGORIES, RISK_LABELS, GuardMini

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")
RISK = {l: i for i, l in enumerate(RISK_LABELS)}
CAT = {c: i for i, c in enumerate(CATEGORIES)}
PCAT = {c: i for i, c in enumerate(PROMPT_CATEGORIES)}


def tokenizer() -> Tokenizer:
    t = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    t.no_padding()
    t.no_truncation()
    return t


def prompt_ids(tok, prompt: str, max_prompt: int | None = None):
    ids = tok.encode("[CLS] " + prompt + " [SEP]", add_special_tokens=False).ids
    if max_prompt is not None and len(ids) > max_prompt + 2:
        ids = ids[: max_prompt + 1] + [ids[-1]]
    return ids


def encode(tok, x, max_prompt=64, max_len=160, onset_window=0):
    """Return dict(ids, tok_risk, tok_cat, tok_w, sep, p_risk, p_cat) for one corpus item.

    ``tok_w`` weighs the token loss: the first ``onset_window`` harmful tokens (those at
    and right after the onset) get weight 2, the rest 1.  That is where streaming earliness
    is decided: a head that flags the tenth harmful token instead of the third releases
    about 30 more characters."""
    p = prompt_ids(tok, x["prompt"], max_prompt if x["kind"] == "response" else max_len - 2)
    ids, tr, tc, tw = list(p), [-100] * len(p), [-100] * len(p), [0.0] * len(p)
    sep = len(p) - 1
    harmful_seen = 0
    if x["kind"] == "response":
        enc = tok.encode(x["response"], add_special_tokens=False)
        room = max_len - len(p)
        lab = RISK[x["resp_label"]]
        cat = CAT.get(x.get("resp_cat")) if x.get("resp_cat") else None
        onset = x.get("onset")
        for tid, (a, b) in list(zip(enc.ids, enc.offsets))[:room]:
            harmful = lab != 0 and onset is not None and b > onset
            ids.append(tid)
            tr.append(lab if harmful else 0)
            tc.append(cat if (harmful and cat is not None) else -100)
            tw.append(2.0 if harmful and harmful_seen < onset_window else 1.0)
            harmful_seen += harmful
    pr = RISK[x["prompt_label"]] if x.get("prompt_label") else -100
    pc = PCAT.get(x.get("prompt_cat"), -100) if (x.get("prompt_cat") and pr > 0) else -100
    return dict(ids=ids, tok_risk=tr, tok_cat=tc, tok_w=tw, sep=sep, p_risk=pr, p_cat=pc)


def collate(batch):
    n = max(len(b["ids"]) for b in batch)
    B = len(batch)
    ids = torch.zeros(B, n, dtype=torch.long)
    am = torch.zeros(B, n, dtype=torch.long)
    tr = torch.full((B, n), -100, dtype=torch.long)
    tc = torch.full((B, n), -100, dtype=torch.long)
    tw = torch.zeros(B, n)
    for i, b in enumerate(batch):
        L = len(b["ids"])
        ids[i, :L] = torch.tensor(b["ids"])
        am[i, :L] = 1
        tr[i, :L] = torch.tensor(b["tok_risk"])
        tc[i, :L] = torch.tensor(b["tok_cat"])
        tw[i, :L] = torch.tensor(b["tok_w"])
    pos = torch.arange(n).unsqueeze(0).expand(B, n).contiguous()
    sep = torch.tensor([b["sep"] for b in batch])
    return (ids, am, pos, tr, tc, tw, sep, torch.tensor([b["p_risk"] for b in batch]),
            torch.tensor([b["p_cat"] for b in batch]))


def loss_fn(model, batch):
    ids, am, pos, tr, tc, tw, sep, pr, pc = batch
    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=ids.device.type == "cuda"):
        risk, cat, prisk, pcat, _ = model(ids, am, pos)
    risk, cat, prisk, pcat = risk.float(), cat.float(), prisk.float(), pcat.float()
    B = ids.shape[0]
    valid = tr >= 0
    losses = {}
    # per-token response risk CE, averaged per sequence then over sequences with a response
    ce = F.cross_entropy(risk.transpose(1, 2), tr, ignore_index=-100, reduction="none")
    ntok = valid.sum(1)
    has = ntok > 0
    if has.any():
        w = tw * valid
        losses["tok"] = ((ce * w).sum(1)[has] / w.sum(1)[has]).mean()
        last = (valid.long() * torch.arange(ids.shape[1], device=ids.device)).argmax(1)
        rows = torch.arange(B, device=ids.device)[has]
        losses["seq"] = F.cross_entropy(risk[rows, last[has]], tr[rows, last[has]])
        safe_rows = has & (tr[torch.arange(B, device=ids.device), last] == 0)
        if safe_rows.any():
            pu = torch.softmax(risk.float(), -1)[..., 2].masked_fill(~valid, 0.0)
            mx = pu[safe_rows].max(1).values
            losses["spike"] = 0.5 * (-torch.log1p(-mx.clamp(max=1 - 1e-6))).mean()
    if (tc >= 0).any():
        losses["cat"] = 0.5 * F.cross_entropy(cat.transpose(1, 2), tc, ignore_index=-100)
    ar = torch.arange(B, device=ids.device)
    if (pr >= 0).any():
        losses["prompt"] = F.cross_entropy(prisk[ar, sep], pr, ignore_index=-100)
    if (pc >= 0).any():
        losses["pcat"] = 0.5 * F.cross_entropy(pcat[ar, sep], pc, ignore_index=-100)
    return sum(losses.values()), {k: float(v.detach()) for k, v in losses.items()}


def batches(encoded, tokens_per_batch, seed):
    """Length-bucketed batches (pad waste stays small), shuffled."""
    rnd = random.Random(seed)
    idx = list(range(len(encoded)))
    rnd.shuffle(idx)
    out = []
    for c in range(0, len(idx), 2000):
        chunk = sorted(idx[c:c + 2000], key=lambda i: len(encoded[i]["ids"]))
        cur, mx = [], 0
        for i in chunk:
            L = len(encoded[i]["ids"])
            if cur and max(mx, L) * (len(cur) + 1) > tokens_per_batch:
                out.append(cur)
                cur, mx = [], 0
            cur.append(i)
            mx = max(mx, L)
        if cur:
            out.append(cur)
    rnd.shuffle(out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=55.0, help="wall-clock budget used to size the schedule")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=160)
    ap.add_argument("--max-prompt", type=int, default=64)
    ap.add_argument("--tokens-per-batch", type=int, default=3072)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=0, help="total steps (0 = estimate from --minutes)")
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps and exit")
    ap.add_argument("--init", default="", help="start from this state dict (stage 2) instead of the backbone")
    ap.add_argument("--oversample", default="", help="SOURCE=K,... repeat train items of these sources K times")
    ap.add_argument("--keep", default="", help="SOURCE=F,... keep only a fraction F of these sources' train items")
    ap.add_argument("--name", default="ckpt", help="checkpoint / final file stem in work/")
    ap.add_argument("--epochs", type=float, default=0.0, help="size the schedule in epochs (overrides --minutes)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (bf16 autocast) when a GPU is at hand")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--onset-window", type=int, default=0,
                    help="weigh the token loss x2 on the first N harmful tokens (earliness; 0 = off, as 0.3)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(WORK, exist_ok=True)
    log = open(os.path.join(WORK, "train.log" if args.name == "ckpt" else args.name + ".log"), "a")

    def say(*a):
        s = time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a)
        print(s, flush=True)
        log.write(s + "\n")
        log.flush()

    tok = tokenizer()
    items = [json.loads(l) for l in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8")]
    train = [x for x in items if x["split"] == "train"]
    if args.keep:
        frac = {k: float(v) for k, v in (kv.split("=") for kv in args.keep.split(","))}
        train = [x for x in train if random.Random(x["id"]).random() < frac.get(x["source"], 1.0)]
    if args.oversample:
        reps = {k: float(v) for k, v in (kv.split("=") for kv in args.oversample.split(","))}
        extra = []
        for x in train:
            r = reps.get(x["source"], 1.0)
            extra += [x] * (int(r) - 1) + ([x] if random.Random(x["id"]).random() < r - int(r) else [])
        train += extra
    enc = [encode(tok, x, args.max_prompt, args.max_len, args.onset_window) for x in train]
    say(f"train items {len(enc)}, tokens {sum(len(e['ids']) for e in enc)}")

    model = GuardMini().load_backbone()
    if args.init:
        model.load_state_dict({k: v.float() for k, v in torch.load(args.init, weights_only=False).items()})
        say(f"initialised from {args.init}")
    model.to(device)

    def on_device(batch):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    head_params = [p for n, p in model.named_parameters() if n.startswith(("resp_head", "prompt_head"))]
    body_params = [p for n, p in model.named_parameters() if not n.startswith(("resp_head", "prompt_head"))]
    opt = torch.optim.AdamW([{"params": body_params, "lr": args.lr}, {"params": head_params, "lr": args.head_lr}],
                            weight_decay=0.01)
    ckpt_path = os.path.join(WORK, args.name + ".pt")
    state = dict(step=0, epoch=0, batch_in_epoch=0, total=args.steps)
    if os.path.exists(ckpt_path) and not args.bench:
        ck = torch.load(ckpt_path, weights_only=False, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        if args.steps and args.steps != state["total"]:  # re-plan the schedule length on resume
            state["total"] = args.steps
        say(f"resumed at step {state['step']} / {state['total']}")

    if args.bench:
        model.train()
        bl = batches(enc, args.tokens_per_batch, 0)
        t0 = time.time()
        for b in bl[: args.bench]:
            loss, _ = loss_fn(model, on_device(collate([enc[i] for i in b])))
            loss.backward()
            opt.step()
            opt.zero_grad()
        dt = (time.time() - t0) / args.bench
        say(f"bench: {dt:.2f}s/step, {len(bl)} steps/epoch -> {dt * len(bl) / 60:.1f} min/epoch")
        return

    if not state["total"] and args.epochs:
        state["total"] = math.ceil(args.epochs * len(batches(enc, args.tokens_per_batch, 123)))
        say(f"{state['total']} steps = {args.epochs} epochs")
    if not state["total"]:
        # size the schedule from a short timing run
        model.train()
        bl = batches(enc, args.tokens_per_batch, 123)
        for n, b in enumerate(bl[:12]):
            if n == 2:  # the first steps pay one-off start-up costs (CUDA kernels, allocator)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.time()
            loss, _ = loss_fn(model, on_device(collate([enc[i] for i in b])))
            loss.backward()
            opt.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.time() - t0) / 10 * 1.1
        state["total"] = int(args.minutes * 60 / dt)
        say(f"{dt:.2f}s/step -> {state['total']} steps in {args.minutes} min ({len(bl)} steps/epoch)")

    total, warm = state["total"], max(20, state["total"] // 20)

    def lr_scale(step):
        return step / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    def save():
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), state=state), ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    model.train()
    t0 = time.time()
    agg = {}
    while state["step"] < total:
        bl = batches(enc, args.tokens_per_batch, 1000 * (args.seed + 1) + state["epoch"])
        for bi in range(state["batch_in_epoch"], len(bl)):
            if state["step"] >= total:
                break
            for g, base in zip(opt.param_groups, (args.lr, args.head_lr)):
                g["lr"] = base * lr_scale(state["step"])
            loss, parts = loss_fn(model, on_device(collate([enc[i] for i in bl[bi]])))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            state["step"] += 1
            state["batch_in_epoch"] = bi + 1
            for k, v in parts.items():
                agg.setdefault(k, []).append(v)
            if state["step"] % 20 == 0:
                msg = " ".join(f"{k}={sum(v) / len(v):.3f}" for k, v in agg.items())
                say(f"step {state['step']}/{total} ep {state['epoch']} {msg} ({(time.time() - t0) / 60:.1f} min)")
                agg = {}
            if state["step"] % args.save_every == 0:
                save()
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    save()
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(weights, os.path.join(WORK, "final.pt" if args.name == "ckpt" else args.name + "_final.pt"))
    say("done")


if __name__ == "__main__":
    main()
