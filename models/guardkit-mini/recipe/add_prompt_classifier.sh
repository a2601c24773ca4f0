#!/usr/bin/env bash
# Add classifiers to a bundle: copy the stream bundle, export the prompt classifier checkpoint into
# it (4-bit, int8 embeddings, unsafe-logit offset baked in) and rewrite the manifest.  The fifth
# argument says what judges replies (the reply check):
#   REPLY.pt:REPLY_OFFSET  a reply classifier of its own, exported as reply.onnx with that offset
#                          baked in (0.8+; the manifest's reply offset is 0)
#   a number X             the prompt classifier, at X on top of its own offset (0.7)
#   none (the default)     nothing: a classifier of prompts only (0.4-0.6)
#   bash models/guardkit-mini/recipe/add_prompt_classifier.sh STREAM_BUNDLE PROMPT.pt OFFSET OUT_DIR [REPLY]
set -euo pipefail
SRC=${1:?usage: add_prompt_classifier.sh STREAM_BUNDLE PROMPT.pt OFFSET OUT_DIR [REPLY.pt:OFFSET|X|none]}
CKPT=${2:?}; OFFSET=${3:?}; OUT=${4:?}; REPLY=${5:-none}
R=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
if [ "$(cd "$SRC" && pwd)" != "$(cd "$OUT" && pwd)" ]; then cp "$SRC/model.onnx" "$SRC/tokenizer.json" "$OUT/"; fi
rm -f "$OUT/reply.onnx"
"$PY" "$R/prompt_classifier.py" export --ckpt "$CKPT" --bundle "$OUT" --unsafe-offset "$OFFSET"
case "$REPLY" in
  none) "$PY" "$R/write_manifest.py" "$OUT" --no-reply-check ;;
  *.pt:*)
    "$PY" "$R/prompt_classifier.py" export --ckpt "${REPLY%:*}" --bundle "$OUT" --unsafe-offset "${REPLY##*:}" --file reply.onnx
    "$PY" "$R/write_manifest.py" "$OUT" --reply-check-offset 0 ;;
  *) "$PY" "$R/write_manifest.py" "$OUT" --reply-check-offset "$REPLY" ;;
esac
