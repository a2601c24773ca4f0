#!/usr/bin/env bash
# Add a prompt classifier to a bundle: copy the stream bundle, export the classifier checkpoint
# into it (4-bit, unsafe-logit offset baked in) and rewrite the manifest.
#   bash models/guardkit-mini/recipe/add_prompt_classifier.sh STREAM_BUNDLE CLASSIFIER.pt OFFSET OUT_DIR
set -euo pipefail
SRC=${1:?usage: add_prompt_classifier.sh STREAM_BUNDLE CLASSIFIER.pt OFFSET OUT_DIR}
CKPT=${2:?}; OFFSET=${3:?}; OUT=${4:?}
R=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
cp "$SRC/model.onnx" "$SRC/tokenizer.json" "$OUT/"
"$PY" "$R/prompt_classifier.py" export --ckpt "$CKPT" --bundle "$OUT" --unsafe-offset "$OFFSET"
"$PY" "$R/write_manifest.py" "$OUT"
