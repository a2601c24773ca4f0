"""Recover a PyTorch state dict for GuardMini from a shipped guardkit-mini bundle.

0.3 is fine-tuned from the 0.2 release rather than from the bare backbone: the 0.2
fp32 checkpoint was not kept, but its bundle (in git) holds every weight, 4-bit
(MatMulNBits; 0.2 symmetric block 32, 0.3 on asymmetric block 16) or fp16.  This reads them back: 4-bit blocks are
dequantised (q - zero point) * scale (zero point 8 when symmetric), the fp16 embedding table is widened, head MatMuls are
transposed back to nn.Linear layout, and the calibration offsets baked into the risk
biases (metadata ``guardkit_unsafe_logit_offsets``) are undone so training starts
from the uncalibrated heads.

Usage:  python models/guardkit-mini/recipe/init_from_bundle.py BUNDLE_DIR OUT.pt
        (BUNDLE_DIR e.g. a checkout of the 0.2.0 bundle: git show <rev>:models/guardkit-mini/model.onnx)
        python models/guardkit-mini/recipe/init_from_bundle.py --classifier models/guardkit-mini/prompt.onnx OUT.pt
        (a classifier graph as a prompt_classifier.py checkpoint: --init OUT.pt, eval --ckpt OUT.pt)
"""
from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from model import GuardMini


def _nibbles(packed: np.ndarray) -> np.ndarray:
    """uint8 bytes -> their 4-bit halves, low nibble first (MatMulNBits packing)."""
    return np.stack([packed & 0x0F, packed >> 4], axis=-1).astype(np.float32)


def dequantise(blob: np.ndarray, scales: np.ndarray, n: int, k: int, block: int,
               zero_points: np.ndarray | None = None) -> np.ndarray:
    """MatMulNBits 4-bit weights -> float32 [N, K] (nn.Linear layout).

    Symmetric bundles (0.2) have no zero points (implicitly 8); asymmetric ones (0.3 on)
    store one packed 4-bit zero point per block.
    """
    q = _nibbles(blob).reshape(n, -1, block)  # [N, k_blocks, block]
    n_blocks = q.shape[1]
    zp = 8.0 if zero_points is None else _nibbles(zero_points).reshape(n, -1)[:, :n_blocks, None]
    w = (q - zp) * scales.reshape(n, -1, 1)
    return w.reshape(n, -1)[:, :k]


def _dequantised_weight(node, inits: dict[str, np.ndarray]) -> torch.Tensor:
    """One MatMulNBits node's weight as float32 [N, K] (nn.Linear layout)."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    zero_points = inits[node.input[3]] if len(node.input) > 3 and node.input[3] else None
    return torch.from_numpy(dequantise(inits[node.input[1]], inits[node.input[2]], attrs["N"], attrs["K"],
                                       attrs["block_size"], zero_points))


def state_dict_from_onnx(path: str) -> dict[str, torch.Tensor]:
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    sd: dict[str, torch.Tensor] = {}
    for node in m.graph.node:
        if not node.name.startswith("/m/"):
            continue
        module = node.name[3:].rsplit("/", 1)[0]  # "/m/layers.0/q/MatMul_Q4" -> "layers.0/q"
        key = module.replace("/", ".")
        if node.op_type == "MatMulNBits":
            sd[key + ".weight"] = _dequantised_weight(node, inits)
        elif node.op_type == "MatMul" and node.input[1] in inits:
            sd[key + ".weight"] = torch.from_numpy(inits[node.input[1]].T.copy())
    for name, arr in inits.items():
        if name.startswith("m.") and not name.endswith("_fp16"):
            sd[name[2:]] = torch.from_numpy(arr.astype(np.float32))
        elif name == "m.word.weight_fp16":
            sd["word.weight"] = torch.from_numpy(arr.astype(np.float32))
    meta = {p.key: p.value for p in m.metadata_props}
    off = json.loads(meta.get("guardkit_unsafe_logit_offsets", '{"response": 0, "prompt": 0}'))
    sd["resp_head.risk.bias"][2] -= off["response"]
    sd["prompt_head.risk.bias"][2] -= off["prompt"]
    return sd


def classifier_state_dict_from_onnx(path: str) -> dict[str, torch.Tensor]:
    """A bundle's ``prompt.onnx`` or ``reply.onnx`` -> a ``prompt_classifier.PromptClassifier`` state dict.

    4-bit encoder MatMuls are dequantised as above; the int8 word embeddings are widened row by
    row (int8 * per-row scale, as export.quantise stores them); the heads are fp32 Gemms already in
    nn.Linear layout.  The unsafe-logit offset lives in the graph's own ``offset`` initializer, not in
    the weights, so nothing is undone here: re-export with ``--unsafe-offset`` to bake one again."""
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    sd: dict[str, torch.Tensor] = {}
    for node in m.graph.node:
        if node.op_type == "MatMulNBits" and node.name.startswith("/m/"):
            sd[node.name[3:].rsplit("/", 1)[0].replace("/", ".") + ".weight"] = _dequantised_weight(node, inits)
    for name, arr in inits.items():
        if not name.startswith("m."):
            continue
        if name.endswith(".weight_int8"):
            scale = inits[name[: -len("_int8")] + "_scale"]
            sd[name[2: -len("_int8")]] = torch.from_numpy(arr.astype(np.float32) * scale)
        elif name.endswith(".weight_fp16"):
            sd[name[2: -len("_fp16")]] = torch.from_numpy(arr.astype(np.float32))
        elif not name.endswith("_scale"):
            sd[name[2:]] = torch.from_numpy(arr.astype(np.float32))
    return sd


def main():
    if sys.argv[1:2] == ["--classifier"]:
        src, out = sys.argv[2], sys.argv[3]
        torch.save(dict(model=classifier_state_dict_from_onnx(src), args=dict(arch="bidirectional"), step=0, from_bundle=src), out)
        print(f"wrote {out} (a prompt_classifier.py checkpoint)")
        return
    src, out = sys.argv[1], sys.argv[2]
    sd = state_dict_from_onnx(src)
    model = GuardMini()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"weights do not match GuardMini: missing {missing}, unexpected {unexpected}")
    torch.save(model.state_dict(), out)
    print(f"wrote {out} ({len(sd)} tensors)")


if __name__ == "__main__":
    main()
