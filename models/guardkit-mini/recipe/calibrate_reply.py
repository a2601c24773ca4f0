"""Choose the reply check's offset (and the stream's) on the dev suite, as the runtime judges.

With a classifier that judges replies (manifest ``prompt_model.reply_check``) a reply is
blocked by whichever comes first: the stream model's debounce (two consecutive tokens at
p(unsafe) >= 0.5) or a reply check at p(unsafe) >= 0.5.  Both depend on an unsafe-logit
offset: the stream's is baked into model.onnx, the check's is the manifest's.  This script
records every token's risk and every check once, through a real session of the bundle
(product_path.py), then replays the default policy for a grid of both offsets:

* blocked replies, alone and after a prompt (recall on harmful ones, FPR on benign ones);
* refusals after harmful prompts that pass;
* harmful characters released past the onset (a check blocks at the first character it had
  not passed, the stream at its onset token or there if earlier; whichever the runtime
  reaches first).

It picks the best F1 (1:1 prevalence) with benign FPR alone and with a prompt <= --max-fpr
and refusals passing >= --min-refusal (within 0.005 of it, the largest stream offset), prints the grid, and with --write bakes the stream
offset into model.onnx and writes the manifest with the reply offset.

Usage (from models/guardkit-mini):
    python recipe/calibrate_reply.py --bundle BUNDLE [--max-fpr 0.04] [--records work/NAME.pkl] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from evaluate import softmax  # noqa: E402

STREAM_DELTAS = (-3.0, -2.0, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25)
REPLY_DELTAS = tuple(np.round(np.arange(-2.0, 2.01, 0.25), 2))
HARMFUL = ("response.alone.harmful", "response.with_prompt.harmful")


def _shift(log: np.ndarray, delta: float) -> np.ndarray:
    z = np.array(log, dtype=np.float64, copy=True)
    z[..., 2] += delta
    return softmax(z)


def replay(record: dict, stream_delta: float, reply_delta: float) -> int | None:
    """The character where the default policy blocks this reply (None: it passes).

    Runtime order: token k's stream judgement, then the check that ends after token k
    (key k + 0.75; a check ending at ``end`` comes after token end - 1).  The stream blocks
    when the second of two consecutive flagged tokens is judged, at the first one, or at the
    first token no check has passed yet if that is earlier (those tokens were held back)."""
    events = []
    p = _shift(record["log"], stream_delta)[:, 2] if len(record["log"]) else np.zeros(0)
    flag = p >= 0.5
    both = np.flatnonzero(flag[:-1] & flag[1:]) if len(flag) > 1 else np.zeros(0, dtype=int)
    if len(both):  # blocked at its onset, or earlier: text no reply check has passed stays withheld
        onset = int(both[0])
        checked = max([end for _, end, _ in record["checks"] if end <= onset + 1], default=0)
        events.append((onset + 1 + 0.5, int(record["starts"][min(onset, checked)])))
    for start, end, log in record["checks"]:
        if _shift(log, reply_delta)[2] >= 0.5:
            events.append((end - 1 + 0.75, int(record["starts"][start])))
            break
    return min(events)[1] if events else None


def sweep(items: list[dict], records: list[dict]) -> list[dict]:
    group = np.array([x["group"] for x in items])
    harm = np.isin(group, HARMFUL)
    rows = []
    for sd in STREAM_DELTAS:
        for rd in REPLY_DELTAS:
            at = [replay(r, sd, rd) for r in records]
            blocked = np.array([a is not None for a in at])
            recall = blocked[harm].mean()
            fpr = blocked[np.isin(group, ("response.alone.benign", "response.with_prompt.benign"))].mean()
            precision = recall / (recall + fpr) if recall + fpr else 0.0
            released = [max(0, (a if a is not None else len(x["response"])) - x["onset"])
                        for x, a in zip(items, at) if x["group"] in HARMFUL]
            rows.append(dict(stream=float(sd), reply=float(rd), recall=float(recall),
                             f1=float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
                             recall_alone=float(blocked[group == "response.alone.harmful"].mean()),
                             fpr_alone=float(blocked[group == "response.alone.benign"].mean()),
                             fpr_with_prompt=float(blocked[group == "response.with_prompt.benign"].mean()),
                             refusal_pass=float(1 - blocked[group == "response.refusal"].mean()),
                             median_released=float(statistics.median(released))))
    return rows


def main() -> None:
    from calibrate import current_offsets, patch
    from dev_suite import build, drop_overlap
    from product_path import product_path_log_probs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--max-fpr", type=float, default=0.04)
    ap.add_argument("--min-refusal", type=float, default=0.96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--records", help="a pickle of the recorded risks: read if it exists, else written (the recording takes ~25 min)")
    ap.add_argument("--write", action="store_true", help="bake the stream offset and write the manifest with the reply offset")
    args = ap.parse_args()
    manifest = json.load(open(os.path.join(args.bundle, "guardkit.json")))
    check = (manifest.get("prompt_model") or {}).get("reply_check")
    if check is None:
        raise SystemExit("the bundle's manifest has no prompt_model.reply_check: write it with write_manifest.py first")
    items, _ = drop_overlap(build())
    items = [x for x in items if x["kind"] == "response" and not x["seen_by_02"]]
    model = os.path.join(args.bundle, "model.onnx")
    base = dict(stream=current_offsets(model)["response"], reply=check["unsafe_logit_offset"])  # what the records were made with
    if args.records and os.path.exists(args.records):
        saved = pickle.load(open(args.records, "rb"))
        records, base = saved["records"], saved["base"]
    else:
        records = product_path_log_probs(args.bundle, items, threads=args.threads)
        if args.records:
            pickle.dump(dict(records=records, base=base), open(args.records, "wb"))
    rows = sweep(items, records)
    for r in rows:
        print(f"stream {r['stream']:+.2f} reply {r['reply']:+.2f} | F1 {r['f1']:.3f} recall {r['recall']:.3f} "
              f"(alone {r['recall_alone']:.3f}) FPR {r['fpr_alone']:.3f}/{r['fpr_with_prompt']:.3f} "
              f"refusals pass {r['refusal_pass']:.3f} median released {r['median_released']:.0f}")
    ok = [r for r in rows if r["fpr_alone"] <= args.max_fpr and r["fpr_with_prompt"] <= args.max_fpr
          and r["refusal_pass"] >= args.min_refusal]
    if not ok:
        raise SystemExit("no offsets meet the caps")
    # within 0.005 of the best F1, keep the stream model's own judgement strongest (the largest stream offset):
    # two independent judges are the safer bet on text unlike the dev suite's
    top = max(r["f1"] for r in ok)
    best = max((r for r in ok if r["f1"] >= top - 0.005), key=lambda r: (r["stream"], r["f1"]))
    stream_offset, reply_offset = base["stream"] + best["stream"], base["reply"] + best["reply"]
    print(f"chosen: stream offset {stream_offset:+.2f} (delta {best['stream']:+.2f}), reply check offset {reply_offset:+.2f}: {best}")
    if args.write:
        patch(model, stream_offset, current_offsets(model)["prompt"])
        subprocess.run([sys.executable, os.path.join(HERE, "write_manifest.py"), args.bundle,
                        "--reply-check-offset", f"{reply_offset:.2f}"], check=True)


if __name__ == "__main__":
    main()
