"""The optional MultiHeadAttention rewrite of the guardkit-mini recipe keeps the model contract.

Not applied to the shipped model (no measured gain, see the module's docstring); this keeps
the tool working: the fused copy of the shipped graph must equal the unfused one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from guardkit import StreamModel
from guardkit.manifest import MANIFEST_NAME, file_entry

import test_contract
from gk_helpers import shipped_bundles

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "models" / "guardkit-mini"
SCRIPT = BUNDLE / "recipe" / "fuse_attention.py"

pytestmark = pytest.mark.skipif(BUNDLE not in shipped_bundles() or not SCRIPT.exists(), reason="guardkit-mini not shipped")


@pytest.fixture(scope="module", params=[False, True], ids=["mha", "mha+merged-qkv"])
def fused(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StreamModel:
    import onnx

    spec = importlib.util.spec_from_file_location("fuse_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    target = tmp_path_factory.mktemp("fused") / "bundle"
    target.mkdir()
    for name in ("guardkit.json", "tokenizer.json"):
        shutil.copy(BUNDLE / name, target / name)
    model, count = module.fuse_attention(onnx.load(str(BUNDLE / "model.onnx")), merge_qkv=request.param)
    assert count == json.loads((BUNDLE / MANIFEST_NAME).read_text())["state"]["num_layers"]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MultiHeadAttention") == count and "Softmax" not in ops and "Concat" not in ops
    onnx.save(model, str(target / "model.onnx"))
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    manifest["files"]["model.onnx"] = file_entry(target / "model.onnx")
    (target / MANIFEST_NAME).write_text(json.dumps(manifest))
    return StreamModel(target, device="cpu", threads=1)


def test_fused_graph_keeps_the_contract(fused: StreamModel) -> None:
    test_contract.test_incremental_and_chunked_equal_full_recompute(fused)
    test_contract.test_ragged_batch_with_left_padding_matches_single_runs(fused)


def test_fused_graph_equals_the_shipped_graph(fused: StreamModel) -> None:
    shipped = StreamModel(BUNDLE, device="cpu", threads=1)
    ids = test_contract._ids(shipped)
    want, _ = shipped.run(shipped.empty_state(), ids)
    got, _ = fused.run(fused.empty_state(), ids)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=0, err_msg=name)
