"""The ``guardkit`` command line.

Exit codes: 0 allowed (or success), 1 blocked, 2 usage or load error (an invalid
policy or model bundle included), 3 ``guardkit demo --strict``: a sample did not behave as labelled,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import sys
from typing import Iterator, Sequence

from guardkit.errors import GuardkitError, PolicyError
from guardkit.policy import builtin_policies, load_policy

EXIT_OK, EXIT_BLOCKED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_DEMO_MISBEHAVED = 3  # `guardkit demo --strict`: a sample did not behave as labelled


def _guard(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from guardkit.guard import Guard

    return Guard(args.model, policy=args.policy, device=args.device, threads=getattr(args, "threads", None))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="built-in policy name or YAML file (default: default)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])


def _print_verdict(verdict, label: str, out=None) -> None:  # type: ignore[no-untyped-def]
    """One line: level, action, where, and whose scores these are; a second ``why:`` line when the verdict has a reason."""
    out = out if out is not None else sys.stdout
    where = f" at char {verdict.char_offset}" if verdict.char_offset is not None and verdict.source == "response" else ""
    category = f" ({verdict.category})" if verdict.category else ""
    line = f"{label}: {verdict.level}{category} -> {verdict.action}{where}"
    if verdict.scores:
        if verdict.source == "prompt":
            whose = "prompt"  # read at the prompt's last token
        elif verdict.action == "allow":
            whose = "peak token"  # the most unsafe guard token of an allowed response
        else:
            whose = "deciding token"
        line += f"  [{whose}: " + ", ".join(f"{k} {v:.3f}" for k, v in verdict.scores.items()) + "]"
    out.write(line + "\n")
    if verdict.reason:
        out.write(f"  why: {verdict.reason}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_int_list(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 1,8,32, got {text!r}")
    try:
        return [_positive_int(p) for p in parts]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _read_text_arg(args: argparse.Namespace) -> str:
    """The text to check: the argument, ``-`` (stdin) or ``--file PATH``."""
    if args.file is not None and args.text is not None:
        raise UsageError("give the text as an argument, '-' for stdin, or --file PATH, not both")
    if args.file is None and args.text is None:
        raise UsageError("give the text to check: an argument, '-' to read stdin, or --file PATH")
    if args.file is None and args.text != "-":
        return str(args.text)
    source = args.file if args.file is not None else "-"
    try:
        if source == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        with open(source, "rb") as handle:
            return handle.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{'stdin' if source == '-' else source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{source}: {exc.strerror or exc}") from None


class UsageError(Exception):
    """A command-line mistake: one line on stderr, exit 2."""


def cmd_demo(args: argparse.Namespace) -> int:
    from guardkit.demo import SAMPLES, run_demo

    guard = _guard(args)
    ok = run_demo(guard, sys.stdout, delay=args.delay, color=False if args.no_color else None)
    return EXIT_OK if ok == len(SAMPLES) or not args.strict else EXIT_DEMO_MISBEHAVED


def cmd_check(args: argparse.Namespace) -> int:
    text = _read_text_arg(args)
    guard = _guard(args)
    result: dict[str, object] = {}
    blocked = False
    if args.prompt is not None:
        prompt_verdict = guard.check_prompt(args.prompt)
        result["prompt"] = prompt_verdict.to_dict()
        blocked |= prompt_verdict.blocked
    response_verdict = guard.check_response(text, prompt=args.prompt)
    result["response"] = response_verdict.to_dict()
    blocked |= response_verdict.blocked
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if args.prompt is not None:
            _print_verdict(prompt_verdict, "prompt")
        _print_verdict(response_verdict, "response")
    return EXIT_BLOCKED if blocked else EXIT_OK


def _stdin_deltas(chunk_bytes: int = 256) -> Iterator[str]:
    """Read stdin as it arrives (no line buffering), decoding UTF-8 incrementally."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = sys.stdin.fileno()
    while True:
        data = os.read(fd, chunk_bytes)
        if not data:
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
            return
        text = decoder.decode(data)
        if text:
            yield text


def cmd_stream(args: argparse.Namespace) -> int:
    from guardkit.guard import Guard

    sink = None
    if args.audit is not None:
        from guardkit.audit import JsonlSink

        sink = JsonlSink(args.audit)
    guard = Guard(args.model, policy=args.policy, device=args.device, audit=sink)
    stream = guard.stream(_stdin_deltas(), prompt=args.prompt, on_block="replace", request_id=args.request_id)
    try:
        for text in stream:
            sys.stdout.write(text)
            sys.stdout.flush()
    finally:
        stream.close()
        if sink is not None:
            sink.close()  # the stream's records are on disk before we exit
    sys.stdout.write("\n")
    if args.json:
        sys.stderr.write(json.dumps(stream.verdict.to_dict()) + "\n")
    else:
        _print_verdict(stream.verdict, "guardkit", out=sys.stderr)
    return EXIT_BLOCKED if stream.blocked else EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from guardkit.audit.summary import summarize_files

    for path in args.files:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such file")
    summary = summarize_files(args.files)
    comparison = None
    if args.labels is not None:
        from guardkit.audit.summary import compare_with_labels

        if not os.path.isfile(args.labels):
            raise UsageError(f"{args.labels}: no such file")
        comparison = compare_with_labels(args.files, args.labels)
    if args.json:
        print(json.dumps({**summary.to_dict(), **({"labels": comparison.to_dict()} if comparison else {})}, indent=2))
    else:
        summary.write(sys.stdout)
        if comparison is not None:
            comparison.write(sys.stdout)
    return EXIT_OK


def cmd_policies(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name, path in builtin_policies().items():
            policy = load_policy(name)
            print(f"{name:<18} {policy.description}")
        return EXIT_OK
    if args.action == "show":
        if not args.targets:
            print("guardkit policies show: give a policy name or file", file=sys.stderr)
            return EXIT_ERROR
        for target in args.targets:
            policy = load_policy(target)
            print(f"# {target} (resolved, extends applied)")
            print(policy.to_yaml(), end="")
        return EXIT_OK
    # validate
    targets = args.targets or list(builtin_policies())
    failures = 0
    for target in targets:
        try:
            policy = load_policy(target)
        except PolicyError as exc:
            failures += 1
            for problem in getattr(exc, "problems", None) or [exc]:  # every problem in the file, one line each
                print(f"error: {problem}", file=sys.stderr)
        else:
            print(f"ok: {target} (name {policy.name})")
    return EXIT_ERROR if failures else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from guardkit.export import export_qwen3guard_stream

    progress = (lambda m: print(f"... {m}", file=sys.stderr, flush=True)) if not args.quiet else None
    result = export_qwen3guard_stream(args.src, args.out, dtype=args.dtype, int8=args.int8, progress=progress)
    if result.ignored_keys:
        print(f"note: ignored unused checkpoint tensors: {', '.join(result.ignored_keys)}", file=sys.stderr)
    print(f"note: {result.template_note}", file=sys.stderr)
    print(f"wrote {result.path} ({', '.join(result.files)})")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "serve", False):  # in-process vs Ray Serve with 1 and 2 replicas (guardkit/serve/bench.py)
        from guardkit.serve.bench import print_serve_report, run_serve_bench

        served = run_serve_bench(args.model, tokens=args.tokens, rounds=args.rounds, streams=args.streams, threads=args.threads,
                                 progress=None if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True)))
        if args.json:
            print(served.to_json())
        else:
            print_serve_report(served)
        return EXIT_OK
    if args.audit:  # only the cost of decision records and spans
        from guardkit.audit.bench import main_json, print_audit_report, run_audit_bench

        figures = run_audit_bench(args.model, tokens=args.tokens, rounds=max(args.rounds, 10), threads=args.threads)
        print(main_json(figures)) if args.json else print_audit_report(figures)
        return EXIT_OK
    if args.vs:  # only guardkit against the schedules users would otherwise run
        return _bench_vs(args)
    from guardkit.bench import print_report, run_bench

    result = run_bench(
        args.model, tokens=args.tokens, threads=args.threads, rounds=args.rounds, lengths=args.lengths, streams=args.streams,
        baseline_model=args.baseline_model,
        progress=None if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True)),
    )
    if args.json:
        print(result.to_json())
    else:
        print_report(result)
    return EXIT_OK


def _bench_vs(args: argparse.Namespace) -> int:
    import json

    from guardkit.bench_vs import print_vs, run_vs
    from guardkit.model import StreamModel

    model = StreamModel(args.model, device="cpu", threads=args.threads)
    result = run_vs(model, tokens=args.vs_tokens, policy=args.policy, leak_tokens=args.leak_tokens)
    if args.json:
        print(json.dumps({"model": f"{model.manifest.name} {model.manifest.version}", **result}, indent=2))
    else:
        print(f"guardkit bench --vs: {model.manifest.name} {model.manifest.version}, onnxruntime threads={args.threads or 'default'}")
        print_vs(result, sys.stdout.write)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from guardkit.evaluation.commands import run_eval

    return run_eval(args)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from guardkit.evaluation.commands import run_calibrate

    return run_calibrate(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardkit", description="Streaming safety guard for LLM output.")
    from guardkit import __version__

    parser.add_argument("--version", action="version", version=f"guardkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="stream built-in sample conversations through the guard")
    _add_model_options(demo)
    demo.add_argument("--delay", type=float, default=None, help="seconds between deltas (default 0.02 on a terminal, else 0)")
    demo.add_argument("--no-color", action="store_true")
    demo.add_argument("--strict", action="store_true",
                      help="exit 3 unless every sample behaves as labelled (the shipped guardkit-mini 0.3 gets 4 of 6)")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check", help="judge a response (and optionally its prompt)")
    check.add_argument("text", nargs="?", default=None, help="the response text to judge, or '-' to read it from stdin")
    check.add_argument("--file", "-f", default=None, metavar="PATH", help="read the response text from a UTF-8 file ('-': stdin)")
    check.add_argument("--prompt", default=None, help="the user prompt (also judged)")
    check.add_argument("--json", action="store_true")
    _add_model_options(check)
    check.set_defaults(func=cmd_check)

    stream = sub.add_parser("stream", help="guard text arriving on stdin, writing released text to stdout")
    stream.add_argument("--prompt", default=None)
    stream.add_argument("--json", action="store_true", help="print the verdict as JSON on stderr")
    stream.add_argument("--audit", default=None, metavar="FILE", help="append the decision records to FILE (JSON lines)")
    stream.add_argument("--request-id", default=None, help="request id to put in the decision records")
    _add_model_options(stream)
    stream.set_defaults(func=cmd_stream)

    policies = sub.add_parser("policies", help="list, show or validate policies")
    policies.add_argument("action", choices=["list", "show", "validate"])
    policies.add_argument("targets", nargs="*", help="policy names or YAML files")
    policies.set_defaults(func=cmd_policies)

    export = sub.add_parser("export", help="export an upstream checkpoint to a guardkit model bundle (needs guardkit[export])")
    export.add_argument("format", choices=["qwen3guard-stream"], help="the checkpoint's model family")
    export.add_argument("src", help="local checkpoint directory (config.json, *.safetensors, tokenizer files)")
    export.add_argument("out", help="bundle directory to create (must not exist or be empty)")
    export.add_argument("--dtype", default="fp32", help="weights and KV state: fp32 (default, CPU) or fp16 (GPU)")
    export.add_argument("--int8", action="store_true", help="8-bit weight-only quantization of the projections (MatMulNBits)")
    export.add_argument("--quiet", action="store_true", help="no progress on stderr")
    export.set_defaults(func=cmd_export)

    bench = sub.add_parser("bench", help="measure step, session, chunking and re-scoring costs side by side")
    bench.add_argument("--model", default=None)
    bench.add_argument("--tokens", type=_positive_int, default=128)
    bench.add_argument("--threads", type=_positive_int, default=None,
                       help="ONNX Runtime intra-op threads (default: guardkit's, one per call without spinning)")
    bench.add_argument("--rounds", type=_positive_int, default=3)
    bench.add_argument("--lengths", type=_positive_int_list, default=None, help="response lengths for the re-scoring comparison, e.g. 128,512,2048")
    bench.add_argument("--streams", type=_positive_int_list, default=None, help="concurrent stream counts, e.g. 1,8,32,64")
    bench.add_argument("--baseline-model", default=None, metavar="PATH",
                       help="another bundle (e.g. a previous release) whose batch-1 step is timed side by side")
    bench.add_argument("--audit", action="store_true",
                       help="only measure what decision records and OpenTelemetry spans add per token (alternating, wall and CPU time)")
    bench.add_argument("--vs", action="store_true",
                       help="only guardkit's session against re-scanning every token / every 16 tokens, NeMo-style chunks "
                            "and one check at the end: per-token wall and CPU time, and the leak each allows")
    bench.add_argument("--vs-tokens", type=_positive_int, default=2048, help="response length for --vs costs (default 2048)")
    bench.add_argument("--leak-tokens", type=_positive_int, default=512, help="response length for --vs leaks (default 512)")
    bench.add_argument("--policy", default="default", help="policy for the --vs leaks (default: default)")
    bench.add_argument("--serve", action="store_true",
                       help="in-process vs Ray Serve with 1 and 2 replicas: tokens/s, per-token latency, overhead per step (needs guardkit[serve])")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=cmd_bench)

    audit = sub.add_parser("audit", help="read decision records (see README: Audit records, monitor mode and OpenTelemetry)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    summarize = audit_sub.add_parser("summarize", help="counts by action, category and policy, and latency percentiles")
    summarize.add_argument("files", nargs="+", metavar="FILE.jsonl", help="JSON-lines record files (rotated ones too: FILE FILE.1 ...)")
    summarize.add_argument("--labels", default=None, metavar="LABELS.jsonl",
                           help='compare the blocks (monitor mode: would-be blocks) per request_id with {"request_id", "label": safe|unsafe} lines')
    summarize.add_argument("--json", action="store_true")
    summarize.set_defaults(func=cmd_audit)

    from guardkit.serve.cli import add_serve_parser

    add_serve_parser(sub)  # guardkit serve: the guard model on Ray Serve (guardkit/serve/cli.py)

    evaluate = sub.add_parser("eval", help="measure the guard on a labelled JSONL file (see README: Evaluate and calibrate)")
    evaluate.add_argument("data", nargs="?", default=None, help="evaluation JSONL file")
    evaluate.add_argument("--builtin", action="store_true", help="use the small public evaluation set shipped with guardkit")
    _add_model_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON (no progress bar)")
    evaluate.add_argument("--report", default=None, metavar="DIR", help="write PNG plots and summary.md to DIR (needs guardkit[plot])")
    evaluate.add_argument("--strict", action="store_true", help="stop at the first malformed line (default: skip it with a warning)")
    evaluate.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    evaluate.add_argument("--items", default=None, metavar="FILE", help="also write one JSON line per item (verdicts, scores)")
    evaluate.set_defaults(func=cmd_eval)

    calibrate = sub.add_parser("calibrate", help="fit unsafe thresholds to a target false-positive rate and write a policy")
    calibrate.add_argument("data", help="evaluation JSONL file")
    calibrate.add_argument("--target-fpr", type=float, default=0.02, help="false-positive rate on safe items to stay at or under (default 0.02)")
    calibrate.add_argument("--base-policy", default="default", help="policy to extend: built-in name or YAML file (default: default)")
    calibrate.add_argument("-o", "--output", required=True, help="policy YAML to write")
    calibrate.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    calibrate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    calibrate.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    calibrate.add_argument("--global-only", action="store_true", help="fit only the global thresholds, no per-category ones")
    calibrate.add_argument("--min-safe", type=int, default=20, help="refuse with fewer safe response items (default 20)")
    calibrate.add_argument("--min-unsafe", type=int, default=10, help="refuse with fewer unsafe response items (default 10)")
    calibrate.add_argument("--json", action="store_true")
    calibrate.add_argument("--strict", action="store_true", help="stop at the first malformed line")
    calibrate.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (GuardkitError, UsageError) as exc:  # PolicyError, ModelLoadError, ...: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. piped into `head`
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C: the conventional 128 + SIGINT, no traceback
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
