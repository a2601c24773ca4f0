"""Choose the prompt classifier's unsafe-logit offset on the dev suite, through the product path.

The exported prompt.onnx of BUNDLE is run as ``Guard.check_prompt`` runs it (the
bundle's rendering and windows, ONNX Runtime, 4-bit weights) on the dev suite's unseen
prompt groups, once.  An offset b added to the unsafe logit turns p(unsafe) into
p e^b / (p e^b + 1 - p), so every offset is replayed from that one pass; the default
policy blocks a prompt at p(unsafe) >= 0.5.  The choice: the highest unsafe-prompt recall
with everyday-prompt FPR <= --max-everyday and edgy-benign FPR <= --max-edgy.

The chosen offset is relative to the one baked into BUNDLE's prompt.onnx: export the
classifier again with (baked + chosen), e.g. via add_prompt_classifier.sh.

Usage (from models/guardkit-mini):
    python recipe/calibrate_prompt.py --bundle work/cand-08
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dev_suite  # noqa: E402
import unsafe_prompt_kinds  # noqa: E402

GROUPS = ("prompt.everyday", "prompt.edgy", "prompt.unsafe", "seen.prompt.unsafe.strongreject")


def worst_p_unsafe(model, texts: list[str]) -> np.ndarray:
    """p(unsafe) of each prompt as check_prompt reads it: the worst of its windows."""
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        scored = model.classify_prompt([model.prompt_token_ids(text)])
        out[i] = max(float(risk[2]) for risk, _ in scored)  # canonical order: safe, controversial, unsafe
    return out


def shifted(p: np.ndarray, offset: float) -> np.ndarray:
    odds = p * np.exp(offset)
    return odds / (odds + 1.0 - p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--max-everyday", type=float, default=0.02)
    ap.add_argument("--max-edgy", type=float, default=0.10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from guardkit import StreamModel
    model = StreamModel(args.bundle, threads=args.threads)
    items, _ = dev_suite.drop_overlap(dev_suite.build())
    texts = {g: [x["prompt"] for x in items if x["group"] == g] for g in GROUPS}
    kinds = np.array([unsafe_prompt_kinds.kind(t) for t in texts["prompt.unsafe"]])
    p = {g: worst_p_unsafe(model, t) for g, t in texts.items()}
    best = None
    print("offset  everyday  edgy    unsafe  (harmful requests) (all but medical self-care)  StrongREJECT (seen by 0.2)")
    for offset in np.round(np.arange(-3.0, 2.001, 0.125), 3):
        rate = {g: float(np.mean(shifted(v, offset) >= 0.5)) for g, v in p.items()}
        refused = shifted(p["prompt.unsafe"], offset) >= 0.5
        harmful = float(np.mean(refused[kinds == "harmful request"]))
        not_medical = float(np.mean(refused[kinds != "medical self-care"]))
        ok = rate["prompt.everyday"] <= args.max_everyday and rate["prompt.edgy"] <= args.max_edgy
        print(f"{offset:+6.3f}  {rate['prompt.everyday']:7.1%}  {rate['prompt.edgy']:6.1%}  {rate['prompt.unsafe']:6.1%}  ({harmful:6.1%})"
              f"            ({not_medical:6.1%})                 {rate['seen.prompt.unsafe.strongreject']:6.1%}{'  ok' if ok else ''}")
        if ok and (best is None or rate["prompt.unsafe"] > best[1]):
            best = (offset, rate["prompt.unsafe"])
    if best is None:
        raise SystemExit("no offset meets the caps")
    print(f"chosen: {best[0]:+.3f} on top of the baked offset (unsafe-prompt recall {best[1]:.1%})")


if __name__ == "__main__":
    main()
