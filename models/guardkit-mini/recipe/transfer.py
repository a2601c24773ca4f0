"""Move a trained state dict off a GPU machine whose file transfer caps each file's size.

    python transfer.py split work/run_final.pt OUTDIR [--mb 15]   # fp16 copy in OUTDIR/weights.part-NN
    python transfer.py join OUTDIR work/gpu_final.pt               # back to one fp32 state dict

The copy is stored as fp16 (the shipped model keeps fp16 word embeddings and 4-bit
weights, so the rounding is far below what export does anyway).
"""
from __future__ import annotations

import argparse
import glob
import io
import os

import torch


def split(src: str, outdir: str, mb: float) -> None:
    sd = torch.load(src, map_location="cpu", weights_only=False)
    buf = io.BytesIO()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, buf)
    data, size = buf.getvalue(), int(mb * 2**20)
    os.makedirs(outdir, exist_ok=True)
    for n, start in enumerate(range(0, len(data), size)):
        with open(os.path.join(outdir, f"weights.part-{n:02d}"), "wb") as f:
            f.write(data[start:start + size])
    print(f"{src}: {len(data) / 2**20:.1f} MB in {n + 1} parts")


def join(indir: str, dst: str) -> None:
    parts = sorted(glob.glob(os.path.join(indir, "weights.part-*")))
    data = b"".join(open(p, "rb").read() for p in parts)
    sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, dst)
    print(f"{len(parts)} parts -> {dst}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("src")
    s.add_argument("outdir")
    s.add_argument("--mb", type=float, default=15.0)
    j = sub.add_parser("join")
    j.add_argument("indir")
    j.add_argument("dst")
    args = ap.parse_args()
    split(args.src, args.outdir, args.mb) if args.cmd == "split" else join(args.indir, args.dst)


if __name__ == "__main__":
    main()
