"""GPU check: CUDA and TensorRT against the CPU, for the default model and a Qwen3Guard-Stream-shaped fp16 graph.

For a session that is lent a GPU machine: one run prints (and with ``--out``
writes as JSON) for every graph and every provider the installed onnxruntime has:

- whether the provider really ran the graph (ONNX Runtime falls back to the CPU silently);
- logit agreement with the CPU: the max absolute difference of the risk and
  category logits over a prefill, 16 single cached steps and a 16-token chunk;
- per-token latency at batch 1 (single cached steps), in 16-token chunks, and with
  32 streams stepping together (one batched call per token), through plain
  ``InferenceSession.run`` with numpy in and out (what guardkit does today), and for
  GPU providers also with the KV cache kept on the device (I/O binding).

The graphs: the shipped guardkit-mini bundle (fp32 state) and a graph with the
Qwen3Guard-Stream-0.6B shapes in fp16, built from random weights by the same code
as ``guardkit export qwen3guard-stream --dtype fp16`` (latency and agreement do not
depend on the weights' values). Run it on the GPU machine (needs onnxruntime-gpu,
numpy, onnx; about 2 GB of disk for the 0.6B graph)::

    python -m guardkit.export.gpu_check --out gpu_check.json

It runs on a CPU-only machine too (``--qwen-size tiny`` for a quick smoke run):
it checks whatever providers it finds. Nothing in it needs a GPU to import.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["main", "run_checks"]

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_TOLERANCE = {"float32": 1e-3, "float16": 5e-2}  # max |logit difference| to the CPU counted as agreeing


@dataclass
class Graph:
    name: str
    path: Path  # model.onnx
    num_kv_heads: int
    head_dim: int
    state_dtype: type
    vocab: int


def _shipped_graph() -> Graph:
    from tokenizers import Tokenizer

    from guardkit._resources import default_model_path
    from guardkit.manifest import load_manifest

    bundle = default_model_path()
    m = load_manifest(bundle, verify=False)
    dtype = np.float16 if m.state.dtype == "float16" else np.float32
    vocab = Tokenizer.from_file(str(bundle / m.tokenizer_file)).get_vocab_size()
    return Graph(f"{m.name} {m.version}", bundle / m.model_file, m.state.num_kv_heads, m.state.head_dim, dtype, vocab)


def _qwen_graph(size: str, workdir: Path, log: Callable[[str], None]) -> Graph:
    from guardkit.export import bench_qwen3guard as bq
    from guardkit.export.onnx_graph import build_onnx, weight_names

    spec = bq.spec_for(size)
    bq._SHAPE_OF.clear()
    bq._SHAPE_OF.update(weight_names(spec))
    out = workdir / f"qwen3guard-{size}-fp16"
    t0 = time.perf_counter()
    build_onnx(spec, bq._random_weight, out, dtype="fp16")
    log(f"Qwen3Guard-Stream-{size} fp16 graph built in {time.perf_counter() - t0:.0f} s")
    return Graph(f"Qwen3Guard-Stream-{size} shape, fp16, random weights", out / "model.onnx", spec.num_kv_heads, spec.head_dim,
                 np.float16, 100000)


def _session(graph: Graph, provider: str, cache: Path) -> Any:
    import onnxruntime as ort

    from guardkit.model import session_options

    if provider == "cpu":
        providers: list[Any] = ["CPUExecutionProvider"]
    elif provider == "cuda":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        trt = {"trt_fp16_enable": graph.state_dtype is np.float16, "trt_engine_cache_enable": True,
               "trt_engine_cache_path": str(cache / graph.path.parent.name)}
        providers = [("TensorrtExecutionProvider", trt), "CUDAExecutionProvider", "CPUExecutionProvider"]
    return ort.InferenceSession(str(graph.path), sess_options=session_options(ort),
                                providers=providers)


class _Runner:
    """Feeds one graph: numpy in and out (``run``), or with the KV cache kept on the device (``run_bound``)."""

    def __init__(self, graph: Graph, session: Any, device: str) -> None:
        self.graph, self.session, self.device = graph, session, device
        self.past = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
        self.present = [n.replace("past_key_values.", "present.") for n in self.past]
        self.outputs = ["risk_logits", "category_logits", *self.present]

    def empty(self, batch: int = 1) -> list[np.ndarray]:
        return [np.zeros((batch, self.graph.num_kv_heads, 0, self.graph.head_dim), dtype=self.graph.state_dtype) for _ in self.past]

    def feeds(self, ids: np.ndarray, past_len: int, batch: int) -> dict[str, np.ndarray]:
        k = ids.size // batch
        return {"input_ids": ids.reshape(batch, k).astype(np.int64),
                "attention_mask": np.ones((batch, past_len + k), dtype=np.int64),
                "position_ids": np.tile(np.arange(past_len, past_len + k, dtype=np.int64), (batch, 1))}

    def run(self, ids: np.ndarray, past: list[np.ndarray], batch: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
        feeds = self.feeds(ids, past[0].shape[2], batch)
        feeds.update(zip(self.past, past))
        out = self.session.run(self.outputs, feeds)
        return out[:2], out[2:]

    def run_bound(self, ids: np.ndarray, past: list[Any], past_len: int) -> list[Any]:
        """One step with the KV cache as device OrtValues: nothing but ids and logits cross the bus."""
        binding = self.session.io_binding()
        for name, value in self.feeds(ids, past_len, 1).items():
            binding.bind_cpu_input(name, value)
        for name, value in zip(self.past, past):
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        binding.bind_output("risk_logits", "cpu")
        binding.bind_output("category_logits", "cpu")
        for name in self.present:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[2:]


def _ids(graph: Graph, count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, graph.vocab, size=count).astype(np.int64)


def _agreement(runner: _Runner, reference: _Runner, ids: np.ndarray) -> dict[str, Any]:
    """Max |logit difference| to the CPU over a 32-token prefill, 16 single steps and a 16-token chunk."""
    def trace(r: _Runner) -> list[np.ndarray]:
        logits, state = r.run(ids[:32], r.empty())
        out = list(logits)
        for i in range(32, 48):
            logits, state = r.run(ids[i : i + 1], state)
            out += logits
        logits, state = r.run(ids[48:64], state)
        return out + list(logits)

    got, want = trace(runner), trace(reference)
    diff = max(float(np.abs(a.astype(np.float32) - b.astype(np.float32)).max()) for a, b in zip(got, want))
    tol = _TOLERANCE["float16" if runner.graph.state_dtype is np.float16 else "float32"]
    same_argmax = all(np.array_equal(a.argmax(-1), b.argmax(-1)) for a, b in zip(got, want))
    return {"max_abs_logit_diff": round(diff, 6), "tolerance": tol, "agrees": diff <= tol, "same_argmax": same_argmax}


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 4)


def _latency(runner: _Runner, ids: np.ndarray, context: int, tokens: int, streams: int) -> dict[str, Any]:
    _, base = runner.run(ids[:context], runner.empty())
    runner.run(ids[context : context + 1], base)  # warm up the single-step shapes
    steps, state = [], base
    for i in range(tokens):
        t0 = time.perf_counter()
        _, state = runner.run(ids[context + i : context + i + 1], state)
        steps.append(time.perf_counter() - t0)
    chunks, state = [], base
    for start in range(context, context + tokens - 15, 16):
        t0 = time.perf_counter()
        _, state = runner.run(ids[start : start + 16], state)
        chunks.append((time.perf_counter() - t0) / 16)
    batch = [np.concatenate([a] * streams) for a in base]
    runner.run(np.tile(ids[context : context + 1], streams), batch, streams)  # warm up the batched shapes
    batched = []
    for i in range(tokens):
        t0 = time.perf_counter()
        _, batch = runner.run(np.tile(ids[context + i : context + i + 1], streams), batch, streams)
        batched.append((time.perf_counter() - t0) / streams)
    out: dict[str, Any] = {"step_ms": _median_ms(steps), "chunk16_ms_per_token": _median_ms(chunks),
                           f"streams{streams}_ms_per_token": _median_ms(batched),
                           f"streams{streams}_tok_s": round(1 / statistics.median(batched), 1)}
    if runner.device != "cpu":
        try:
            bound, past = [], list(base)
            for i in range(tokens):
                t0 = time.perf_counter()
                past = runner.run_bound(ids[context + i : context + i + 1], past, context + i)
                bound.append(time.perf_counter() - t0)
            out["step_ms_kv_on_device"] = _median_ms(bound)
        except Exception as exc:  # noqa: BLE001 - report it, keep the other figures
            out["step_ms_kv_on_device"] = f"failed: {exc}"
    return out


def run_checks(*, providers: list[str] | None = None, qwen_size: str = "0.6b", context: int = 128, tokens: int = 32,
               streams: int = 32, workdir: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = providers or list(PROVIDERS)
    found = [p for p in wanted if PROVIDERS[p] in available]
    result: dict[str, Any] = {"onnxruntime": ort.__version__, "machine": f"{platform.machine()} {platform.processor()}".strip(),
                              "available_providers": sorted(available), "checked": found,
                              "skipped": [p for p in wanted if p not in found], "graphs": {}}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        graphs = [_shipped_graph(), _qwen_graph(qwen_size, Path(tmp), log)]
        for graph in graphs:
            ids = _ids(graph, max(64, context + tokens) + 1)
            reference = _Runner(graph, _session(graph, "cpu", Path(tmp)), "cpu")
            rows: dict[str, Any] = {}
            for provider in found:
                log(f"{graph.name}: {provider}")
                try:
                    session = reference.session if provider == "cpu" else _session(graph, provider, Path(tmp))
                    active = session.get_providers()[0]
                    runner = _Runner(graph, session, "cpu" if provider == "cpu" else "cuda")
                    row: dict[str, Any] = {"active_provider": active, "fell_back": active != PROVIDERS[provider]}
                    row.update(_agreement(runner, reference, ids))
                    row.update(_latency(runner, ids, context, tokens, streams))
                except Exception as exc:  # noqa: BLE001 - one provider failing must not hide the others
                    row = {"error": f"{type(exc).__name__}: {exc}"}
                rows[provider] = row
            result["graphs"][graph.name] = rows
    return result


def report(result: dict[str, Any], streams: int = 32) -> str:
    lines = [f"onnxruntime {result['onnxruntime']} on {result['machine']}; providers checked: {', '.join(result['checked'])}"
             + (f" (not available: {', '.join(result['skipped'])})" if result["skipped"] else "")]
    lines.append(f"| graph | provider | active | max logit diff vs CPU | agrees | step ms | 16-chunk ms/token | "
                 f"{streams} streams ms/token | step ms, KV on device |")
    lines.append("|---" * 9 + "|")
    for graph, rows in result["graphs"].items():
        for provider, r in rows.items():
            if "error" in r:
                lines.append(f"| {graph} | {provider} | error: {r['error'][:120]} |" + " |" * 6)
                continue
            lines.append(f"| {graph} | {provider} | {r['active_provider']} | {r['max_abs_logit_diff']:.2e} | "
                         f"{'yes' if r['agrees'] else 'NO'} | {r['step_ms']:.3f} | {r['chunk16_ms_per_token']:.3f} | "
                         f"{r[f'streams{streams}_ms_per_token']:.3f} | {r.get('step_ms_kv_on_device', '-')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default=None, help="comma list of cpu, cuda, tensorrt (default: all that are installed)")
    parser.add_argument("--qwen-size", default="0.6b", help="Qwen3Guard-Stream shape: 0.6b (default), 4b, 8b, or tiny for a smoke run")
    parser.add_argument("--context", type=int, default=128, help="tokens prefilled before the timed steps")
    parser.add_argument("--tokens", type=int, default=32, help="timed tokens per figure")
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--workdir", default=None, help="where the temporary graph goes (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    providers = args.providers.split(",") if args.providers else None
    if providers and any(p not in PROVIDERS for p in providers):
        parser.error(f"--providers takes {', '.join(PROVIDERS)}")

    def log(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    result = run_checks(providers=providers, qwen_size=args.qwen_size, context=args.context, tokens=args.tokens,
                        streams=args.streams, workdir=Path(args.workdir) if args.workdir else None, log=log)
    print(report(result, args.streams), end="")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    failed = [f"{g}/{p}" for g, rows in result["graphs"].items() for p, r in rows.items() if "error" in r or not r.get("agrees")]
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
