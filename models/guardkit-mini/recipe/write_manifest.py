"""Write models/guardkit-mini/guardkit.json (sha256 + bytes of the shipped files).

Usage:  python models/guardkit-mini/recipe/write_manifest.py [BUNDLE_DIR] [--reply-check-offset X | --no-reply-check]
        (default: models/guardkit-mini, the shipped reply offset)

A bundle with prompt.onnx gets a ``prompt_model``; unless ``--no-reply-check``, its manifest
also declares replies judged (``reply_check``) with an unsafe-logit offset added on top of the
offset baked into the graph.  With reply.onnx in the bundle (0.8+) replies get that graph of
their own (``reply_check.file``; its offset is baked in, so the manifest's is 0); without it
the prompt classifier judges replies too, at the offset calibrate_reply.py chose (0.7).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import CATEGORIES, HEAD_DIM, HEADS, LAYERS, MAX_POS, PROMPT_CATEGORIES, RISK_LABELS  # noqa: E402

BUNDLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = "0.8.0"
PROMPT_MODEL = "prompt.onnx"
PROMPT_MAX_TOKENS = 128  # prompt_classifier.py's --max-len
REPLY_MODEL = "reply.onnx"
REPLY_CHECK_OFFSET = 0.0  # 0.8: reply.onnx has its offset baked in (0.7 shared prompt.onnx: +0.25 on its -1.25)


def file_entry(bundle, name):
    p = os.path.join(bundle, name)
    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return {"sha256": h, "bytes": os.path.getsize(p)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default=BUNDLE)
    ap.add_argument("--reply-check-offset", type=float, default=REPLY_CHECK_OFFSET)
    ap.add_argument("--no-reply-check", action="store_true", help="the classifier judges prompts only (0.6 and earlier)")
    args = ap.parse_args()
    bundle = args.bundle
    manifest = {
        "format_version": 1,
        "name": "guardkit-mini",
        "version": VERSION,
        "license": "Apache-2.0",
        "description": "Causal all-MiniLM-L6-v2 stream guard: per-token response risk + categories, prompt risk at [SEP] (English).",
        "model_file": "model.onnx",
        "tokenizer_file": "tokenizer.json",
        "files": {"model.onnx": file_entry(bundle, "model.onnx"), "tokenizer.json": file_entry(bundle, "tokenizer.json")},
        "risk_labels": RISK_LABELS,
        "categories": CATEGORIES,
        "prompt_risk_labels": RISK_LABELS,
        "prompt_categories": PROMPT_CATEGORIES,
        "max_positions": MAX_POS,
        "state": {"num_layers": LAYERS, "num_kv_heads": HEADS, "head_dim": HEAD_DIM, "dtype": "float32"},
        "template": {"prompt": "[CLS] {prompt} [SEP]", "response_prefix": ""},
    }
    if os.path.exists(os.path.join(bundle, PROMPT_MODEL)):  # the bidirectional prompt classifier (prompt_classifier.py)
        manifest["files"][PROMPT_MODEL] = file_entry(bundle, PROMPT_MODEL)
        manifest["prompt_model"] = {"file": PROMPT_MODEL, "max_tokens": PROMPT_MAX_TOKENS, "risk_labels": RISK_LABELS,
                                    "categories": PROMPT_CATEGORIES}
        judged = "prompts" if args.no_reply_check else "prompts and replies so far"
        if not args.no_reply_check:
            manifest["prompt_model"]["reply_check"] = {"unsafe_logit_offset": args.reply_check_offset}
        if not args.no_reply_check and os.path.exists(os.path.join(bundle, REPLY_MODEL)):
            manifest["files"][REPLY_MODEL] = file_entry(bundle, REPLY_MODEL)
            manifest["prompt_model"]["reply_check"]["file"] = REPLY_MODEL
            judged = "prompts and another of replies so far"
        manifest["description"] = ("Causal all-MiniLM-L6-v2 stream guard (per-token response risk + categories) and a "
                                   f"bidirectional all-MiniLM-L6-v2 classifier of {judged} (English).")
    with open(os.path.join(bundle, "guardkit.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest["files"], indent=1))


if __name__ == "__main__":
    main()
