"""Export tools: turn an upstream checkpoint into a guardkit model bundle.

Nothing here is imported by the runtime. The heavy dependencies (torch,
safetensors, onnx) come from the ``export`` extra and are imported lazily, so
``import guardkit.export`` works everywhere and a missing dependency becomes a
clear :class:`ExportError` naming the extra to install.

Exporters:

- ``qwen3guard-stream``: Qwen3Guard-Stream (0.6B / 4B / 8B) with the KV cache
  in and out of one ONNX graph (:func:`export_qwen3guard_stream`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from guardkit.errors import GuardkitError

__all__ = ["ExportError", "export_qwen3guard_stream", "require"]

INSTALL_HINT = "pip install 'guardkit[export]'"


class ExportError(GuardkitError):
    """An export could not run: bad source checkpoint, bad option or a missing dependency."""


def require(*modules: str) -> None:
    """Import ``modules`` or raise :class:`ExportError` telling how to install them."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(f"the export tools need {', '.join(missing)}: {INSTALL_HINT}")


def export_qwen3guard_stream(src: str | Path, out: str | Path, **options: Any) -> Any:
    """Export a local Qwen3Guard-Stream checkpoint to a guardkit bundle (see :mod:`guardkit.export.qwen3guard`)."""
    require("numpy", "onnx", "torch", "safetensors")
    from guardkit.export.qwen3guard import export_qwen3guard_stream as run

    return run(src, out, **options)
