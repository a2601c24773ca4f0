"""The model bundle manifest (``guardkit.json``) and its integrity checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardkit.errors import ModelLoadError
from guardkit.verdict import CATEGORIES, RISK_LEVELS

__all__ = ["FileEntry", "Manifest", "StateSpec", "Template", "load_manifest", "sha256_of"]

MANIFEST_NAME = "guardkit.json"
FORMAT_VERSION = 1

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

    @model_validator(mode="after")
    def _check(self) -> Manifest:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {self.format_version}; this guardkit reads {FORMAT_VERSION}")
        for field, labels in (("risk_labels", self.risk_labels), ("prompt_risk_labels", self.prompt_risk_labels)):
            if labels is not None and sorted(labels) != sorted(RISK_LEVELS):
                raise ValueError(f"{field} must be a permutation of {list(RISK_LEVELS)}, got {list(labels)}")
        for field, cats in (("categories", self.categories), ("prompt_categories", self.prompt_categories)):
            unknown = [c for c in cats or () if c not in CATEGORIES]
            if unknown:
                raise ValueError(f"{field} holds non-canonical ids {unknown}; canonical: {list(CATEGORIES)}")
        for required in (self.model_file, self.tokenizer_file):
            if required not in self.files:
                raise ValueError(f"files has no entry for {required!r}")
        return self


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(bundle_dir: Path, *, verify: bool = True) -> Manifest:
    """Read and validate ``guardkit.json``; with ``verify`` check every file's size and sha256.

    Raises:
        ModelLoadError: naming the file at fault.
    """
    if not bundle_dir.is_dir():
        raise ModelLoadError("model bundle directory not found", path=str(bundle_dir))
    manifest_path = bundle_dir / MANIFEST_NAME
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"not a guardkit model bundle: {MANIFEST_NAME} is missing", path=str(manifest_path)) from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"invalid JSON: {exc}", path=str(manifest_path)) from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ModelLoadError(f"{field}: {first['msg']}" if field else first["msg"], path=str(manifest_path)) from None
    if verify:
        for name, entry in manifest.files.items():
            path = bundle_dir / name
            if not path.is_file():
                raise ModelLoadError("file listed in the manifest is missing", path=str(path))
            size = path.stat().st_size
            if size != entry.bytes:
                raise ModelLoadError(f"size {size} differs from the manifest's {entry.bytes} (corrupt or replaced file)", path=str(path))
            if sha256_of(path) != entry.sha256:
                raise ModelLoadError("sha256 differs from the manifest (corrupt or replaced file)", path=str(path))
    return manifest


def file_entry(path: Path) -> dict[str, object]:
    """The manifest entry for ``path`` (used by bundle writers)."""
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}
