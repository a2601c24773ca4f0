"""Untrusted model bundles: containment, every read file hashed, the output contract checked at load time."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from guardkit import Guard, ModelLoadError, StreamModel
from guardkit._onnx_refs import external_data_locations
from guardkit.cli import main
from guardkit.manifest import MANIFEST_NAME, file_entry


def _copy(bundle: Path, tmp_path: Path, name: str = "bundle") -> Path:
    target = tmp_path / name
    shutil.copytree(bundle, target)
    return target


def _rewrite_manifest(bundle: Path, **changes: object) -> dict:
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest.update(changes)
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    return manifest


def _relist(bundle: Path, *names: str) -> None:
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    for name in names:
        manifest["files"][name] = file_entry(bundle / name)
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))


# -- item 10: containment -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../outside.json", "/etc/passwd", "sub/../../outside.json", "./tokenizer.json", "a\\..\\b", "C:/x"])
def test_manifest_paths_must_stay_inside_the_bundle(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (tmp_path / "outside.json").write_text((bundle / "tokenizer.json").read_text())
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["files"][name] = file_entry(bundle / "tokenizer.json")
    manifest["tokenizer_file"] = name
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="inside the bundle") as info:
        StreamModel(bundle)
    assert "\n" not in str(info.value)


def test_symlink_out_of_the_bundle_is_refused_without_revealing_the_target(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("x" * 1234)
    os.symlink(secret, bundle / "notes.txt")
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["files"]["notes.txt"] = {"sha256": "0" * 64, "bytes": 1}
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="outside the bundle") as info:
        StreamModel(bundle)
    assert "1234" not in str(info.value) and "secret" not in str(info.value)
    # also with verify=False (no hashing): containment is still checked
    with pytest.raises(ModelLoadError, match="outside the bundle"):
        StreamModel(bundle, verify=False)


def test_symlink_inside_the_bundle_is_fine(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "sub").mkdir()
    shutil.move(bundle / "tokenizer.json", bundle / "sub" / "tokenizer.json")
    os.symlink(bundle / "sub" / "tokenizer.json", bundle / "tokenizer.json")
    StreamModel(bundle)


def test_a_listed_directory_is_not_a_file(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "extra").mkdir()
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["files"]["extra"] = {"sha256": "0" * 64, "bytes": 0}
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="extra.*not a regular file"):
        StreamModel(bundle)


# -- item 11: every file the runtime reads is listed and hashed ------------------------------------
def _externalise(bundle: Path, location: str = "weights.bin") -> None:
    import onnx

    model = onnx.load(str(bundle / "model.onnx"))
    onnx.save_model(model, str(bundle / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=256)


def test_unlisted_external_data_file_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _externalise(bundle)
    _relist(bundle, "model.onnx")  # the model file verifies, the weights file is not listed
    with pytest.raises(ModelLoadError, match="weights.bin.*does not list"):
        StreamModel(bundle)
    _relist(bundle, "weights.bin")
    model = StreamModel(bundle)  # listed and hashed: loads
    assert model.step(model.empty_state(), [5]).risk.shape == (1, 3)
    data = bytearray((bundle / "weights.bin").read_bytes())
    data[-1] ^= 0x01
    (bundle / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="weights.bin.*sha256"):
        StreamModel(bundle)


@pytest.mark.parametrize("location", ["../weights.bin", "/tmp/weights.bin", "*/_ORT_MEM_ADDR_/*"])
def test_external_data_outside_the_bundle_is_refused(tiny_bundle: Path, tmp_path: Path, location: str) -> None:
    import onnx

    bundle = _copy(tiny_bundle, tmp_path)
    _externalise(bundle)
    model = onnx.load(str(bundle / "model.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(model, str(bundle / "model.onnx"))
    _relist(bundle, "model.onnx", "weights.bin")
    with pytest.raises(ModelLoadError, match="external data"):
        StreamModel(bundle)


def test_external_data_parser_agrees_with_onnx(tiny_bundle: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper
    from onnx.external_data_helper import _get_all_tensors, set_external_data

    bundle = _copy(tiny_bundle, tmp_path)
    assert external_data_locations((bundle / "model.onnx").read_bytes()) == []
    model = onnx.load(str(bundle / "model.onnx"))
    # a tensor hidden in a subgraph attribute (If node) and in a Constant node
    const = numpy_helper.from_array(np.ones(3, dtype=np.float32), "c")
    set_external_data(const, "in_constant.bin")
    const.data_location = onnx.TensorProto.EXTERNAL
    sub_tensor = numpy_helper.from_array(np.ones(2, dtype=np.float32), "s")
    set_external_data(sub_tensor, "sub/in_subgraph.bin")
    sub_tensor.data_location = onnx.TensorProto.EXTERNAL
    sub = helper.make_graph([helper.make_node("Constant", [], ["sub_out"], value=sub_tensor)], "sub", [],
                            [helper.make_tensor_value_info("sub_out", onnx.TensorProto.FLOAT, [2])])
    model.graph.node.append(helper.make_node("Constant", [], ["unused_c"], value=const))
    model.graph.node.append(helper.make_node("If", ["cond"], ["unused_if"], then_branch=sub, else_branch=sub))
    expected = {t.external_data[0].value for t in _get_all_tensors(model) if t.external_data}
    assert set(external_data_locations(model.SerializeToString())) == expected == {"in_constant.bin", "sub/in_subgraph.bin"}


# -- item 12: output shapes and dtypes checked at load time ----------------------------------------
def _edit_graph(bundle: Path, edit) -> None:  # type: ignore[no-untyped-def]
    import onnx

    model = onnx.load(str(bundle / "model.onnx"))
    edit(model)
    onnx.save(model, str(bundle / "model.onnx"))
    _relist(bundle, "model.onnx")


def _slice_risk_to_two_columns(model, declared) -> None:  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper, numpy_helper

    for node in model.graph.node:
        if list(node.output) == ["risk_logits"]:
            node.output[0] = "risk_full"
    model.graph.initializer.extend([numpy_helper.from_array(np.array(v, dtype=np.int64), n)
                                    for n, v in (("sl_start", [0]), ("sl_end", [2]), ("sl_axis", [2]))])
    model.graph.node.append(helper.make_node("Slice", ["risk_full", "sl_start", "sl_end", "sl_axis"], ["risk_logits"]))
    out = next(o for o in model.graph.output if o.name == "risk_logits")
    out.CopyFrom(helper.make_tensor_value_info("risk_logits", TensorProto.FLOAT, ["batch", "seq", declared]))


@pytest.mark.parametrize("declared", ["k", 2])
def test_risk_head_with_two_columns_fails_at_load(tiny_bundle: Path, tmp_path: Path, declared: object) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_graph(bundle, lambda m: _slice_risk_to_two_columns(m, declared))
    with pytest.raises(ModelLoadError, match=r"risk_logits.*(2|\?).*3|risk_logits.*three") as info:
        StreamModel(bundle)
    assert "\n" not in str(info.value)
    # ... and so a fail-open policy can never be handed a model that passes everything
    assert main(["check", "hello", "--model", str(bundle)]) == 2


def test_category_head_width_must_match_the_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["categories"] = manifest["categories"][:-1]
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="category_logits.*categories"):
        StreamModel(bundle)


def test_wrong_output_dtype_fails_at_load(tiny_bundle: Path, tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    def to_double(model) -> None:  # type: ignore[no-untyped-def]
        for node in model.graph.node:
            if list(node.output) == ["category_logits"]:
                node.output[0] = "cat_f"
        model.graph.node.append(helper.make_node("Cast", ["cat_f"], ["category_logits"], to=TensorProto.DOUBLE))
        out = next(o for o in model.graph.output if o.name == "category_logits")
        out.type.tensor_type.elem_type = TensorProto.DOUBLE

    bundle = _copy(tiny_bundle, tmp_path)
    _edit_graph(bundle, to_double)
    with pytest.raises(ModelLoadError, match=r"category_logits is tensor\(double\)"):
        StreamModel(bundle)


def test_state_head_dim_must_match_the_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["state"]["head_dim"] += 1
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="head_dim"):
        Guard(StreamModel(bundle))


# -- item 16 (manifest side): every bad manifest is one ModelLoadError line, CLI exit 2 ------------
def _nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("case", ["not_utf8", "nested", "directory", "huge", "bad_json", "not_a_mapping"])
def test_bad_manifest_is_one_line_and_exit_2(tiny_bundle: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    path = bundle / MANIFEST_NAME
    if case == "not_utf8":
        path.write_bytes(b'{"name": "\xff\xfe"}')
    elif case == "nested":
        path.write_text(_nested_json(100_000))
    elif case == "directory":
        path.unlink()
        path.mkdir()
    elif case == "huge":
        path.write_text(json.dumps({"description": "x" * (2 << 20)}))
    elif case == "bad_json":
        path.write_text("{")
    else:
        path.write_text("[1, 2]")
    with pytest.raises(ModelLoadError) as info:
        StreamModel(bundle)
    assert "\n" not in str(info.value) and MANIFEST_NAME in str(info.value)
    assert main(["check", "hello", "--model", str(bundle)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_garbage_model_file_is_one_line(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    for garbage in (b"", b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f"):
        (bundle / "model.onnx").write_bytes(garbage)
        _relist(bundle, "model.onnx")
        with pytest.raises(ModelLoadError, match="model.onnx") as info:
            StreamModel(bundle)
        assert "\n" not in str(info.value)
