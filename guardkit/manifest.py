"""The model bundle manifest (``guardkit.json``) and its integrity checks."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import posixpath
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardkit.errors import ModelLoadError
from guardkit.verdict import CATEGORIES, RISK_LEVELS

__all__ = ["FileEntry", "Manifest", "PromptModelSpec", "ReplyCheckSpec", "StateSpec", "Template", "bundle_file", "load_manifest", "sha256_of"]

MANIFEST_NAME = "guardkit.json"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few KB; refuse to parse anything huge
_ORT_MEMORY_MARKER = "_ORT_MEM_ADDR_"  # ONNX Runtime reads a "location" holding this from process memory, not a file

_CONFIG = ConfigDict(extra="forbid", frozen=True)


class FileEntry(BaseModel):
    model_config = _CONFIG
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class StateSpec(BaseModel):
    """Shape of the KV state: ``past_key_values.{i}.key`` is [batch, num_kv_heads, past, head_dim]."""

    model_config = _CONFIG
    num_layers: int = Field(ge=0)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    dtype: Literal["float32", "float16"] = "float32"


class Template(BaseModel):
    """How a prompt and a response become guard tokens.

    ``prompt`` is rendered with ``{prompt}`` replaced by the user's text and
    tokenized without extra special tokens; the prompt verdict is read at its
    last token. ``response_prefix`` is fed next (not judged); then the response.
    """

    model_config = _CONFIG
    prompt: str = Field(min_length=1)
    response_prefix: str = ""


class ReplyCheckSpec(BaseModel):
    """A classifier also judges replies (see :mod:`guardkit.reply_check`).

    Its presence says the classifier was trained on replies;
    ``unsafe_logit_offset`` is added to its unsafe logit when it judges a reply
    (the graph's own calibration is the prompt's), so that the policy's
    response thresholds mean the same for it as for the stream model.

    ``file`` names a graph of its own for replies, with the prompt classifier's
    contract, ``max_tokens``, labels and categories; without it the prompt
    classifier judges replies too. Two graphs let a bundle ship a prompt
    classifier that was never trained on replies (training one graph on both
    cost prompt recall: the guardkit-mini model card, 0.8).
    """

    model_config = _CONFIG
    unsafe_logit_offset: float = Field(0.0, ge=-20.0, le=20.0, allow_inf_nan=False)
    file: str | None = None


class PromptModelSpec(BaseModel):
    """An optional second graph that judges whole prompts (see :mod:`guardkit.prompt_model`).

    ``file`` takes the template's rendering of the prompt as ``input_ids`` and
    ``attention_mask`` ([batch, seq]) and returns ``risk_logits`` [batch, 3] and
    ``category_logits`` [batch, len(categories)]; renderings longer than
    ``max_tokens`` are judged in overlapping windows. With ``reply_check`` it
    also judges the reply so far, rendered the same way.
    """

    model_config = _CONFIG
    file: str
    max_tokens: int = Field(ge=8, le=65536)
    risk_labels: tuple[str, ...]
    categories: tuple[str, ...]
    reply_check: ReplyCheckSpec | None = None

    @property
    def reply_file(self) -> str | None:
        """The graph that judges replies: ``reply_check.file``, else this one (None: no reply check)."""
        return None if self.reply_check is None else self.reply_check.file or self.file


class Manifest(BaseModel):
    model_config = _CONFIG
    format_version: int
    name: str
    version: str
    license: str
    description: str = ""
    model_file: str = "model.onnx"
    tokenizer_file: str = "tokenizer.json"
    files: dict[str, FileEntry]
    risk_labels: tuple[str, ...]
    categories: tuple[str, ...]
    prompt_risk_labels: tuple[str, ...] | None = None
    prompt_categories: tuple[str, ...] | None = None
    max_positions: int = Field(ge=8)
    state: StateSpec
    template: Template
    prompt_model: PromptModelSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> Manifest:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {self.format_version}; this guardkit reads {FORMAT_VERSION}")
        classifier = self.prompt_model
        for field, labels in (("risk_labels", self.risk_labels), ("prompt_risk_labels", self.prompt_risk_labels),
                              ("prompt_model.risk_labels", classifier.risk_labels if classifier else None)):
            if labels is not None and sorted(labels) != sorted(RISK_LEVELS):
                raise ValueError(f"{field} must be a permutation of {list(RISK_LEVELS)}, got {list(labels)}")
        for field, cats in (("categories", self.categories), ("prompt_categories", self.prompt_categories),
                            ("prompt_model.categories", classifier.categories if classifier else None)):
            unknown = [c for c in cats or () if c not in CATEGORIES]
            if unknown:
                raise ValueError(f"{field} holds non-canonical ids {unknown}; canonical: {list(CATEGORIES)}")
        for name in self.files:
            problem = _unsafe_name(name)
            if problem:
                raise ValueError(f"files: {name!r} {problem}")
        for required in self.graph_files + (self.tokenizer_file,):
            if required not in self.files:
                raise ValueError(f"files has no entry for {required!r}")
        return self

    @property
    def graph_files(self) -> tuple[str, ...]:
        """The ONNX files of the bundle: the stream model, then the prompt model and the reply model if there are."""
        classifier = self.prompt_model
        files = (self.model_file,) + ((classifier.file, classifier.reply_file) if classifier else ())
        return tuple(dict.fromkeys(f for f in files if f))


def _unsafe_name(name: str) -> str | None:
    """Why a manifest file name could point outside its bundle (None when it is a plain relative path)."""
    if not name or "\x00" in name:
        return "is not a file name"
    if "\\" in name or PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "must be a relative path inside the bundle (forward slashes, no drive)"
    if any(part in ("..", ".", "") for part in name.split("/")):
        return "must be a normalised relative path inside the bundle (no '..', '.' or empty parts)"
    if _ORT_MEMORY_MARKER in name:
        return f"holds {_ORT_MEMORY_MARKER!r}, which ONNX Runtime reads as a memory address"
    return None


def bundle_file(bundle_dir: Path, name: str) -> Path:
    """The file ``name`` of a bundle, after checking it stays inside the bundle.

    ``name`` must be a plain relative path, and the path it resolves to
    (symbolic links followed) must lie inside the resolved bundle directory.
    Nothing about a file outside the bundle is looked at or reported.

    Raises:
        ModelLoadError: the name is absolute, climbs out with ``..``, or resolves outside the bundle.
    """
    problem = _unsafe_name(name)
    if problem:
        raise ModelLoadError(f"{name!r} {problem}", path=str(bundle_dir))
    root = bundle_dir.resolve()
    try:
        resolved = (bundle_dir / name).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise ModelLoadError(f"{name!r} cannot be resolved (symbolic link loop?)", path=str(bundle_dir)) from None
    if resolved != root and root not in resolved.parents:
        raise ModelLoadError(f"{name!r} resolves outside the bundle directory (a symbolic link or path leading out of it)",
                             path=str(bundle_dir))
    return resolved


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(bundle_dir: Path, *, verify: bool = True) -> Manifest:
    """Read and validate ``guardkit.json``; with ``verify`` check every file's size and sha256.

    Every file the manifest lists must resolve inside the bundle directory
    (checked with or without ``verify``), and every external-data file the
    model file refers to must be one of them.

    Raises:
        ModelLoadError: naming the file at fault.
    """
    if not bundle_dir.is_dir():
        raise ModelLoadError("model bundle directory not found", path=str(bundle_dir))
    manifest_path = bundle_dir / MANIFEST_NAME
    raw = _read_manifest_json(manifest_path)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ModelLoadError(f"{field}: {message}" if field else message, path=str(manifest_path)) from None
    except RecursionError:
        raise ModelLoadError("the manifest is nested too deeply", path=str(manifest_path)) from None
    resolved = {name: bundle_file(bundle_dir, name) for name in manifest.files}
    for name, path in resolved.items():
        if not path.is_file():
            kind = "is not a regular file" if path.exists() else "is missing"
            raise ModelLoadError(f"file listed in the manifest {kind}", path=str(bundle_dir / name))
    if verify:
        for name, entry in manifest.files.items():
            path = resolved[name]
            size = path.stat().st_size
            if size != entry.bytes:
                raise ModelLoadError(f"size {size} differs from the manifest's {entry.bytes} (corrupt or replaced file)", path=str(bundle_dir / name))
            if sha256_of(path) != entry.sha256:
                raise ModelLoadError("sha256 differs from the manifest (corrupt or replaced file)", path=str(bundle_dir / name))
    for graph in manifest.graph_files:
        _check_external_data(bundle_dir, graph, resolved)
    return manifest


def _read_manifest_json(manifest_path: Path) -> object:
    """The manifest's JSON value; every way of failing is one ModelLoadError line."""
    where = str(manifest_path)
    try:
        if manifest_path.is_dir():
            raise ModelLoadError(f"{MANIFEST_NAME} is a directory, not a file", path=where)
        with manifest_path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ModelLoadError(f"not a guardkit model bundle: {MANIFEST_NAME} is missing", path=where) from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read the manifest: {exc.strerror or exc}", path=where) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ModelLoadError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes", path=where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"the manifest is not UTF-8 text (byte {exc.start})", path=where) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"invalid JSON: {exc}", path=where) from None
    except RecursionError:
        raise ModelLoadError("invalid manifest: JSON nested too deeply", path=where) from None


def _check_external_data(bundle_dir: Path, model_file: str, resolved: dict[str, Path]) -> None:
    """Every external-data file an ONNX graph names must be a file the manifest lists (and so hashes)."""
    from guardkit._onnx_refs import OnnxParseError, external_data_locations

    model_path = resolved[model_file]
    try:
        with model_path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise OnnxParseError("the file is empty")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:  # no copy of a large graph
                locations = external_data_locations(data)
    except OnnxParseError as exc:
        raise ModelLoadError(f"not a valid ONNX model file: {exc}", path=str(bundle_dir / model_file)) from None
    listed = {path: name for name, path in resolved.items()}
    # ONNX Runtime resolves a location against the directory of the model path it was given
    model_dir = PurePosixPath(model_file).parent
    for location in locations:
        where = str(bundle_dir / model_file)
        name = posixpath.normpath(str(model_dir / location)) if location and "\\" not in location else ""
        if _unsafe_name(name) is not None:
            raise ModelLoadError(f"the model's external data {location!r} is not a plain relative path inside the bundle", path=where)
        if bundle_file(bundle_dir, name) not in listed:
            raise ModelLoadError(
                f"the model reads external data from {location!r}, which the manifest does not list (so it is not hashed)", path=where
            )


def file_entry(path: Path) -> dict[str, object]:
    """The manifest entry for ``path`` (used by bundle writers)."""
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}
