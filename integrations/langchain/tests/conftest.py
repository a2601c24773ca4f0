"""Fixtures for the langchain-guardkit tests (names prefixed ``lc_`` to stay clear of tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:  # a checkout where langchain-guardkit is not installed
    import langchain_guardkit  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

pytest.importorskip("onnx")
pytest.importorskip("langchain_core")

from guardkit import Guard  # noqa: E402
from guardkit.testing import build_tiny_bundle  # noqa: E402


@pytest.fixture(scope="session")
def lc_tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("lc_tiny_bundle"))


@pytest.fixture(scope="session")
def lc_guard(lc_tiny_bundle: Path) -> Guard:
    return Guard(lc_tiny_bundle)
