"""Average the weights of several fine-tuned runs that share one initialisation
(a uniform "model soup", Wortsman et al. 2022): usually a little better on held-out
data than any single run, at no inference cost.

Usage:  python soup.py OUT.pt RUN1_final.pt RUN2_final.pt [...]
"""
from __future__ import annotations

import sys

import torch


def main() -> None:
    out, paths = sys.argv[1], sys.argv[2:]
    if len(paths) < 2:
        raise SystemExit("usage: soup.py OUT.pt RUN1.pt RUN2.pt [...]")
    sds = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    soup = {k: sum(sd[k].float() for sd in sds) / len(sds) for k in sds[0]}
    torch.save(soup, out)
    print(f"averaged {len(paths)} runs -> {out}")


if __name__ == "__main__":
    main()
