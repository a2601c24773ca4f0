"""Measure a guard on labelled data (``guardkit eval``) and fit a policy to it (``guardkit calibrate``).

The evaluation format is JSONL, one item per line (see :mod:`guardkit.evaluation.dataset`).
Running items records each response's per-token probabilities once
(:mod:`~guardkit.evaluation.runner`); every metric, curve and threshold search
then re-applies the policy's decision rule to those scores
(:mod:`~guardkit.evaluation.replay`), while the streaming figures come from
real :class:`~guardkit.StreamSession` runs fed in small deltas.
"""

from guardkit.evaluation.dataset import BUILTIN_DATA, Dataset, DatasetError, EvalItem, LineProblem, load_dataset
from guardkit.evaluation.metrics import BinaryCounts, compute_metrics
from guardkit.evaluation.runner import ItemResult, run_items

__all__ = [
    "BUILTIN_DATA",
    "BinaryCounts",
    "Dataset",
    "DatasetError",
    "EvalItem",
    "ItemResult",
    "LineProblem",
    "compute_metrics",
    "load_dataset",
    "run_items",
]
