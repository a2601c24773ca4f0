#!/usr/bin/env bash
# Turn a training checkpoint into a guardkit bundle: export (fp32, kept in work/), 4-bit
# weight-only quantisation, tokenizer, manifest.  Calibration is a separate step
# (calibrate_suite.py), which patches the bundle's model.onnx; re-run write_manifest.py after it.
#   bash models/guardkit-mini/recipe/make_bundle.sh CKPT.pt OUT_DIR
set -euo pipefail
CKPT=${1:?usage: make_bundle.sh CKPT OUT_DIR}
OUT=${2:?usage: make_bundle.sh CKPT OUT_DIR}
R=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
cd "$R"
"$PY" export.py --ckpt "$CKPT" --out "$OUT/model.onnx" --fp32-out "${OUT%/}.fp32.onnx"
cp "$R/../tokenizer.json" "$OUT/tokenizer.json"
"$PY" write_manifest.py "$OUT"
