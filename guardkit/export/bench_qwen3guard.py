"""Per-token latency of Qwen3Guard-Stream at its real shapes: KV-cached steps vs the stock re-prefill.

Builds the exported graph (the same one ``guardkit export qwen3guard-stream``
writes) from random weights at the real 0.6B / 4B / 8B shapes (latency does
not depend on the weights' values), then measures, at batch 1, after a
prefilled context:

- ``step``: one new token per call with the KV cache (guardkit's worst case);
- ``chunk16``: 16 new tokens per call with the KV cache, per token;
- ``reprefill``: the whole sequence re-run for every new token, without any
  cache, as the stock ``stream_generate`` does (one call per token).

Run (it needs numpy, onnx and onnxruntime only; several GB of RAM and disk)::

    python -m guardkit.export.bench_qwen3guard --variants 0.6b:fp32,0.6b:int8,4b:int8 --out bench.txt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from guardkit.export.onnx_graph import GraphSpec, build_onnx

__all__ = ["SHAPES", "main", "spec_for"]

# From the published config.json files (Qwen3Guard-Stream-0.6B / -4B / -8B; the backbones are Qwen3's).
SHAPES: dict[str, dict[str, int]] = {
    "0.6b": dict(hidden_size=1024, num_layers=28, num_heads=16, num_kv_heads=8, head_dim=128, intermediate_size=3072),
    "4b": dict(hidden_size=2560, num_layers=36, num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=9728),
    "8b": dict(hidden_size=4096, num_layers=36, num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=12288),
    "tiny": dict(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, intermediate_size=96),  # smoke tests
}


def spec_for(size: str) -> GraphSpec:
    s = SHAPES[size]
    return GraphSpec(
        vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1_000_000.0, guard_inner_size=512,
        num_risk=3, num_category=8, num_query_risk=3, num_query_category=9, **s,
    )


def _random_weight(name: str) -> np.ndarray:
    shape = _SHAPE_OF[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name.endswith("norm.weight"):
        return np.ones(shape, dtype=np.float32)
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= 0.02
    return w


_SHAPE_OF: dict[str, tuple[int, ...]] = {}


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def bench_variant(size: str, variant: str, workdir: Path, *, context: int, tokens: int, lengths: list[int], repeats: int,
                  threads: int, log) -> dict:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from guardkit.export.onnx_graph import weight_names

    spec = spec_for(size)
    _SHAPE_OF.clear()
    _SHAPE_OF.update(weight_names(spec))
    dtype, int8 = ("fp16", False) if variant == "fp16" else ("fp32", variant == "int8")
    out = workdir / f"{size}-{variant}"
    t0 = time.perf_counter()
    files = build_onnx(spec, _random_weight, out, dtype=dtype, int8=int8)
    size_gb = sum((out / f).stat().st_size for f in files) / 1e9
    log(f"{size} {variant}: graph built in {time.perf_counter() - t0:.0f} s ({size_gb:.2f} GB)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(out / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"])
    past_names = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
    present_names = [n.replace("past_key_values.", "present.") for n in past_names]
    outputs = ["risk_logits", "category_logits", *present_names]
    state_dtype = np.float16 if dtype == "fp16" else np.float32
    rng = np.random.default_rng(0)

    def run(ids: np.ndarray, past: list[np.ndarray]) -> list[np.ndarray]:
        plen = past[0].shape[2]
        feeds = {
            "input_ids": ids.reshape(1, -1),
            "attention_mask": np.ones((1, plen + ids.size), dtype=np.int64),
            "position_ids": np.arange(plen, plen + ids.size, dtype=np.int64).reshape(1, -1),
            **dict(zip(past_names, past)),
        }
        return session.run(outputs, feeds)[2:]

    empty = [np.zeros((1, spec.num_kv_heads, 0, spec.head_dim), dtype=state_dtype) for _ in past_names]
    ids = rng.integers(1000, 100000, size=max(lengths + [context + tokens]) + 16).astype(np.int64)
    run(ids[:8], empty)  # warm up
    t0 = time.perf_counter()
    state = run(ids[:context], empty)
    prefill = time.perf_counter() - t0
    base = state
    steps = []
    for i in range(tokens):
        t0 = time.perf_counter()
        state = run(ids[context + i : context + i + 1], state)
        steps.append(time.perf_counter() - t0)
    chunks, state = [], base
    for start in range(context, context + tokens, 16):
        t0 = time.perf_counter()
        state = run(ids[start : start + 16], state)
        chunks.append((time.perf_counter() - t0) / 16)
    reprefill = {}
    for length in lengths:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(ids[:length], empty)
            samples.append(time.perf_counter() - t0)
        reprefill[length] = _ms(samples)
        log(f"{size} {variant}: re-prefill of {length} tokens {reprefill[length]:.0f} ms")
    result = {
        "size": size, "variant": variant, "threads": threads, "context": context, "model_gb": round(size_gb, 2),
        "prefill_ms": round(1000 * prefill, 1), "step_ms_per_token": round(_ms(steps), 2),
        "chunk16_ms_per_token": round(_ms(chunks), 2), "reprefill_ms_per_token": {str(k): round(v, 1) for k, v in reprefill.items()},
    }
    del session
    for f in files:
        (out / f).unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="0.6b:fp32,0.6b:int8,4b:int8", help="size:variant list; variants fp32, int8, fp16")
    parser.add_argument("--context", type=int, default=128, help="tokens prefilled before the measured steps (prompt + some response)")
    parser.add_argument("--tokens", type=int, default=32, help="tokens measured for steps and chunks")
    parser.add_argument("--lengths", default="128,512", help="sequence lengths at which the stock re-prefill per token is timed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", default=None, help="where the temporary graphs go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the report (text, then JSON lines) to this file")
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    lines: list[str] = []

    def log(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    import onnxruntime as ort

    header = (f"Qwen3Guard-Stream per-token latency, batch 1, CPU ({platform.processor() or platform.machine()}, "
              f"{args.threads} threads), onnxruntime {ort.__version__}, random weights at the real shapes; "
              f"context {args.context} tokens before the measured tokens")
    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for item in args.variants.split(","):
            size, variant = item.split(":")
            results.append(bench_variant(size, variant, Path(tmp), context=args.context, tokens=args.tokens, lengths=lengths,
                                         repeats=args.repeats, threads=args.threads, log=log))
    lines.append(header)
    cols = " | ".join(f"re-prefill @{n}" for n in lengths)
    lines.append(f"| model | weights | size GB | step (KV) | 16-chunk (KV) / token | {cols} | speed-up step vs re-prefill @{lengths[-1]} |")
    lines.append("|---" * (5 + len(lengths) + 1) + "|")
    for r in results:
        re = " | ".join(f"{r['reprefill_ms_per_token'][str(n)]:.0f} ms" for n in lengths)
        speed = r["reprefill_ms_per_token"][str(lengths[-1])] / r["step_ms_per_token"]
        lines.append(f"| {r['size']} | {r['variant']} | {r['model_gb']} | {r['step_ms_per_token']:.1f} ms | "
                     f"{r['chunk16_ms_per_token']:.1f} ms | {re} | {speed:.0f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n" + "\n".join(json.dumps(r) for r in results) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
