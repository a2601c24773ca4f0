"""Helpers shared by the test modules (kept out of conftest.py so they can be imported)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def recipe_module(name: str) -> ModuleType:
    """Load one guardkit-mini recipe script by path; its sibling imports resolve while it loads, then the path goes."""
    import importlib.util
    import sys

    recipe = REPO / "models" / "guardkit-mini" / "recipe"
    spec = importlib.util.spec_from_file_location(f"guardkit_mini_recipe_{name}", recipe / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(recipe))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(recipe))
    return module


def shipped_bundles() -> list[Path]:
    """Model bundles shipped in the repository's models/ folder."""
    return sorted(p.parent for p in (REPO / "models").glob("*/guardkit.json"))


def same_verdict(a: object, b: object, atol: float = 1e-4) -> bool:
    """Verdicts agree: every field equal, the scores within ``atol`` (float noise across chunk sizes)."""
    from dataclasses import fields

    for f in fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "scores":
            if set(x) != set(y) or any(abs(x[k] - y[k]) > atol for k in x):
                return False
        elif x != y:
            return False
    return True


def run_session(guard: object, pieces: list[str], prompt: str | None = None) -> tuple[str, object, list[object]]:
    """Feed ``pieces`` to a fresh session of ``guard`` and finish: (released text, verdict, events)."""
    from guardkit import Released

    session = guard.session(prompt)  # type: ignore[attr-defined]
    events: list[object] = []
    for piece in pieces:
        events += session.feed(piece)
    events += session.finish()
    released = "".join(e.text for e in events if isinstance(e, Released))  # type: ignore[attr-defined]
    return released, session.verdict, events
