"""Export guardkit-mini to ONNX (optimum-style KV names) and quantise the weights.

Steps:
 1. torch.onnx.export (TorchScript exporter, dynamo=False) of GuardMini with explicit
    past/present KV, all batch/seq/past dims dynamic  -> work/model.fp32.onnx
 2. weight-only quantisation: every MatMul with a constant weight becomes
    MatMulNBits (4-bit, asymmetric with zero points, block 16, fp32 compute; the 6 small
    head MatMuls stay fp32).  0.1 and 0.2 used symmetric block-32 4-bit weights, which
    was measured (0.3 candidate, 400 dev-suite prompts) to move p(unsafe) by 0.28 on
    average and by up to 0.997 from the fp32 model (everyday-prompt FPR 3.7% fp32 ->
    36.9% quantised); asymmetric block 16 moves it by 0.017 on average (FPR 3.7%), for
    ~0.3 ms more per step and ~2 MB more.  The dequantised weights in PyTorch give the
    same outputs as ONNX Runtime's kernel, so the error is the rounding, not the kernel.  8-bit MatMulNBits was measured 15x slower per step on this
    onnxruntime CPU build (~12-17 ms vs ~0.9 ms), so 4-bit it is.  Activations are never
    quantised, so a chunk of k tokens and k single steps give the same logits.
    Keep accuracy_level unset: accuracy_level=4 (int8 compute) was measured on
    onnxruntime 1.32 / AVX512-VNNI and breaks that invariance (single steps take another
    int8 kernel than multi-row calls: |logit diff| up to 0.11 vs a full recompute, so a
    batched step and a lone step would disagree); levels 1-3 fall back to fp32 compute.
 3. the word-embedding table is stored as float16 (Gather on fp16 + Cast to fp32).
 -> models/guardkit-mini/model.onnx   (then run write_manifest.py)

Usage:  python models/guardkit-mini/recipe/export.py [--ckpt work/final.pt] [--bits 4]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from model import HEAD_DIM, HEADS, GuardMini

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.dirname(HERE)
WORK = os.path.join(BUNDLE, "work")


class Wrapper(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, position_ids, *flat_past):
        past = [(flat_past[2 * i], flat_past[2 * i + 1]) for i in range(len(self.m.layers))]
        risk, cat, prisk, pcat, present = self.m(input_ids, attention_mask, position_ids, past)
        out = [risk, cat, prisk, pcat]
        for k, v in present:
            out += [k, v]
        return tuple(out)


def export_fp32(ckpt: str, path: str):
    m = GuardMini()
    sd = torch.load(ckpt, weights_only=False)
    if "model" in sd and "state" in sd:
        sd = sd["model"]
    m.load_state_dict(sd)
    m.eval()
    n = len(m.layers)
    b, s, p = 1, 3, 2
    ids = torch.randint(1000, 2000, (b, s))
    am = torch.ones(b, p + s, dtype=torch.long)
    pos = torch.arange(p, p + s).unsqueeze(0)
    past = [torch.randn(b, HEADS, p, HEAD_DIM) for _ in range(2 * n)]
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["risk_logits", "category_logits", "prompt_risk_logits", "prompt_category_logits"]
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
           "position_ids": {0: "batch", 1: "seq"}}
    for o in out_names:
        dyn[o] = {0: "batch", 1: "seq"}
    for i in range(n):
        for kv in ("key", "value"):
            in_names.append(f"past_key_values.{i}.{kv}")
            out_names.append(f"present.{i}.{kv}")
            dyn[f"past_key_values.{i}.{kv}"] = {0: "batch", 2: "past"}
            dyn[f"present.{i}.{kv}"] = {0: "batch", 2: "total"}
    with torch.no_grad():
        torch.onnx.export(Wrapper(m), (ids, am, pos, *past), path, input_names=in_names, output_names=out_names,
                          dynamic_axes=dyn, opset_version=17, dynamo=False, do_constant_folding=True)
    print("exported", path, os.path.getsize(path) // 1024, "KiB")


def quantise(src: str, dst: str, bits: int = 4, block: int = 16, symmetric: bool = False, embeddings: str = "fp16"):
    """Weight-only quantisation (module docstring); ``embeddings`` stores the word-embedding table as
    "fp16" or as "int8" with one scale per row (the classifiers, 0.8: half the size, |logit diff| ~1e-2)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    model = onnx.load(src)
    heads = [n.name for n in model.graph.node if n.op_type == "MatMul" and "_head/" in n.name]  # tiny: keep fp32
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=block, is_symmetric=symmetric, accuracy_level=None,
                             nodes_to_exclude=heads)
    q.process()
    model = q.model.model if hasattr(q.model, "model") else q.model
    # float16 (or int8) storage for the word-embedding table
    inits = {i.name: i for i in model.graph.initializer}
    for node in list(model.graph.node):
        if node.op_type == "Gather" and node.input[0] in inits:
            w = numpy_helper.to_array(inits[node.input[0]])
            if not (w.ndim == 2 and w.shape[0] > 10000 and w.dtype == np.float32):
                continue
            if embeddings == "int8":
                _int8_rows(model, node, inits[node.input[0]], w)
            else:
                name16 = node.input[0] + "_fp16"
                model.graph.initializer.remove(inits[node.input[0]])
                model.graph.initializer.append(numpy_helper.from_array(w.astype(np.float16), name16))
                out = node.output[0]
                node.input[0] = name16
                node.output[0] = out + "_fp16"
                idx = list(model.graph.node).index(node)
                model.graph.node.insert(idx + 1, helper.make_node("Cast", [out + "_fp16"], [out], to=onnx.TensorProto.FLOAT,
                                                                  name=node.name + "_cast"))
    onnx.save(model, dst)
    print("quantised", dst, os.path.getsize(dst) // 1024, "KiB")


def _int8_rows(model, node, init, w: np.ndarray) -> None:
    """Gather(table) -> Gather(int8 table) * Gather(row scales): symmetric int8, one scale per row."""
    scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12) / 127.0
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    base, out, ids = node.input[0], node.output[0], node.input[1]
    model.graph.initializer.remove(init)
    model.graph.initializer.extend([numpy_helper.from_array(q, base + "_int8"), numpy_helper.from_array(scale.astype(np.float32), base + "_scale")])
    node.input[0], node.output[0] = base + "_int8", out + "_int8"
    idx = list(model.graph.node).index(node)
    for k, extra in enumerate([
            helper.make_node("Cast", [out + "_int8"], [out + "_deq"], to=onnx.TensorProto.FLOAT, name=node.name + "_cast"),
            helper.make_node("Gather", [base + "_scale", ids], [out + "_rowscale"], name=node.name + "_scale"),
            helper.make_node("Mul", [out + "_deq", out + "_rowscale"], [out], name=node.name + "_dequant")]):
        model.graph.node.insert(idx + 1 + k, extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(WORK, "final.pt"))
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--symmetric", action="store_true", help="0.1/0.2's scheme (4-bit, block 32, symmetric): see the docstring")
    ap.add_argument("--out", default=os.path.join(BUNDLE, "model.onnx"))
    ap.add_argument("--fp32-out", default=os.path.join(WORK, "model.fp32.onnx"), help="where the unquantised export goes (not shipped)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    fp32 = args.fp32_out
    export_fp32(args.ckpt, fp32)
    quantise(fp32, args.out, args.bits, args.block, args.symmetric)


if __name__ == "__main__":
    main()
