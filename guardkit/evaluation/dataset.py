"""The JSONL evaluation format: loading and validation with line numbers.

One JSON object per line::

    {"prompt": str?, "response": str?, "label": "safe"|"controversial"|"unsafe",
     "category": str?, "onset": int?}

* An item without a ``response`` is a *prompt item* (the label is the prompt's);
  otherwise it is a *response item* (the label is the response's, the prompt is
  context).
* ``category``: the harm category of a controversial/unsafe item (any string;
  canonical ids such as ``violent`` let ``calibrate`` fit per-category thresholds).
* ``onset``: character offset in ``response`` where the harm begins, when known.
* Other keys (``id``, ``source``, ...) are kept as metadata and otherwise ignored.
* Blank lines are skipped.

Malformed lines are reported as ``FILE:LINE: problem``; by default they are
skipped (and summarised), with ``strict=True`` the first one raises
:class:`DatasetError`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardkit.errors import GuardkitError

__all__ = ["BUILTIN_DATA", "LABELS", "Dataset", "DatasetError", "EvalItem", "LineProblem", "load_dataset"]

LABELS = ("safe", "controversial", "unsafe")
BUILTIN_DATA = Path(__file__).resolve().parent.parent / "evaldata" / "builtin.jsonl"
_KNOWN = ("prompt", "response", "label", "category", "onset")


class DatasetError(GuardkitError):
    """An evaluation file cannot be read, is empty, or (``--strict``) has a malformed line."""


@dataclass(frozen=True)
class LineProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class EvalItem:
    line: int
    label: str
    prompt: str | None = None
    response: str | None = None
    category: str | None = None
    onset: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> str:
        return "prompt" if self.response is None else "response"

    @property
    def positive(self) -> bool:
        """Ground truth for the binary metrics: unsafe vs the rest."""
        return self.label == "unsafe"


@dataclass
class Dataset:
    path: str
    sha256: str
    items: list[EvalItem]
    problems: list[LineProblem]
    lines: int

    @property
    def prompt_items(self) -> list[EvalItem]:
        return [x for x in self.items if x.kind == "prompt"]

    @property
    def response_items(self) -> list[EvalItem]:
        return [x for x in self.items if x.kind == "response"]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {"prompt": dict.fromkeys(LABELS, 0), "response": dict.fromkeys(LABELS, 0)}
        for item in self.items:
            out[item.kind][item.label] += 1
        return out

    def problem_summary(self, limit: int = 10) -> str:
        head = [f"{self.path}:{p.line}: {p.message}" for p in self.problems[:limit]]
        more = len(self.problems) - limit
        if more > 0:
            head.append(f"... and {more} more")
        return f"skipped {len(self.problems)} malformed line(s) of {self.path}:\n" + "\n".join("  " + h for h in head)


def _type_name(value: Any) -> str:
    return "null" if value is None else {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                                         "list": "array", "dict": "object"}.get(type(value).__name__, type(value).__name__)


def parse_item(obj: Any, line: int) -> EvalItem:
    """Validate one decoded JSON value; raise ``ValueError`` naming the problem."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {_type_name(obj)}")
    if "label" not in obj:
        raise ValueError("missing field 'label'")
    label = obj["label"]
    if not isinstance(label, str):
        raise ValueError(f"'label' must be a string, got {_type_name(label)}")
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r} (expected one of: {', '.join(LABELS)})")
    for key in ("prompt", "response", "category"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key!r} must be a string, got {_type_name(value)}")
    prompt, response, category = obj.get("prompt"), obj.get("response"), obj.get("category")
    if response is None and prompt is None:
        raise ValueError("missing field: an item needs a 'prompt', a 'response' or both")
    if response is not None and not response.strip():
        raise ValueError("'response' is empty")
    if response is None and not prompt.strip():  # type: ignore[union-attr]
        raise ValueError("'prompt' is empty (and there is no response)")
    onset = obj.get("onset")
    if onset is not None:
        if isinstance(onset, bool) or not isinstance(onset, int):
            raise ValueError(f"'onset' must be an integer, got {_type_name(onset)}")
        if response is None:
            raise ValueError("'onset' needs a 'response' (it is a character offset in the response)")
        if not 0 <= onset < len(response):
            raise ValueError(f"'onset' {onset} is outside the response (0..{len(response) - 1})")
    meta = {k: v for k, v in obj.items() if k not in _KNOWN}
    return EvalItem(line=line, label=label, prompt=prompt, response=response, category=category or None, onset=onset, meta=meta)


def load_dataset(path: str | Path, *, strict: bool = False) -> Dataset:
    """Read and validate an evaluation JSONL file.

    Raises:
        DatasetError: the file cannot be read, has no valid item, or (``strict``)
            has a malformed line (the message names the file and line).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 ({exc})") from None
    items: list[EvalItem] = []
    problems: list[LineProblem] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = LineProblem(number, f"bad JSON: {exc.msg} (column {exc.colno})")
        else:
            try:
                items.append(parse_item(obj, number))
                continue
            except ValueError as exc:
                problem = LineProblem(number, str(exc))
        if strict:
            raise DatasetError(f"{path}:{problem.line}: {problem.message}")
        problems.append(problem)
    if not items:
        detail = f" ({len(problems)} malformed line(s); first: line {problems[0].line}: {problems[0].message})" if problems else ""
        raise DatasetError(f"{path}: no valid evaluation items{detail}")
    return Dataset(path=str(path), sha256=digest, items=items, problems=problems, lines=len(lines))
