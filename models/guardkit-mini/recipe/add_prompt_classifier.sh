#!/usr/bin/env bash
# Add a prompt classifier to a bundle: copy the stream bundle, export the classifier checkpoint
# into it (4-bit, unsafe-logit offset baked in) and rewrite the manifest.  REPLY_OFFSET (0.7+):
# the classifier judges replies too (manifest prompt_model.reply_check with that offset, chosen
# by calibrate_reply.py); "none" (the default) for a classifier of prompts only (0.4-0.6).
#   bash models/guardkit-mini/recipe/add_prompt_classifier.sh STREAM_BUNDLE CLASSIFIER.pt OFFSET OUT_DIR [REPLY_OFFSET|none]
set -euo pipefail
SRC=${1:?usage: add_prompt_classifier.sh STREAM_BUNDLE CLASSIFIER.pt OFFSET OUT_DIR [REPLY_OFFSET|none]}
CKPT=${2:?}; OFFSET=${3:?}; OUT=${4:?}; REPLY=${5:-none}
R=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
if [ "$(cd "$SRC" && pwd)" != "$(cd "$OUT" && pwd)" ]; then cp "$SRC/model.onnx" "$SRC/tokenizer.json" "$OUT/"; fi
"$PY" "$R/prompt_classifier.py" export --ckpt "$CKPT" --bundle "$OUT" --unsafe-offset "$OFFSET"
if [ "$REPLY" = none ]; then
  "$PY" "$R/write_manifest.py" "$OUT" --no-reply-check
else
  "$PY" "$R/write_manifest.py" "$OUT" --reply-check-offset "$REPLY"
fi
