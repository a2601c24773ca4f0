"""Helpers shared by the test modules (kept out of conftest.py so they can be imported)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shipped_bundles() -> list[Path]:
    """Model bundles shipped in the repository's models/ folder."""
    return sorted(p.parent for p in (REPO / "models").glob("*/guardkit.json"))
