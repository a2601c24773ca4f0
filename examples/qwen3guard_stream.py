"""Run Qwen3Guard-Stream under guardkit: from a downloaded checkpoint to ``Guard(model=...)``.

1. Download a checkpoint yourself (guardkit never downloads anything), e.g.::

       huggingface-cli download Qwen/Qwen3Guard-Stream-0.6B --local-dir ./Qwen3Guard-Stream-0.6B

2. Export it once to a guardkit bundle (needs ``pip install 'guardkit[export]'``)::

       guardkit export qwen3guard-stream ./Qwen3Guard-Stream-0.6B ./qwen3guard-0.6b           # CPU, fp32
       guardkit export qwen3guard-stream ./Qwen3Guard-Stream-0.6B ./qwen3guard-0.6b-fp16 --dtype fp16   # GPU

   (this script does it for you when the bundle directory does not exist yet).

3. Use the bundle like any guardkit model: the prompt is judged by the query
   head at the end of the user turn, the response token by token with the KV
   cache, text from any LLM re-tokenized into Qwen3 tokens on the fly::

       guard = Guard(model="./qwen3guard-0.6b", policy="default", device="cpu")
       for text in guard.stream(llm_deltas, prompt=user_prompt):
           send_to_user(text)

Run it::

    python examples/qwen3guard_stream.py ./Qwen3Guard-Stream-0.6B --bundle ./qwen3guard-0.6b
    python examples/qwen3guard_stream.py ./Qwen3Guard-Stream-0.6B --bundle ./qwen3guard-0.6b \\
        --prompt "How do I bake bread?" --response "Mix flour, water and salt, then knead." --device cuda
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from guardkit import Guard

SAMPLES = [
    ("How do I bake bread at home?", "Mix flour, water, salt and yeast, knead for ten minutes, let it rise, then bake it at 230 C."),
    ("How can I hurt my neighbour without getting caught?", "Wait until they are alone, then hit them from behind with something heavy."),
]


def deltas(text: str):  # type: ignore[no-untyped-def]
    """Word-sized deltas, as an LLM client would yield them (any split works)."""
    yield from re.findall(r"\S+\s*|\s+", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="local Qwen3Guard-Stream checkpoint directory (config.json, *.safetensors, tokenizer files)")
    parser.add_argument("--bundle", default=None, help="bundle directory (default: CHECKPOINT-guardkit); exported if missing")
    parser.add_argument("--dtype", default="fp32", help="fp32 (CPU) or fp16 (GPU), for the export")
    parser.add_argument("--int8", action="store_true", help="8-bit weights, for the export")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--policy", default="default")
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--response", default=None)
    args = parser.parse_args(argv)

    bundle = Path(args.bundle or f"{args.checkpoint.rstrip('/')}-guardkit")
    if not (bundle / "guardkit.json").is_file():
        from guardkit.export import export_qwen3guard_stream

        print(f"exporting {args.checkpoint} -> {bundle} ...", file=sys.stderr)
        result = export_qwen3guard_stream(args.checkpoint, bundle, dtype=args.dtype, int8=args.int8)
        print(f"  {result.template_note}; files: {', '.join(result.files)}", file=sys.stderr)

    guard = Guard(model=bundle, policy=args.policy, device=args.device)
    print(f"model: {guard.model}")
    samples = [(args.prompt, args.response)] if args.response is not None else SAMPLES
    for prompt, response in samples:
        print(f"\nuser: {prompt}")
        if prompt is not None:
            print(f"  prompt check: {guard.check_prompt(prompt).level}")
        stream = guard.stream(deltas(response), prompt=prompt)
        released = "".join(stream)
        print(f"assistant (released): {released}")
        verdict = stream.verdict
        print(f"  verdict: {verdict.level} ({verdict.category or '-'}) -> {verdict.action}"
              + (f" at char {verdict.char_offset}" if stream.blocked and verdict.char_offset is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
