"""The prompt classifier: an optional second graph of a bundle that judges whole prompts.

The stream model reads a prompt causally, as the response's context, and its
prompt head judges it at the last token with weights it shares with the response
task. A prompt is complete when it is checked, so nothing forces that verdict to be
causal: a bundle may ship a bidirectional classifier for it (manifest
``prompt_model``). The stream model still prefills the prompt as context; only the
prompt *verdict* comes from this graph.

Its input is the template's rendering of the prompt (``[CLS] text [SEP]`` for
guardkit-mini), tokenized with the bundle's text tokenizer, so special tokens typed
in a prompt stay text. A rendering longer than ``max_tokens`` is judged in windows
of ``max_tokens`` that overlap by half, each wrapped in the template's head and tail,
and the session keeps the worst window, as it does for the stream model's windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from guardkit.errors import ModelLoadError
from guardkit.manifest import Manifest, PromptModelSpec, bundle_file
from guardkit.verdict import RISK_LEVELS
from guardkit.windows import overlapping_windows, split_rendering

__all__ = ["PromptClassifier"]

_INPUTS = ("input_ids", "attention_mask")
_OUTPUTS = ("risk_logits", "category_logits")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class PromptClassifier:
    """A loaded prompt classifier; thread-safe like the ONNX Runtime session it holds."""

    def __init__(self, bundle_dir: Path, manifest: Manifest, session_factory: Any, file: str | None = None) -> None:
        """``file``: another graph with this contract (the reply check's own) instead of ``prompt_model.file``."""
        spec = manifest.prompt_model
        if spec is None:
            raise ValueError("the manifest has no prompt_model")
        self.spec: PromptModelSpec = spec
        self.file = file or spec.file
        self.path = bundle_file(bundle_dir, self.file)
        self._session = session_factory(self.path)
        self._check_contract()
        self.categories: tuple[str, ...] = spec.categories
        self._risk_order = np.array([spec.risk_labels.index(level) for level in RISK_LEVELS])

    def _check_contract(self) -> None:
        inputs = {i.name for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        missing = [n for n in _OUTPUTS if n not in outputs]
        if inputs != set(_INPUTS) or missing:
            raise ModelLoadError(f"the prompt model does not follow the contract (inputs exactly {list(_INPUTS)}, outputs {list(_OUTPUTS)}); "
                                 f"it has inputs {sorted(inputs)}, outputs {sorted(outputs)}", path=str(self.path))

    def windows(self, rendered: Sequence[int], head: Sequence[int], tail: Sequence[int]) -> list[list[int]]:
        """``rendered`` cut into windows of at most ``max_tokens``, overlapping by half, each as head + part + tail."""
        if len(rendered) <= self.spec.max_tokens:
            return [list(rendered)]
        head_ids, body, tail_ids = split_rendering(rendered, head, tail)
        return overlapping_windows(head_ids, body, tail_ids, max(1, self.spec.max_tokens - len(head_ids) - len(tail_ids)))

    def classify(self, windows: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Risk probabilities (canonical order) and category probabilities for each window, in one call."""
        longest = max(len(w) for w in windows)
        ids = np.zeros((len(windows), longest), dtype=np.int64)
        mask = np.zeros((len(windows), longest), dtype=np.int64)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = window
            mask[row, : len(window)] = 1
        risk, category = self._session.run(list(_OUTPUTS), {"input_ids": ids, "attention_mask": mask})
        risk = _softmax(np.asarray(risk, dtype=np.float64))[:, self._risk_order]
        category = _softmax(np.asarray(category, dtype=np.float64))
        return [(risk[row], category[row]) for row in range(len(windows))]

    def __repr__(self) -> str:
        return f"PromptClassifier({self.file!r}, max_tokens={self.spec.max_tokens})"
