"""Emit the guardkit-contract ONNX graph of a Qwen3 guard model from its weights.

The graph is written node by node with :mod:`onnx.helper` rather than traced,
so that every detail the runtime relies on is explicit:

- one graph for prefill and incremental steps: ``past_key_values.{i}.key`` /
  ``.value`` in (length 0 on the first call), ``present.{i}.*`` out;
- dynamic batch, new-token count and past length;
- an index-based causal mask: key ``j`` is visible to query ``i`` iff
  ``j <= past + i`` and ``attention_mask[j] == 1`` (ragged batches of
  :meth:`guardkit.model.StreamModel.step_many` put pads anywhere);
- a finite mask value, so rows made only of pads stay finite (no NaN leaks
  into real rows through the cache);
- norms, softmax and the classification heads in float32 even for fp16
  weights; the KV state has the weights' dtype;
- optional 8-bit weight-only quantization of every projection as
  ``com.microsoft.MatMulNBits`` (bits=8, symmetric, the packing of
  onnxruntime's ``MatMulNBitsQuantizer``), done tensor by tensor; by default
  with ``accuracy_level=4`` (int8 compute on CPU, see :func:`build_onnx`).

Weights are streamed to an external-data file as they are produced, so a 4B
model never sits in memory twice; :func:`build_onnx` inlines them again when
the model is small enough for a single protobuf.

It needs ``numpy`` and ``onnx`` only (no torch), which lets the benchmark build
real-size graphs from random weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["GraphSpec", "build_onnx", "quantize_8bit", "weight_names"]

OPSET = 17
MASK_VALUE = -1e9  # finite: a fully masked (pad) row softmaxes to uniform, never NaN
INLINE_LIMIT = 1_800_000_000  # bytes of weights kept inside model.onnx (protobuf limit is 2 GiB)
DATA_FILE = "model.onnx.data"


@dataclass(frozen=True)
class GraphSpec:
    """The shapes of a Qwen3 guard model (read from its ``config.json``)."""

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    guard_inner_size: int
    num_risk: int
    num_category: int
    num_query_risk: int
    num_query_category: int
    attention_bias: bool = False


def weight_names(spec: GraphSpec) -> dict[str, tuple[int, ...]]:
    """Every parameter of the model and its shape, in the checkpoint's naming."""
    h, d = spec.hidden_size, spec.head_dim
    names: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (spec.vocab_size, h)}
    for i in range(spec.num_layers):
        p = f"model.layers.{i}."
        names[p + "input_layernorm.weight"] = (h,)
        names[p + "post_attention_layernorm.weight"] = (h,)
        for proj, rows in (("q_proj", spec.num_heads * d), ("k_proj", spec.num_kv_heads * d), ("v_proj", spec.num_kv_heads * d)):
            names[p + f"self_attn.{proj}.weight"] = (rows, h)
            if spec.attention_bias:
                names[p + f"self_attn.{proj}.bias"] = (rows,)
        names[p + "self_attn.o_proj.weight"] = (h, spec.num_heads * d)
        if spec.attention_bias:
            names[p + "self_attn.o_proj.bias"] = (h,)
        names[p + "self_attn.q_norm.weight"] = (d,)
        names[p + "self_attn.k_norm.weight"] = (d,)
        names[p + "mlp.gate_proj.weight"] = (spec.intermediate_size, h)
        names[p + "mlp.up_proj.weight"] = (spec.intermediate_size, h)
        names[p + "mlp.down_proj.weight"] = (h, spec.intermediate_size)
    names["model.norm.weight"] = (h,)
    g = spec.guard_inner_size
    for prefix, n_risk, n_cat in (("", spec.num_risk, spec.num_category), ("query_", spec.num_query_risk, spec.num_query_category)):
        names[f"{prefix}risk_level_category_pre.weight"] = (g, h)
        names[f"{prefix}risk_level_category_layernorm.weight"] = (g,)
        names[f"{prefix}risk_level_head.weight"] = (n_risk, g)
        names[f"{prefix}category_head.weight"] = (n_cat, g)
    return names


def quantize_8bit(weight: np.ndarray, block_size: int, scale_dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 8-bit block quantization of a ``[N, K]`` (out, in) weight for ``MatMulNBits``.

    Returns the packed weight ``uint8 [N, K/block, block]`` and the scales
    ``[N, K/block]``; the zero point is the default 128, so a value reads back
    as ``(q - 128) * scale``. In each block the value of largest magnitude maps
    to -128 exactly (onnxruntime's ``MatMulNBitsQuantizer`` convention).
    """
    n, k = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((n, blocks * block_size), dtype=np.float32)
    padded[:, :k] = weight
    wb = padded.reshape(n, blocks, block_size)
    idx = np.abs(wb).argmax(axis=-1)
    extreme = np.take_along_axis(wb, idx[..., None], axis=-1)[..., 0]
    scale = (extreme / -128.0).astype(np.float32)
    scale[scale == 0] = 1.0
    scale = scale.astype(scale_dtype).astype(np.float32)  # quantize against the scale the graph will use
    q = np.clip(np.rint(wb / scale[..., None]), -128, 127).astype(np.int16) + 128
    return q.astype(np.uint8), scale.astype(scale_dtype)


class _Writer:
    """Initializers streamed to one external-data file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / DATA_FILE
        self._handle = self.path.open("wb")
        self.initializers: list = []
        self.bytes = 0

    def add(self, name: str, array: np.ndarray) -> str:
        from onnx import TensorProto, helper

        array = np.ascontiguousarray(array)
        tensor = TensorProto()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        if array.nbytes < 1024:  # small constants stay inline
            tensor.raw_data = array.tobytes()
        else:
            pad = (-self._handle.tell()) % 64
            if pad:
                self._handle.write(b"\0" * pad)
            offset = self._handle.tell()
            self._handle.write(array.tobytes())
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", DATA_FILE), ("offset", str(offset)), ("length", str(array.nbytes))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            self.bytes += array.nbytes
        self.initializers.append(tensor)
        return name

    def close(self) -> None:
        self._handle.close()


class _Graph:
    def __init__(self, writer: _Writer) -> None:
        self.nodes: list = []
        self.writer = writer
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: list[str], name: str | None = None, *, domain: str = "", outputs: int = 1, **attrs) -> str | list[str]:
        from onnx import helper

        outs = [name] if name and outputs == 1 else [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh("n_" + op_type), domain=domain, **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, array: np.ndarray, hint: str = "c") -> str:
        return self.writer.add(self.fresh(hint), np.asarray(array))


def build_onnx(
    spec: GraphSpec,
    weight: Callable[[str], np.ndarray],
    out_dir: Path,
    *,
    dtype: str = "fp32",
    int8: bool = False,
    block_size: int = 32,
    int8_accuracy_level: int = 4,
    inline_limit: int = INLINE_LIMIT,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Write ``model.onnx`` (and ``model.onnx.data`` when large) into ``out_dir``.

    ``weight(name)`` returns each parameter as a float32 array in the
    checkpoint's layout (``[out, in]`` for projections). Returns the names of
    the files written.

    ``int8_accuracy_level`` is ``MatMulNBits``' ``accuracy_level``: 4 lets
    onnxruntime's CPU kernels compute in int8 (activations quantized per block,
    about 1-2% relative error per projection, several times faster than fp32);
    0 dequantizes the weights for every call (exact, but slower than fp32 on CPU).
    """
    import onnx
    from onnx import TensorProto, helper

    if dtype not in ("fp32", "fp16"):
        raise ValueError(f"unsupported dtype {dtype!r}: fp32 or fp16")
    wdt = np.float16 if dtype == "fp16" else np.float32
    wtype = TensorProto.FLOAT16 if dtype == "fp16" else TensorProto.FLOAT
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out_dir)
    g = _Graph(writer)
    s = spec
    d, nh, kvh = s.head_dim, s.num_heads, s.num_kv_heads
    groups = nh // kvh

    def to_f32(x: str) -> str:
        return g.op("Cast", [x], to=TensorProto.FLOAT) if dtype == "fp16" else x

    def to_w(x: str) -> str:
        return g.op("Cast", [x], to=wtype) if dtype == "fp16" else x

    def rms(x: str, name: str, *, fp32_out: bool = False) -> str:
        w = weight(name)
        xf = to_f32(x)
        sq = g.op("Pow", [xf, g.const(np.array(2.0, np.float32))])
        mean = g.op("ReduceMean", [sq], axes=[-1], keepdims=1)
        denom = g.op("Sqrt", [g.op("Add", [mean, g.const(np.array(s.rms_norm_eps, np.float32))])])
        normed = g.op("Div", [xf, denom])
        if fp32_out:
            return g.op("Mul", [normed, writer.add(name, w.astype(np.float32))])
        return g.op("Mul", [to_w(normed), writer.add(name, w.astype(wdt))])

    def linear(x: str, prefix: str, *, fp32: bool = False, quantize: bool = True) -> str:
        w = weight(prefix + ".weight")
        n, k = w.shape
        if int8 and quantize and not fp32:
            packed, scales = quantize_8bit(w, block_size, wdt)
            y = g.op("MatMulNBits", [x, writer.add(prefix + ".weight_q8", packed), writer.add(prefix + ".weight_scales", scales)],
                     domain="com.microsoft", K=k, N=n, bits=8, block_size=block_size, accuracy_level=int8_accuracy_level)
        else:
            y = g.op("MatMul", [x, writer.add(prefix + ".weight_t", np.ascontiguousarray(w.T).astype(np.float32 if fp32 else wdt))])
        if s.attention_bias and prefix.split(".")[-1] in ("q_proj", "k_proj", "v_proj", "o_proj"):
            y = g.op("Add", [y, writer.add(prefix + ".bias", weight(prefix + ".bias").astype(wdt))])
        return y

    i64 = lambda *v: g.const(np.array(v, dtype=np.int64), "shape")  # noqa: E731

    # -- inputs -----------------------------------------------------------
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]),
    ]
    outputs = [
        helper.make_tensor_value_info("risk_logits", TensorProto.FLOAT, ["batch", "seq", s.num_risk]),
        helper.make_tensor_value_info("category_logits", TensorProto.FLOAT, ["batch", "seq", s.num_category]),
        helper.make_tensor_value_info("prompt_risk_logits", TensorProto.FLOAT, ["batch", "seq", s.num_query_risk]),
        helper.make_tensor_value_info("prompt_category_logits", TensorProto.FLOAT, ["batch", "seq", s.num_query_category]),
    ]
    for i in range(s.num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", wtype, ["batch", kvh, "past", d]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", wtype, ["batch", kvh, "total", d]))

    # -- embeddings, rotary tables, mask ----------------------------------
    x = g.op("Gather", [writer.add("model.embed_tokens.weight", weight("model.embed_tokens.weight").astype(wdt)), "input_ids"], axis=0)
    inv_freq = 1.0 / (s.rope_theta ** (np.arange(0, d, 2, dtype=np.int64).astype(np.float32) / d))
    pos = g.op("Unsqueeze", [g.op("Cast", ["position_ids"], to=TensorProto.FLOAT), i64(-1)])
    freqs = g.op("Mul", [pos, g.const(inv_freq.astype(np.float32).reshape(1, 1, -1), "inv_freq")])
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    cos = to_w(g.op("Unsqueeze", [g.op("Cos", [emb]), i64(1)]))  # [B,1,S,D]
    sin = to_w(g.op("Unsqueeze", [g.op("Sin", [emb]), i64(1)]))

    zero, one = g.const(np.array(0, np.int64)), g.const(np.array(1, np.int64))
    total = g.op("Gather", [g.op("Shape", ["attention_mask"]), one], axis=0)  # scalars
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), one], axis=0)
    past = g.op("Sub", [total, seq])
    key_pos = g.op("Range", [zero, total, one])  # [T]
    query_pos = g.op("Unsqueeze", [g.op("Add", [g.op("Range", [zero, seq, one]), past]), i64(1)])  # [S,1]
    causal = g.op("LessOrEqual", [key_pos, query_pos])  # [S,T]
    real = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.BOOL), i64(1, 2, 3)])  # [B,1,1,1,T]
    allowed = g.op("And", [causal, real])  # [B,1,1,S,T]
    bias = g.op("Where", [allowed, g.const(np.array(0.0, np.float32)), g.const(np.array(MASK_VALUE, np.float32))])
    scale = g.const(np.array(d ** -0.5, np.float32))
    half = i64(d // 2, d // 2)

    def rope(t: str) -> str:
        a, b = g.op("Split", [t, half], axis=-1, outputs=2)
        rotated = g.op("Concat", [g.op("Neg", [b]), a], axis=-1)
        return g.op("Add", [g.op("Mul", [t, cos]), g.op("Mul", [rotated, sin])])

    # -- decoder layers ---------------------------------------------------
    for i in range(s.num_layers):
        p = f"model.layers.{i}."
        if progress:
            progress(f"layer {i + 1}/{s.num_layers}")
        h = rms(x, p + "input_layernorm.weight")
        q = g.op("Reshape", [linear(h, p + "self_attn.q_proj"), i64(0, 0, nh, d)])
        k = g.op("Reshape", [linear(h, p + "self_attn.k_proj"), i64(0, 0, kvh, d)])
        v = g.op("Reshape", [linear(h, p + "self_attn.v_proj"), i64(0, 0, kvh, d)])
        q = rope(g.op("Transpose", [rms(q, p + "self_attn.q_norm.weight")], perm=[0, 2, 1, 3]))  # [B,NH,S,D]
        k = rope(g.op("Transpose", [rms(k, p + "self_attn.k_norm.weight")], perm=[0, 2, 1, 3]))  # [B,KV,S,D]
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        k_all = g.op("Concat", [f"past_key_values.{i}.key", k], f"present.{i}.key", axis=2)
        v_all = g.op("Concat", [f"past_key_values.{i}.value", v], f"present.{i}.value", axis=2)
        q5 = g.op("Reshape", [q, i64(0, kvh, groups, -1, d)])  # query head h uses kv head h // groups
        k5t = g.op("Transpose", [g.op("Unsqueeze", [k_all, i64(2)])], perm=[0, 1, 2, 4, 3])
        scores = g.op("Add", [g.op("Mul", [to_f32(g.op("MatMul", [q5, k5t])), scale]), bias])
        probs = to_w(g.op("Softmax", [scores], axis=-1))
        ctx = g.op("MatMul", [probs, g.op("Unsqueeze", [v_all, i64(2)])])  # [B,KV,G,S,D]
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [ctx, i64(0, nh, -1, d)])], perm=[0, 2, 1, 3]), i64(0, 0, nh * d)])
        x = g.op("Add", [x, linear(ctx, p + "self_attn.o_proj")])
        h = rms(x, p + "post_attention_layernorm.weight")
        gate = linear(h, p + "mlp.gate_proj")
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), linear(h, p + "mlp.up_proj")])
        x = g.op("Add", [x, linear(act, p + "mlp.down_proj")])

    # -- heads (float32) ----------------------------------------------------
    x = rms(x, "model.norm.weight", fp32_out=True) if dtype == "fp16" else rms(x, "model.norm.weight")
    for prefix, risk_out, cat_out in (("", "risk_logits", "category_logits"), ("query_", "prompt_risk_logits", "prompt_category_logits")):
        r = linear(x, f"{prefix}risk_level_category_pre", fp32=True)
        r = rms(r, f"{prefix}risk_level_category_layernorm.weight", fp32_out=True)
        g.op("Identity", [linear(r, f"{prefix}risk_level_head", fp32=True)], risk_out)
        g.op("Identity", [linear(r, f"{prefix}category_head", fp32=True)], cat_out)

    writer.close()
    graph = helper.make_graph(g.nodes, "qwen3guard_stream", inputs, outputs, writer.initializers)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if int8 else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="guardkit.export")
    model.ir_version = min(model.ir_version, 9)
    model_path = out_dir / "model.onnx"
    if writer.bytes <= inline_limit:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, str(out_dir))
        onnx.save_model(model, str(model_path))
        os.remove(writer.path)
        return ["model.onnx"]
    onnx.save_model(model, str(model_path))
    return ["model.onnx", DATA_FILE]
