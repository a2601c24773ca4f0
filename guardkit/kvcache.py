"""A KV cache written in place: preallocated buffers and a graph that reads them without copying.

A contract graph computes ``present = Concat(past, new)`` in every layer, so
every step copies the whole cache (read it, write it again one position
longer), and attention then reads it once more. At long contexts and in
batches that copy is a large part of a step (about a fifth at 32 streams of
128 tokens on the CPU).

:func:`split_attention` rewrites such a graph (when its attention has the
plain pattern: ``Concat`` -> ``Transpose(0,1,3,2)`` -> ``MatMul`` for keys,
``Concat`` -> ``MatMul`` for values) so that attention reads the past and the
new tokens as two operands: scores ``[Q.Kpast^T, Q.Knew^T]`` and output
``P[:, :past].Vpast + P[:, past:].Vnew`` (the same sums, so the logits agree
to float rounding), and the ``present.*`` outputs hold only the new tokens.

The past fed in is then a :class:`KVBuffer`: one preallocated array per
layer and kind, ``[rows, heads, capacity, head_dim]``, in which row ``r``
holds a stream's positions ``[0, filled[r])``; the rest is masked out by
``attention_mask`` (the contract's own way to share a batch between ragged
streams). After a step the new tokens' keys and values are written into
the row in place. A state is a view of its row, so it stays valid: a step
from a state that is no longer its row's newest (two continuations of one
state, a retried step) or that does not fit in the capacity claims a fresh
buffer and copies its positions once (see :meth:`KVBuffer.claim`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["KVBuffer", "capacity_for", "split_attention"]

#: Buffers grow in steps of this many positions: at most this many masked positions are read per step,
#: and a stream's cache is copied once per this many tokens instead of on every step.
GROWTH = 64


def capacity_for(needed: int, max_positions: int) -> int:
    """The capacity of a new buffer that must hold ``needed`` positions."""
    return max(needed, min(max_positions, -(-needed // GROWTH) * GROWTH))


class KVBuffer:
    """Preallocated KV storage for ``rows`` streams; ``filled[r]`` positions of row ``r`` are written.

    ``arrays`` is one ``[rows, heads, capacity, head_dim]`` array per past tensor
    (the model's ``past_names`` order). Rows are claimed before a step writes
    them, under a lock, so two steps never write the same positions.
    """

    __slots__ = ("arrays", "filled", "_lock", "__weakref__")

    def __init__(self, rows: int, capacity: int, count: int, heads: int, head_dim: int, dtype: type) -> None:
        self.arrays = tuple(np.zeros((rows, heads, capacity, head_dim), dtype=dtype) for _ in range(count))
        self.filled = [0] * rows
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return int(self.arrays[0].shape[2])

    @property
    def rows(self) -> int:
        return int(self.arrays[0].shape[0])

    def claim(self, rows: Sequence[int], lengths: Sequence[int], adds: Sequence[int]) -> bool:
        """Claim positions ``[lengths[i], lengths[i] + adds[i])`` of each row, all or none.

        A row can be extended only from its newest state (``filled == length``),
        and only within the capacity; otherwise the caller copies into a fresh buffer.
        """
        cap = self.capacity
        with self._lock:
            if any(self.filled[r] != n or n + k > cap for r, n, k in zip(rows, lengths, adds)):
                return False
            for r, n, k in zip(rows, lengths, adds):
                self.filled[r] = n + k
            return True


def split_attention(model_path: Path, num_layers: int) -> bytes | None:
    """The contract graph at ``model_path`` with attention split over past and new (see the module docstring).

    ``None`` when the ``onnx`` package is missing, the graph keeps weights in
    external data, or any layer's attention is not the plain pattern: the
    caller then runs the graph as it is.
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        return None
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not loadable by this onnx: run the graph as it is
        return None
    if any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer):
        return None
    g = model.graph
    producer = {out: node for node in g.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed: list[Any] = []
    added: list[Any] = []
    for i in range(num_layers):
        match = _match_layer(i, producer, consumers)
        if match is None:
            return None
        concat_k, concat_v, transpose, scores, output = match
        new_k, new_v = concat_k.input[1], concat_v.input[1]
        past_k, past_v = concat_k.input[0], concat_v.input[0]
        q, probs = scores.input[0], output.input[0]
        p = f"guardkit_kvbuffer/{i}/"
        added += [
            helper.make_node("Transpose", [past_k], [p + "kt_past"], perm=[0, 1, 3, 2]),
            helper.make_node("Transpose", [new_k], [p + "kt_new"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", [q, p + "kt_past"], [p + "s_past"]),
            helper.make_node("MatMul", [q, p + "kt_new"], [p + "s_new"]),
            helper.make_node("Concat", [p + "s_past", p + "s_new"], [scores.output[0]], axis=-1),
            helper.make_node("Shape", [past_v], [p + "past_len"], start=2, end=3),
            helper.make_node("Slice", [probs, "guardkit_kvbuffer/zero", p + "past_len", "guardkit_kvbuffer/last"], [p + "p_past"]),
            helper.make_node("Slice", [probs, p + "past_len", "guardkit_kvbuffer/end", "guardkit_kvbuffer/last"], [p + "p_new"]),
            helper.make_node("MatMul", [p + "p_past", past_v], [p + "o_past"]),
            helper.make_node("MatMul", [p + "p_new", new_v], [p + "o_new"]),
            helper.make_node("Add", [p + "o_past", p + "o_new"], [output.output[0]]),
            helper.make_node("Identity", [new_k], [concat_k.output[0]]),
            helper.make_node("Identity", [new_v], [concat_v.output[0]]),
        ]
        removed += [concat_k, concat_v, transpose, scores, output]
    for name, value in (("zero", 0), ("last", -1), ("end", 2**62)):
        g.initializer.append(helper.make_tensor(f"guardkit_kvbuffer/{name}", TensorProto.INT64, [1], [value]))
    gone = {id(node) for node in removed}
    nodes = _topological([n for n in g.node if id(n) not in gone] + added, g)
    if nodes is None:
        return None
    del g.node[:]
    g.node.extend(nodes)
    for out in g.output:  # present.* now hold the new tokens only: their sequence dim is free
        if out.name.startswith("present.") and out.type.tensor_type.shape.dim:
            out.type.tensor_type.shape.dim[2].ClearField("dim_value")
            out.type.tensor_type.shape.dim[2].dim_param = "new_sequence_length"
    return model.SerializeToString()


def _match_layer(i: int, producer: dict[str, Any], consumers: dict[str, list[Any]]) -> tuple[Any, ...] | None:
    """Layer ``i``'s (concat_k, concat_v, transpose, scores matmul, output matmul), or None if not the plain pattern."""
    concat_k, concat_v = producer.get(f"present.{i}.key"), producer.get(f"present.{i}.value")
    for concat, past in ((concat_k, f"past_key_values.{i}.key"), (concat_v, f"past_key_values.{i}.value")):
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 2 or concat.input[0] != past:
            return None
        if [a.i for a in concat.attribute if a.name == "axis"] not in ([2], [-2]):
            return None
    after_k, after_v = consumers.get(concat_k.output[0], []), consumers.get(concat_v.output[0], [])
    if len(after_k) != 1 or after_k[0].op_type != "Transpose" or len(after_v) != 1 or after_v[0].op_type != "MatMul":
        return None
    transpose, output = after_k[0], after_v[0]
    perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"]
    if perm != [[0, 1, 3, 2]] or output.input[1] != concat_v.output[0]:
        return None
    after_t = consumers.get(transpose.output[0], [])
    if len(after_t) != 1 or after_t[0].op_type != "MatMul" or after_t[0].input[1] != transpose.output[0]:
        return None
    return concat_k, concat_v, transpose, after_t[0], output


def _topological(nodes: list[Any], graph: Any) -> list[Any] | None:
    """``nodes`` in an order where every input is produced first (ONNX requires it)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered: list[Any] = []
    pending = nodes
    while pending:
        later = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                later.append(node)
        if len(later) == len(pending):
            return None  # a cycle or a missing input: leave the graph alone
        pending = later
    return ordered
