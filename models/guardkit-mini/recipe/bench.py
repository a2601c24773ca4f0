"""Check the exported bundle: chunk invariance, agreement with fp32, step latency.

* invariance: one full call vs prefill + single-token steps vs 16-token chunks
  (max |logit difference| over all four heads, all positions), on a ragged batch too;
* agreement: quantised vs fp32 export (max |diff| of risk logits, and how often the
  argmax / the p_unsafe>=0.5 decision agree) on real corpus texts;
* latency: median single-token incremental step, batch 1, 1 intra-op thread,
  after a 64-token prefill.

Usage:  python models/guardkit-mini/recipe/bench.py [--model models/guardkit-mini/model.onnx]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")
OUTS = ["risk_logits", "category_logits", "prompt_risk_logits", "prompt_category_logits"]


class Runner:
    def __init__(self, path, threads=1):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.n_layers = sum(1 for i in self.s.get_inputs() if i.name.endswith(".key"))
        self.outs = OUTS + [f"present.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]

    def empty(self, b):
        z = np.zeros((b, 12, 0, 32), np.float32)
        return [z] * (2 * self.n_layers)

    def step(self, ids, am, pos, past):
        feed = {"input_ids": ids, "attention_mask": am, "position_ids": pos}
        for i in range(self.n_layers):
            feed[f"past_key_values.{i}.key"] = past[2 * i]
            feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
        r = self.s.run(self.outs, feed)
        return r[:4], r[4:]

    def run_chunked(self, ids, chunk):
        """ids [b, n] (no padding); returns the 4 logits tensors for all positions."""
        b, n = ids.shape
        past, outs = self.empty(b), []
        for a in range(0, n, chunk):
            c = ids[:, a:a + chunk]
            am = np.ones((b, a + c.shape[1]), np.int64)
            pos = np.tile(np.arange(a, a + c.shape[1], dtype=np.int64), (b, 1))
            o, past = self.step(c, am, pos, past)
            outs.append(o)
        return [np.concatenate([o[k] for o in outs], 1) for k in range(4)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(BUNDLE, "model.onnx"))
    ap.add_argument("--fp32", default=os.path.join(WORK, "model.fp32.onnx"))
    args = ap.parse_args()
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(BUNDLE, "tokenizer.json"))
    items = [json.loads(l) for l in open(os.path.join(WORK, "corpus.jsonl"), encoding="utf-8")]
    texts = [x for x in items if x["split"] == "test" and x["kind"] == "response"][:40]
    q = Runner(args.model)
    # --- invariance
    worst = 0.0
    for x in texts[:10]:
        ids = tok.encode("[CLS] " + x["prompt"] + " [SEP]", add_special_tokens=False).ids[:60]
        ids += tok.encode(x["response"], add_special_tokens=False).ids[:140]
        ids = np.array([ids], np.int64)
        full = q.run_chunked(ids, ids.shape[1])
        for ch in (1, 16, 7):
            other = q.run_chunked(ids, ch)
            worst = max(worst, max(float(np.abs(a - b).max()) for a, b in zip(full, other)))
    print(f"chunk invariance (full vs 1-step vs 16/7-chunks), max |diff| = {worst:.2e}")
    # ragged batch with left padding vs single rows
    a = np.array(tok.encode("[CLS] how do i bake bread? [SEP] mix flour and water", add_special_tokens=False).ids)
    bb = np.array(tok.encode("[CLS]  [SEP] you are an idiot", add_special_tokens=False).ids)
    n = max(len(a), len(bb))
    ids = np.zeros((2, n), np.int64)
    am = np.zeros((2, n), np.int64)
    pos = np.zeros((2, n), np.int64)
    for i, r in enumerate((a, bb)):
        ids[i, n - len(r):] = r
        am[i, n - len(r):] = 1
        pos[i, n - len(r):] = np.arange(len(r))
    o, _ = q.step(ids, am, pos, q.empty(2))
    d = 0.0
    for i, r in enumerate((a, bb)):
        single = q.run_chunked(r[None, :], len(r))
        d = max(d, float(np.abs(o[0][i, n - len(r):] - single[0][0]).max()))
    print(f"ragged left-padded batch vs single rows, max |diff| = {d:.2e}")
    # --- agreement with fp32
    if os.path.exists(args.fp32):
        f = Runner(args.fp32)
        md, agree, dec, tot = 0.0, 0, 0, 0
        for x in texts:
            ids = tok.encode("[CLS] " + x["prompt"] + " [SEP]", add_special_tokens=False).ids[:60]
            ids += tok.encode(x["response"], add_special_tokens=False).ids[:200]
            ids = np.array([ids], np.int64)
            rq, rf = q.run_chunked(ids, 512)[0][0], f.run_chunked(ids, 512)[0][0]
            md = max(md, float(np.abs(rq - rf).max()))
            agree += int((rq.argmax(-1) == rf.argmax(-1)).sum())
            pq = np.exp(rq) / np.exp(rq).sum(-1, keepdims=True)
            pf = np.exp(rf) / np.exp(rf).sum(-1, keepdims=True)
            dec += int(((pq[:, 2] >= 0.5) == (pf[:, 2] >= 0.5)).sum())
            tot += rq.shape[0]
        print(f"quantised vs fp32 on {len(texts)} test texts ({tot} tokens): max |risk logit diff| = {md:.3f}, "
              f"argmax agreement {agree / tot:.4f}, unsafe-decision agreement {dec / tot:.4f}")
    # --- latency
    ids = np.array([tok.encode("[CLS] " + texts[0]["prompt"] + " [SEP] " + texts[0]["response"],
                               add_special_tokens=False).ids[:64]], np.int64)
    _, past = q.step(ids, np.ones_like(ids), np.arange(ids.shape[1])[None, :], q.empty(1))
    times = []
    t = ids.shape[1]
    for i in range(200):
        x = np.array([[2000 + i]], np.int64)
        t0 = time.perf_counter()
        _, past = q.step(x, np.ones((1, t + 1), np.int64), np.array([[t]], np.int64), past)
        times.append((time.perf_counter() - t0) * 1000)
        t += 1
    print(f"median incremental step (batch 1, 1 thread, past 64..263): {statistics.median(times):.3f} ms "
          f"(p90 {np.percentile(times, 90):.3f} ms)")
    size = sum(os.path.getsize(os.path.join(BUNDLE, f)) for f in ("model.onnx", "tokenizer.json") if os.path.exists(os.path.join(BUNDLE, f)))
    print(f"bundle model+tokenizer: {size / 1e6:.2f} MB (model.onnx {os.path.getsize(args.model) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
