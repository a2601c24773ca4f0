"""Average the weights of several fine-tuned runs that share one initialisation
(a "model soup", Wortsman et al. 2022): usually a little better on held-out
data than any single run, at no inference cost.

0.8's prompt classifier is the uniform soup of nine classifiers fine-tuned from
all-MiniLM-L6-v2: pc5, pc6 (prompt classifiers), rc3 (0.7's classifier of prompts and
replies) and two short fine-tunes of each (opinion prompts; opinion and medicine prompts):
74.4% unsafe-prompt recall at the everyday/edgy caps against 61.3% for pc5 alone
(calibrate_prompt.py; MODEL_CARD.md).

Usage:  python soup.py OUT.pt RUN1.pt RUN2.pt [...]
Stream-model state dicts and classifier checkpoints ({"model": state dict, "args": ...}) both work.
"""
from __future__ import annotations

import sys

import torch


def main() -> None:
    out, paths = sys.argv[1], sys.argv[2:]
    if len(paths) < 2:
        raise SystemExit("usage: soup.py OUT.pt RUN1.pt RUN2.pt [...]")
    loaded = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    checkpoints = all(isinstance(x, dict) and "model" in x for x in loaded)
    sds = [x["model"] for x in loaded] if checkpoints else loaded
    soup = {k: sum(sd[k].float() for sd in sds) / len(sds) for k in sds[0]}
    torch.save(dict(model=soup, args=loaded[0].get("args", {}), step=0, soup_of=paths) if checkpoints else soup, out)
    print(f"averaged {len(paths)} runs -> {out}")


if __name__ == "__main__":
    main()
