"""A bidirectional prompt classifier for guardkit-mini (issue 13).

The stream model reads the prompt causally and judges it at its last token, with
weights shared with the response task.  A prompt is complete when it is checked, so
its verdict does not need a causal model: this is all-MiniLM-L6-v2 used the way it was
pretrained (bidirectional, mean-pooled), fine-tuned on the corpus' labelled prompts
only, with the same tri-class risk head and the prompt categories.

Usage:
    python recipe/prompt_classifier.py train --name pc1 [--epochs 2] [--max-len 128]
    python recipe/prompt_classifier.py eval --ckpt work/pc1.pt      # dev-suite prompts, PyTorch, thresholds swept
    python recipe/prompt_classifier.py export --ckpt work/pc1.pt --bundle BUNDLE_DIR [--unsafe-offset X]
Checkpoints go to work/<name>.pt (resumable: --resume).  ``export`` writes BUNDLE_DIR/prompt.onnx
(4-bit weights, as export.py) with the unsafe logit shifted by the offset; run
write_manifest.py BUNDLE_DIR afterwards (it lists prompt.onnx when present).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
WORK = os.path.join(HERE, "../work")
RAW = os.environ.get("GUARDKIT_RAW", os.path.join(HERE, "../../../../shared/data/raw"))

from model import PROMPT_CATEGORIES, RISK_LABELS, backbone_dir  # noqa: E402


class PromptClassifier(nn.Module):
    """Encoder (bidirectional) → mean pool → LayerNorm(W h) → risk (3) and category (8) logits.

    The encoder is ``backbone_dir()``'s: all-MiniLM-L6-v2, unless $GUARDKIT_BACKBONE_DIR names
    another folder with a config, weights and tokenizer.json (the model card's "A larger
    encoder").  Only BERT-shaped encoders export (export.py)."""

    def __init__(self, freeze_embeddings: bool = False):
        super().__init__()
        from transformers import AutoModel
        self.encoder = AutoModel.from_pretrained(backbone_dir(), add_pooling_layer=False)
        if freeze_embeddings:
            self.encoder.embeddings.requires_grad_(False)
        hidden = self.encoder.config.hidden_size
        self.pre = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.risk = nn.Linear(hidden, len(RISK_LABELS))
        self.category = nn.Linear(hidden, len(PROMPT_CATEGORIES))
        self.drop = nn.Dropout(0.1)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        x = self.norm(self.pre(self.drop(pooled)))
        return self.risk(x), self.category(x)


class StreamPromptClassifier(nn.Module):
    """--arch stream: the stream model's own architecture and weights (a training checkpoint),
    trained on prompts alone and read at the last real token ([SEP]) by its prompt head.

    Fine-tuning a copy for prompts cannot hurt the shipped stream model's response head."""

    def __init__(self, init_ckpt: str | None):
        super().__init__()
        from model import GuardMini
        self.m = GuardMini()
        if init_ckpt:
            sd = torch.load(init_ckpt, weights_only=False)
            self.m.load_state_dict(sd["model"] if "model" in sd and "state" in sd else sd)
        else:
            self.m.load_backbone()

    def forward(self, input_ids, attention_mask):
        positions = (torch.cumsum(attention_mask, dim=-1) - 1).clamp(min=0)
        _, _, risk, cat, _ = self.m(input_ids, attention_mask, positions)
        last = (attention_mask.sum(-1) - 1).clamp(min=0)  # right padding: the last real token
        rows = torch.arange(input_ids.shape[0])
        return risk[rows, last], cat[rows, last]


def build_model(arch: str, init_ckpt: str | None = None, freeze_embeddings: bool = False) -> nn.Module:
    """--arch bidirectional starts from the backbone, or from a classifier checkpoint given as ``init_ckpt``."""
    if arch != "bidirectional":
        return StreamPromptClassifier(init_ckpt)
    model = PromptClassifier(freeze_embeddings)
    if init_ckpt:
        model.load_state_dict(torch.load(init_ckpt, weights_only=False)["model"])
    return model


def tokenizer(max_len: int):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(backbone_dir(), "tokenizer.json"))
    tok.enable_truncation(max_len)
    tok.no_padding()
    return tok


def encode(tok, texts: list[str]):
    enc = tok.encode_batch(texts)
    n = max(len(e.ids) for e in enc)
    ids = np.zeros((len(enc), n), dtype=np.int64)
    mask = np.zeros((len(enc), n), dtype=np.int64)
    for i, e in enumerate(enc):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def training_prompts(contrast_repeats: int = 2, request_repeats: int = 0, constraint_repeats: int = 0,
                     clinc_extra: int = 0, opinion_repeats: int = 0, medical_repeats: int = 0) -> list[dict]:
    """The corpus' labelled train-split prompts, de-duplicated (first label wins), plus the self-written
    contrast prompts (contrast_prompts.py) ``contrast_repeats`` times, the self-written direct
    requests (request_prompts.py, 0.5) ``request_repeats`` times, the self-written format-constrained
    and pretext-framed prompts (constraint_prompts.py, 0.6) ``constraint_repeats`` times, and
    ``clinc_extra`` more CLINC150 queries than the corpus samples (0.6: short banking and assistant
    queries were the everyday prompts the classifier refused)."""
    from contrast_prompts import contrast_prompts

    def own(rows, source):
        return [dict(text=t, label=RISK_LABELS.index(label), cat=PROMPT_CATEGORIES.index(cat) if cat else -1, source=source)
                for t, label, cat in rows]
    rows = own(contrast_prompts(), "self-written-contrast") * contrast_repeats
    if request_repeats:
        from dev_overlap import near_dev
        from request_prompts import request_prompts
        requests = [r for r in request_prompts() if not near_dev(r[0], "prompt")]
        rows += own(requests, "self-written-requests") * request_repeats
    if constraint_repeats:
        from constraint_prompts import constraint_prompts
        from dev_overlap import near_dev
        constrained = [r for r in constraint_prompts() if not near_dev(r[0], "prompt")]
        rows += own(constrained, "self-written-constraints") * constraint_repeats
    if clinc_extra:
        rows += [dict(text=t, label=0, cat=-1, source="clinc150-extra") for t in clinc_extra_queries(clinc_extra)]
    if opinion_repeats:
        from contrast_prompts import opinion_prompts
        rows += own(opinion_prompts(), "self-written-opinions") * opinion_repeats
    if medical_repeats:
        from contrast_prompts import medical_prompts
        from dev_overlap import near_dev
        rows += own([r for r in medical_prompts() if not near_dev(r[0], "prompt")], "self-written-medical") * medical_repeats
    seen = {" ".join(r["text"].lower().split()) for r in rows}
    for line in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8"):
        x = json.loads(line)
        if x["split"] != "train" or not x["prompt"] or x["prompt_label"] is None:
            continue
        key = " ".join(x["prompt"].lower().split())
        if key in seen:
            continue
        seen.add(key)
        rows.append(dict(text=x["prompt"], label=RISK_LABELS.index(x["prompt_label"]),
                         cat=PROMPT_CATEGORIES.index(x["prompt_cat"]) if x.get("prompt_cat") in PROMPT_CATEGORIES else -1,
                         source=x["source"]))
    return rows


def clinc_extra_queries(n: int) -> list[str]:
    """``n`` CLINC150 train/val queries that build_corpus.py did not sample (its test split is never read)."""
    from benign_sources import _sample
    data = json.load(open(os.path.join(RAW, "clinc150", "data_full.json"), encoding="utf-8"))
    used = {text for text, _ in _sample(data["train"] + data["oos_train"], 3000, 11)}
    rest = [text for text, _ in data["train"] + data["val"] + data["oos_train"] + data["oos_val"] if text not in used]
    return _sample(rest, n, 17)


def train(args, rows: list[dict] | None = None):
    """Train on ``rows`` (text, label, cat), by default training_prompts() per the args."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if rows is None:
        rows = training_prompts(args.contrast_repeats, args.request_repeats, args.constraint_repeats, args.clinc_extra,
                                args.opinion_repeats, args.medical_repeats)
    if args.soft:
        rows = with_teacher_logits(rows, args.soft)
    rng = random.Random(args.seed)
    counts = np.bincount([r["label"] for r in rows if r["label"] >= 0], minlength=3)
    print(f"{len(rows)} prompts: " + ", ".join(f"{RISK_LABELS[i]} {c}" for i, c in enumerate(counts))
          + f", teacher-only {sum(r['label'] < 0 for r in rows)}", flush=True)
    tok = tokenizer(args.max_len)
    model = build_model(args.arch, args.init, args.freeze_embeddings)
    is_head = lambda n: not (n.startswith("encoder.") or (n.startswith("m.") and "_head." not in n))  # noqa: E731
    opt = torch.optim.AdamW([{"params": [p for n, p in model.named_parameters() if not is_head(n)], "lr": args.lr},
                             {"params": [p for n, p in model.named_parameters() if is_head(n)], "lr": args.head_lr}], weight_decay=0.01)
    steps_per_epoch = math.ceil(len(rows) / args.batch)
    total = args.steps or steps_per_epoch * args.epochs
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)))
    ckpt_path = os.path.join(WORK, f"{args.name}.pt")
    step = 0
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); sched.load_state_dict(ck["sched"]); step = ck["step"]
        print(f"resumed at step {step}", flush=True)
    weights = torch.tensor([1.0, 1.0, args.unsafe_weight])
    model.train()
    t0 = time.time()
    order: list[int] = []
    while step < total:
        if not order:
            order = list(range(len(rows)))
            rng.shuffle(order)
            # batches of similar length: shuffle within length buckets of 50 batches
            chunks = [order[i:i + args.batch * 50] for i in range(0, len(order), args.batch * 50)]
            order = [j for c in chunks for j in sorted(c, key=lambda k: len(rows[k]["text"]))]
            batches = [order[i:i + args.batch] for i in range(0, len(order), args.batch)]
            rng.shuffle(batches)
            order = [j for b in batches for j in b]
        idx, order = order[: args.batch], order[args.batch:]
        batch = [rows[i] for i in idx]
        ids, mask = encode(tok, [r["text"] for r in batch])
        y = torch.tensor([r["label"] for r in batch])
        yc = torch.tensor([r["cat"] for r in batch])
        risk, cat = model(ids, mask)
        loss = risk_loss(risk, y, weights, [r.get("soft") for r in batch], args.kd_weight, args.kd_temp)
        if (yc >= 0).any():
            loss = loss + 0.5 * F.cross_entropy(cat[yc >= 0], yc[yc >= 0])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step(); step += 1
        if step % 25 == 0:
            print(f"step {step}/{total} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        if step % 200 == 0 or step == total:
            torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), step=step,
                            args=vars(args)), ckpt_path)
    print(f"done: {ckpt_path}", flush=True)


def with_teacher_logits(rows: list[dict], path: str) -> list[dict]:
    """Attach a teacher's risk logits (teacher_labels.py's JSON lines) to ``rows`` by text, and add the
    texts the teacher labelled that ``rows`` lack (hh-rlhf first turns) as teacher-only rows (label -1)."""
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    soft = {x["text"]: (x["logits"], x["source"]) for x in lines}
    have = {r["text"] for r in rows}
    missing = have - soft.keys()
    if missing:
        raise SystemExit(f"{path} lacks teacher logits for {len(missing)} training prompts (run teacher_labels.py to the end)")
    out = [dict(r, soft=soft[r["text"]][0]) for r in rows]
    out += [dict(text=t, label=-1, cat=-1, source=src, soft=z) for t, (z, src) in soft.items() if t not in have]
    return out


def risk_loss(risk, y, weights, soft: list, kd_weight: float, kd_temp: float):
    """Cross-entropy on the hard labels (rows with label >= 0), mixed with ``kd_weight`` of the
    temperature-scaled KL divergence to the teacher's distribution (rows that have one): the usual
    distillation loss, T² keeping its gradients on the hard loss' scale."""
    hard = y >= 0
    loss = risk.new_zeros(())
    if hard.any():
        loss = F.cross_entropy(risk[hard], y[hard], weight=weights, label_smoothing=0.05) * (1.0 - kd_weight)
    has = torch.tensor([s is not None for s in soft])
    if kd_weight and has.any():
        teacher = torch.tensor([s for s in soft if s is not None], dtype=risk.dtype)
        kl = F.kl_div(F.log_softmax(risk[has] / kd_temp, -1), F.log_softmax(teacher / kd_temp, -1), log_target=True, reduction="batchmean")
        loss = loss + kd_weight * kd_temp ** 2 * kl
    return loss


@torch.no_grad()
def predict(model, tok, texts: list[str], batch: int = 64) -> np.ndarray:
    """Risk logits [n, 3] (safe, controversial, unsafe)."""
    model.eval()
    logits = np.zeros((len(texts), 3), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        ids, mask = encode(tok, [texts[j] for j in idx])
        risk, _ = model(ids, mask)
        logits[idx] = risk.numpy()
    return logits


def p_unsafe(logits: np.ndarray, offset: float = 0.0) -> np.ndarray:
    z = logits + np.array([0.0, 0.0, offset], dtype=np.float32)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z[:, 2] / z.sum(-1)


def offset_sweep(logits: dict[str, np.ndarray]) -> None:
    """The default policy blocks at p(unsafe) >= 0.5: rates for unsafe-logit offsets baked into the export."""
    for b in np.arange(-4.0, 2.01, 0.5):
        r = {g: float(np.mean(p_unsafe(v, b) >= 0.5)) for g, v in logits.items()}
        print(f"  offset {b:+.1f}: everyday {r['prompt.everyday']:6.1%} edgy {r['prompt.edgy']:6.1%} "
              f"unsafe recall {r['prompt.unsafe']:6.1%} seen-strongreject {r.get('seen.prompt.unsafe.strongreject', 0):6.1%}")


def dev_prompts() -> dict[str, list[str]]:
    """The dev suite's prompts by group (items whose text is in the training corpus dropped)."""
    import dev_suite
    items, _ = dev_suite.drop_overlap(dev_suite.build())
    groups: dict[str, list[str]] = {}
    for x in items:
        if x["kind"] == "prompt":
            groups.setdefault(x["group"], []).append(x["prompt"])
    return groups


def operating_points(groups: dict[str, np.ndarray]) -> None:
    """Recall of unsafe prompts at the thresholds meeting the everyday/edgy FPR targets."""
    from sklearn.metrics import roc_auc_score
    every, edgy, unsafe = groups["prompt.everyday"], groups["prompt.edgy"], groups["prompt.unsafe"]
    neg = np.concatenate([every, edgy])
    print(f"AUC unsafe vs everyday+edgy {roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(unsafe))], np.r_[neg, unsafe]):.3f}; "
          f"vs edgy {roc_auc_score(np.r_[np.zeros(len(edgy)), np.ones(len(unsafe))], np.r_[edgy, unsafe]):.3f}")
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        print(f"  t={t:.2f} everyday FPR {np.mean(every >= t):6.1%} edgy FPR {np.mean(edgy >= t):6.1%} "
              f"unsafe recall {np.mean(unsafe >= t):6.1%}  seen-strongreject {np.mean(groups.get('seen.prompt.unsafe.strongreject', np.zeros(1)) >= t):6.1%}")
    ok = [t for t in np.linspace(0.01, 0.999, 400) if np.mean(every >= t) <= 0.02 and np.mean(edgy >= t) <= 0.10]
    if ok:
        t = min(ok)
        print(f"  lowest t meeting everyday<=2% and edgy<=10%: t={t:.3f} recall {np.mean(unsafe >= t):.1%}")


def evaluate(args):
    torch.set_num_threads(args.threads)
    ck = torch.load(args.ckpt, weights_only=False)
    model = build_model(ck["args"].get("arch", "bidirectional"))
    model.load_state_dict(ck["model"])
    tok = tokenizer(args.max_len)
    groups = dev_prompts()
    logits = {g: predict(model, tok, t) for g, t in groups.items()}
    if args.save:
        np.savez(args.save, **logits)
    scores = {g: p_unsafe(v) for g, v in logits.items()}
    for g, t in groups.items():
        print(f"{g}: {len(t)}")
    operating_points(scores)
    offset_sweep(logits)


class _Export(nn.Module):
    def __init__(self, m: PromptClassifier, unsafe_offset: float):
        super().__init__()
        self.m = m
        self.register_buffer("offset", torch.tensor([0.0, 0.0, unsafe_offset]))

    def forward(self, input_ids, attention_mask):
        risk, category = self.m(input_ids, attention_mask)
        return risk + self.offset, category


def export(args):
    import onnxruntime as ort

    from export import quantise
    ck = torch.load(args.ckpt, weights_only=False)
    model = build_model(ck["args"].get("arch", "bidirectional"))
    model.load_state_dict(ck["model"])
    model.eval()
    fp32 = os.path.join(WORK, os.path.basename(args.ckpt).replace(".pt", ".prompt.fp32.onnx"))
    ids = torch.randint(1000, 2000, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    wrapped = _Export(model, args.unsafe_offset).eval()  # export restores the wrapper's mode: eval, or dropout runs below
    with torch.no_grad():
        torch.onnx.export(wrapped, (ids, mask), fp32, input_names=["input_ids", "attention_mask"],
                          output_names=["risk_logits", "category_logits"], opset_version=17, dynamo=False, do_constant_folding=True,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "risk_logits": {0: "batch"}, "category_logits": {0: "batch"}})
        want = wrapped(ids, mask)[0].numpy()
    got = ort.InferenceSession(fp32).run(["risk_logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    print(f"fp32 export {fp32}: max |logit diff| vs PyTorch {np.abs(want - got).max():.2e}")
    out = os.path.join(args.bundle, args.file)
    quantise(fp32, out, embeddings=args.embeddings)
    got = ort.InferenceSession(out).run(["risk_logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    print(f"4-bit ({args.embeddings} embeddings) {out}: max |logit diff| vs fp32 {np.abs(want - got).max():.3f} ({os.path.getsize(out) / 1e6:.1f} MB)")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--name", required=True)
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--steps", type=int, default=0)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=4e-5)
    t.add_argument("--head-lr", type=float, default=1e-3)
    t.add_argument("--max-len", type=int, default=128)
    t.add_argument("--unsafe-weight", type=float, default=1.0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--freeze-embeddings", action="store_true", help="--arch bidirectional: keep the encoder's embedding layer fixed (less optimizer work for a larger encoder)")
    t.add_argument("--soft", help="a teacher's logits (teacher_labels.py): distil with --kd-weight of the loss")
    t.add_argument("--kd-weight", type=float, default=0.0, help="share of the loss that matches the teacher (with --soft; 0: hard labels only)")
    t.add_argument("--kd-temp", type=float, default=2.0, help="distillation temperature")
    t.add_argument("--arch", choices=["bidirectional", "stream"], default="bidirectional")
    t.add_argument("--init", help="--arch stream: a training checkpoint of the stream model (e.g. work/v03a_final.pt)")
    t.add_argument("--contrast-repeats", type=int, default=2, help="times the self-written contrast prompts are in the data")
    t.add_argument("--request-repeats", type=int, default=0, help="times the self-written direct requests are in the data (0.5: 2)")
    t.add_argument("--constraint-repeats", type=int, default=0, help="times the self-written constrained/pretext prompts are in the data (0.6: 2)")
    t.add_argument("--clinc-extra", type=int, default=0, help="CLINC150 queries added beyond the corpus' sample (0.6: 4000)")
    t.add_argument("--opinion-repeats", type=int, default=0, help="times the self-written opinion prompts are in the data (0.8)")
    t.add_argument("--medical-repeats", type=int, default=0, help="times the self-written medicine and pregnancy prompts are in the data (0.8)")
    e = sub.add_parser("eval")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--max-len", type=int, default=128)
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--save", help="write the dev-suite logits by group to this .npz")
    x = sub.add_parser("export")
    x.add_argument("--ckpt", required=True)
    x.add_argument("--bundle", required=True)
    x.add_argument("--unsafe-offset", type=float, default=0.0)
    x.add_argument("--file", default="prompt.onnx", help="the graph's file name in the bundle (0.8: prompt.onnx, reply.onnx)")
    x.add_argument("--embeddings", choices=["fp16", "int8"], default="int8", help="word-embedding storage (0.7: fp16)")
    args = ap.parse_args()
    {"train": train, "eval": evaluate, "export": export}[args.cmd](args)


if __name__ == "__main__":
    main()
