"""Optional graph rewrite: each layer's exported attention -> ORT's fused ``com.microsoft.MultiHeadAttention``.

NOT applied by export.py: measured exact but not worth it (onnxruntime 1.32, CPU EP,
1 intra-op thread, 2-core AVX-512 EPYC VM, old vs fused alternating in one process):
batch-1 step 0.99-1.05x at past 64, 1.01-1.12x at past 200, 1.08-1.11x at past 400;
16-token chunk 0.97-0.99x; batch-32 step 0.94-1.01x.  The fused graph executes ~98 nodes
per step instead of ~230, but the CPU MultiHeadAttention kernel still copies past+new
into a fresh present (the contract's KV Concat, the big cost at batch 32, is inherent
to returning present.*) and its per-head loop is no faster than the FusedMatMul/Softmax/
MatMul it replaces; 36 MatMulNBits stay ~half of a batch-1 step.  Kept so the
experiment can be re-run on another onnxruntime or CPU:

    python models/guardkit-mini/recipe/fuse_attention.py [--merge-qkv] IN.onnx OUT.onnx

What the fused node gets (one per layer), found by pattern from the present.{i}.* Concats:
  query/key/value = the q/k/v MatMulNBits outputs [B, S, 384],
  bias            = concat(q.bias, k.bias, v.bias) (the three bias Adds are absorbed),
  attention_bias  = the graph's additive causal+padding mask [B, 1, S, P+S] (unchanged),
  past_key/value  = past_key_values.{i}.key/value [B, 12, P, 32],
  present_key/value -> present.{i}.key/value (same names: the I/O contract is unchanged),
  scale           = the exported constant (1/sqrt(32)).
Its output [B, S, 384] replaces the final Reshape's output, so the o-projection is
untouched; everything that only fed the old subgraph is pruned.  ``--merge-qkv`` also
replaces the q/k/v MatMulNBits by one with N = 3*384 plus a Split (exact: 4-bit blocks run
along K, so columns keep their own blocks and scales) -- also no measurable gain.

Equality (guardkit-mini 0.2.0, 280 tokens): fused vs unfused logits max |diff| 1.5e-5;
single steps / 3- / 16-token chunks / ragged left-padded batches / step_many vs the
unfused full recompute <= 1.8e-5; `guardkit eval --builtin` verdicts and scores identical.
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

MS = "com.microsoft"


class _Graph:
    def __init__(self, graph: onnx.GraphProto):
        self.g = graph
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inits = {i.name: i for i in graph.initializer}

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant":
            return numpy_helper.to_array(n.attribute[0].t)
        return None

    def prod(self, name: str, op: str) -> onnx.NodeProto:
        n = self.producer.get(name)
        if n is None or n.op_type != op:
            raise ValueError(f"{name}: expected {op}, found {None if n is None else n.op_type}")
        return n

    def only_consumer(self, name: str, op: str) -> onnx.NodeProto:
        cs = self.consumers.get(name, [])
        cs = [c for c in cs if c.op_type == op]
        if len(cs) != 1:
            raise ValueError(f"{name}: expected one {op} consumer, found {len(cs)}")
        return cs[0]


def _perm(node: onnx.NodeProto) -> list[int]:
    return [list(a.ints) for a in node.attribute if a.name == "perm"][0]


def _projection(G: _Graph, heads_name: str) -> tuple[str, np.ndarray]:
    """Transpose(Reshape(Add(bias, MatMul(x)))) -> (MatMul output name, bias)."""
    t = G.prod(heads_name, "Transpose")
    if _perm(t) != [0, 2, 1, 3]:
        raise ValueError(f"{t.name}: unexpected perm")
    r = G.prod(t.input[0], "Reshape")
    add = G.prod(r.input[0], "Add")
    a, b = add.input
    bias = G.const(a)
    mm = b
    if bias is None:
        bias, mm = G.const(b), a
    if bias is None or bias.ndim != 1:
        raise ValueError(f"{add.name}: no constant 1-D bias")
    return mm, bias.astype(np.float32)


def _merged_qkv(G: _Graph, names: list[str], layer: int, new_inits: list[onnx.TensorProto]) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
    """One MatMulNBits with N = 3*384 and a Split, in place of the q/k/v MatMulNBits (exact: 4-bit
    blocks run along K, so each output column keeps its own blocks and scales)."""
    nodes = [G.producer.get(n) for n in names]
    if any(n is None or n.op_type != "MatMulNBits" or len(n.input) != 3 for n in nodes):
        return None
    attrs = [{a.name: helper.get_attribute_value(a) for a in n.attribute} for n in nodes]
    if len({n.input[0] for n in nodes}) != 1 or any({k: v for k, v in a.items() if k != "N"} != {k: v for k, v in attrs[0].items() if k != "N"} for a in attrs):
        return None
    blobs = [G.const(n.input[1]) for n in nodes]
    scales = [G.const(n.input[2]) for n in nodes]
    if any(x is None for x in blobs + scales):
        return None
    base = f"/fused/layers.{layer}/qkv"
    new_inits.append(numpy_helper.from_array(np.concatenate(blobs, axis=0), base + "_Q4"))
    new_inits.append(numpy_helper.from_array(np.concatenate(scales, axis=0), base + "_scales"))
    widths = [int(a["N"]) for a in attrs]
    kw = dict(attrs[0], N=sum(widths))
    mm = helper.make_node("MatMulNBits", [nodes[0].input[0], base + "_Q4", base + "_scales"], [base + "_out"],
                          name=base + "/MatMulNBits", domain=MS, **kw)
    split_sizes = base + "_split"
    new_inits.append(numpy_helper.from_array(np.array(widths, dtype=np.int64), split_sizes))
    split = helper.make_node("Split", [base + "_out", split_sizes], [base + "_q", base + "_k", base + "_v"],
                             name=base + "/Split", axis=-1)
    return mm, split


def fuse_attention(model: onnx.ModelProto, merge_qkv: bool = False) -> tuple[onnx.ModelProto, int]:
    """Rewrite every ``Concat(past, new) -> present.{i}.key`` attention block; returns (model, count).

    ``merge_qkv`` also replaces the three q/k/v MatMulNBits by one (N = 3*hidden) and a Split.
    """
    g = model.graph
    G = _Graph(g)
    outputs = {o.name for o in g.output}
    new_nodes: list[tuple[int, onnx.NodeProto]] = []
    new_inits: list[onnx.TensorProto] = []
    i = 0
    while f"present.{i}.key" in outputs:
        pk_cat = G.prod(f"present.{i}.key", "Concat")
        pv_cat = G.prod(f"present.{i}.value", "Concat")
        past_k, k_heads = pk_cat.input
        past_v, v_heads = pv_cat.input
        # scores = MatMul(q_heads, Transpose(present.key)) * scale + mask
        kt = G.only_consumer(pk_cat.output[0], "Transpose")
        if _perm(kt) != [0, 1, 3, 2]:
            raise ValueError(f"{kt.name}: unexpected perm")
        qk = G.only_consumer(kt.output[0], "MatMul")
        q_heads = qk.input[0]
        mul = G.only_consumer(qk.output[0], "Mul")
        scale = G.const(mul.input[1])
        if scale is None or scale.size != 1:
            raise ValueError(f"{mul.name}: no constant scale")
        add = G.only_consumer(mul.output[0], "Add")
        mask = add.input[1] if add.input[0] == mul.output[0] else add.input[0]
        sm = G.only_consumer(add.output[0], "Softmax")
        av = G.only_consumer(sm.output[0], "MatMul")
        if av.input[1] != pv_cat.output[0]:
            raise ValueError(f"{av.name}: does not read present.{i}.value")
        tr = G.only_consumer(av.output[0], "Transpose")
        rs = G.only_consumer(tr.output[0], "Reshape")
        q_mm, q_b = _projection(G, q_heads)
        k_mm, k_b = _projection(G, k_heads)
        v_mm, v_b = _projection(G, v_heads)
        # the exported Reshape shapes are computed at run time; heads come from the past input's declared shape
        shape = {vi.name: vi for vi in g.input}[past_k].type.tensor_type.shape.dim
        num_heads, head_dim = shape[1].dim_value, shape[3].dim_value
        if not num_heads or q_b.size != num_heads * head_dim:
            raise ValueError(f"layer {i}: cannot tell the head count from {past_k}")
        bias_name = f"/fused/layers.{i}/qkv_bias"
        new_inits.append(numpy_helper.from_array(np.concatenate([q_b, k_b, v_b]), bias_name))
        extra: list[onnx.NodeProto] = []
        if merge_qkv:
            merged = _merged_qkv(G, [q_mm, k_mm, v_mm], i, new_inits)
            if merged is not None:
                extra = list(merged)
                q_mm, k_mm, v_mm = merged[1].output
        node = helper.make_node(
            "MultiHeadAttention",
            [q_mm, k_mm, v_mm, bias_name, "", mask, past_k, past_v],
            [rs.output[0], pk_cat.output[0], pv_cat.output[0]],
            name=f"/fused/layers.{i}/MultiHeadAttention", domain=MS,
            num_heads=num_heads, scale=float(scale.reshape(())),
        )
        new_nodes.append((list(g.node).index(rs), extra + [node]))
        i += 1
    if not new_nodes:
        return model, 0
    # drop the replaced producers of the fused outputs, insert the fused nodes where the Reshapes were
    replaced = {o for _, ns in new_nodes for o in ns[-1].output}
    kept: list[onnx.NodeProto] = []
    at = {idx: ns for idx, ns in new_nodes}
    for idx, n in enumerate(g.node):
        if idx in at:
            kept.extend(at[idx])
        if not any(o in replaced for o in n.output):
            kept.append(n)
    del g.node[:]
    g.node.extend(_prune(kept, {o.name for o in g.output}))
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input}
    for init in list(g.initializer):
        if init.name not in used:
            g.initializer.remove(init)
    if not any(op.domain == MS for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS, 1))
    return model, i


def _prune(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """Keep only nodes that (transitively) feed a graph output, in the original order."""
    needed = set(outputs)
    keep = [False] * len(nodes)
    for idx in range(len(nodes) - 1, -1, -1):
        if any(o in needed for o in nodes[idx].output):
            keep[idx] = True
            needed.update(x for x in nodes[idx].input if x)
    return [n for n, k in zip(nodes, keep) if k]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src, dst = args
    model, count = fuse_attention(onnx.load(src), merge_qkv="--merge-qkv" in sys.argv)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"fused {count} attention blocks; {len(model.graph.node)} nodes -> {dst}")


if __name__ == "__main__":
    main()
