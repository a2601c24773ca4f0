"""The external-data files an ONNX model file makes ONNX Runtime read, found without the ``onnx`` package.

A tensor stored outside the model file names its file in ``external_data``
(``location``). Such tensors can sit anywhere a ``TensorProto`` can: graph
initializers, sparse initializers, ``Constant``-style node attributes,
subgraphs of control-flow nodes, local functions and training graphs. This
module walks the protobuf wire format of exactly those messages (field numbers
from ``onnx.proto``) and returns every ``location`` it finds, so the bundle
loader can require each one to be listed and hashed in the manifest.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OnnxParseError", "external_data_locations"]

_MAX_DEPTH = 64  # nested subgraphs; ONNX Runtime itself rejects far less


class OnnxParseError(ValueError):
    """The bytes are not a well-formed ONNX protobuf."""


# message kind -> {field number: message kind} for the fields that can lead to a TensorProto
_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _FUNCTION, _TRAINING, _ENTRY = range(9)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _FUNCTION: {7: _NODE, 11: _ATTR},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _TENSOR: {13: _ENTRY},
    _ENTRY: {},
}


def _varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxParseError("truncated or malformed varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview, start: int, end: int):  # type: ignore[no-untyped-def]
    """Yield (field number, wire type, value or (start, end) of a length-delimited payload)."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos, end)
            yield number, wire, value
        elif wire == 1:
            pos += 8
            yield number, wire, None
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise OnnxParseError("a length-delimited field runs past its message")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, None
        else:
            raise OnnxParseError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise OnnxParseError("a field runs past its message")


def external_data_locations(model: bytes | memoryview | Any) -> list[str]:
    """Every external-data ``location`` named in an ONNX model file, without repeats."""
    with memoryview(model) as data:  # released on return, so a caller's mmap can close
        return _walk(data)


def _walk(data: memoryview) -> list[str]:
    found: dict[str, None] = {}
    # iterative walk (no recursion limit to trip over): (kind, start, end, depth)
    todo: list[tuple[int, int, int, int]] = [(_MODEL, 0, len(data), 0)]
    while todo:
        kind, start, end, depth = todo.pop()
        if depth > _MAX_DEPTH:
            raise OnnxParseError(f"messages nested deeper than {_MAX_DEPTH}")
        children = _CHILDREN[kind]
        if kind == _ENTRY:
            key = value = None
            for number, wire, payload in _fields(data, start, end):
                if wire == 2 and number in (1, 2):
                    text = bytes(data[payload[0] : payload[1]]).decode("utf-8", errors="replace")
                    key, value = (text, value) if number == 1 else (key, text)
            if key == "location" and value is not None:
                found[value] = None
            continue
        for number, wire, payload in _fields(data, start, end):
            child = children.get(number)
            if child is not None and wire == 2:
                todo.append((child, payload[0], payload[1], depth + 1))
    return list(found)
