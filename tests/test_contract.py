"""The ONNX model contract: incremental and chunked scoring equal a full recompute.

Runs for the tiny test model and for every bundle shipped in models/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from guardkit import ModelLoadError, ProviderUnavailableError, StreamModel
from guardkit.manifest import MANIFEST_NAME
from gk_helpers import shipped_bundles

TEXT = (
    "sure here is a recipe for bread: mix the flour with water and salt, then bake it. "
    "how to build a bomb detonator is not something i can help with, sorry. thanks for asking about history!"
)


@pytest.fixture(params=["tiny", *[p.name for p in shipped_bundles()]])
def contract_model(request: pytest.FixtureRequest) -> StreamModel:
    if request.param == "tiny":
        path = request.getfixturevalue("tiny_bundle")
    else:
        path = next(p for p in shipped_bundles() if p.name == request.param)
    return StreamModel(path, device="cpu", threads=1)


def _ids(model: StreamModel) -> list[int]:
    ids = model.prompt_token_ids("can you help me with a recipe?") + model.response_prefix_ids()
    ids += model.tokenizer.encode(TEXT, add_special_tokens=False).ids
    return ids[: model.max_positions]


OUTPUTS = ("risk_logits", "category_logits", "prompt_risk_logits", "prompt_category_logits")


def test_incremental_and_chunked_equal_full_recompute(contract_model: StreamModel) -> None:
    model = contract_model
    ids = _ids(model)
    full, _ = model.run(model.empty_state(), ids)
    for chunk in (1, 3, 16):
        state = model.empty_state()
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in full}
        for begin in range(0, len(ids), chunk):
            logits, state = model.run(state, ids[begin : begin + chunk])
            for name, value in logits.items():
                pieces[name].append(value)
        assert state.length == len(ids)
        for name in full:
            stepped = np.concatenate(pieces[name], axis=0)
            np.testing.assert_allclose(stepped, full[name], atol=1e-4, rtol=0, err_msg=f"{name}, chunk={chunk}")
    # every prefix: a fresh full recompute of the prefix equals the first positions
    for cut in (1, 7, len(ids) // 2):
        prefix, _ = model.run(model.empty_state(), ids[:cut])
        np.testing.assert_allclose(prefix["risk_logits"], full["risk_logits"][:cut], atol=1e-4, rtol=0)


def test_ragged_batch_with_left_padding_matches_single_runs(contract_model: StreamModel) -> None:
    """attention_mask lets streams of different lengths share one call (the batching contract)."""
    model = contract_model
    ids = _ids(model)
    a, b = ids[:20], ids[:13]
    spec = model.manifest.state
    pad = len(a) - len(b)
    feeds = {
        "input_ids": np.array([a, [0] * pad + b], dtype=np.int64),
        "attention_mask": np.array([[1] * len(a), [0] * pad + [1] * len(b)], dtype=np.int64),
        "position_ids": np.array([list(range(len(a))), [0] * pad + list(range(len(b)))], dtype=np.int64),
    }
    dtype = np.float16 if spec.dtype == "float16" else np.float32
    for name in model.past_names:
        feeds[name] = np.zeros((2, spec.num_kv_heads, 0, spec.head_dim), dtype=dtype)
    batched = model.run_batch(feeds)
    single_a, _ = model.run(model.empty_state(), a)
    single_b, _ = model.run(model.empty_state(), b)
    np.testing.assert_allclose(batched["risk_logits"][0], single_a["risk_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(batched["risk_logits"][1, pad:], single_b["risk_logits"], atol=1e-4, rtol=0)


def test_manifest_labels_are_mapped_to_canonical_order(tiny_model: StreamModel) -> None:
    # the tiny model emits Qwen3Guard's order (safe, unsafe, controversial)
    ids = tiny_model.prompt_token_ids(None) + tiny_model.tokenizer.encode("bomb", add_special_tokens=False).ids
    out = tiny_model.step(tiny_model.empty_state(), ids)
    raw, _ = tiny_model.run(tiny_model.empty_state(), ids)
    assert np.argmax(raw["risk_logits"][-1]) == 1  # "unsafe" column in the model's order
    assert np.argmax(out.risk[-1]) == 2  # "unsafe" in canonical order
    np.testing.assert_allclose(out.risk.sum(axis=1), 1.0, atol=1e-6)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def test_corrupt_model_file_fails_sha256_naming_the_file(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (bundle / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="model.onnx.*sha256"):
        StreamModel(bundle)


def test_missing_file_and_missing_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        StreamModel(bundle)
    with pytest.raises(ModelLoadError, match="not found"):
        StreamModel(tmp_path / "nowhere")
    (bundle / MANIFEST_NAME).unlink()
    with pytest.raises(ModelLoadError, match=MANIFEST_NAME):
        StreamModel(bundle)


def test_graph_without_contract_tensors_is_rejected(tiny_bundle: Path, tmp_path: Path) -> None:
    import onnx

    from guardkit.manifest import file_entry

    bundle = _copy(tiny_bundle, tmp_path)
    model = onnx.load(str(bundle / "model.onnx"))
    kept = [o for o in model.graph.output if o.name != "risk_logits"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    onnx.save(model, str(bundle / "model.onnx"))
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["files"]["model.onnx"] = file_entry(bundle / "model.onnx")
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"model.onnx.*risk_logits"):
        StreamModel(bundle)


def test_manifest_with_non_canonical_labels_is_rejected(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["categories"][0] = "weapons"
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="categories"):
        StreamModel(bundle)


def test_explicit_gpu_provider_fails_loudly_when_missing(tiny_bundle: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ProviderUnavailableError, match="cuda"):
        StreamModel(tiny_bundle, device="cuda")
    with pytest.raises(ProviderUnavailableError, match="tensorrt"):
        StreamModel(tiny_bundle, device="tensorrt")
    with pytest.raises(ValueError, match="device"):
        StreamModel(tiny_bundle, device="tpu")
    assert StreamModel(tiny_bundle, device="auto").providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("bundle", shipped_bundles(), ids=lambda p: p.name)
def test_a_shipped_bundle_fits_the_wheel_budget_and_lists_every_graph(bundle: Path) -> None:
    """Each shipped bundle stays within 80 MB (issue 13's packaging limit) and the wheel includes every file its manifest lists."""
    manifest = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert sum(entry["bytes"] for entry in manifest["files"].values()) <= 80_000_000
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    for name in manifest["files"]:
        assert f'"models/{bundle.name}/{name}"' in pyproject, f"pyproject.toml's wheel force-include lacks {name}"
