"""Where the shipped model bundles and policies live.

In a built wheel they are inside the package (``guardkit/_data``); in a source
checkout they are the top-level ``models/`` and ``policies/`` folders.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = "guardkit-mini"

_PACKAGE_DIR = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def builtin_policy_dir() -> Path:
    return _first_existing(_PACKAGE_DIR / "_data" / "policies", _PACKAGE_DIR.parent / "policies")


def builtin_model_dir() -> Path:
    return _first_existing(_PACKAGE_DIR / "_data" / "models", _PACKAGE_DIR.parent / "models")


def default_model_path() -> Path:
    return builtin_model_dir() / DEFAULT_MODEL
