"""Choosing ONNX Runtime execution providers.

``cpu``, ``cuda`` and ``tensorrt`` are explicit: if the provider is not in the
installed onnxruntime (or fails to initialise) loading fails loudly instead of
silently running on the CPU. ``auto`` picks CUDA when usable, else the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from guardkit.errors import GuardkitError, ProviderUnavailableError

__all__ = ["Device", "import_onnxruntime", "providers_for"]

Device = Literal["auto", "cpu", "cuda", "tensorrt"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")

_PROVIDER_OF = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def import_onnxruntime() -> Any:
    """Import onnxruntime, explaining how to install it when it is missing."""
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise GuardkitError(
            "onnxruntime is not installed. Install guardkit with one runtime: "
            "pip install 'guardkit[cpu]' (CPU) or pip install 'guardkit[gpu]' (CUDA/TensorRT)"
        ) from exc
    return onnxruntime


def providers_for(device: str, *, fp16: bool = False, trt_cache_dir: Path | None = None) -> list[Any]:
    """ONNX Runtime provider list for ``device``; raises if an explicit one is unavailable."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    ort = import_onnxruntime()
    available = set(ort.get_available_providers())
    if device == "auto":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    wanted = _PROVIDER_OF[device]
    if wanted not in available:
        raise ProviderUnavailableError(
            f"device={device!r} needs {wanted}, but this onnxruntime only has {sorted(available)}. "
            "For CUDA/TensorRT install guardkit[gpu] (onnxruntime-gpu) in an environment without the CPU onnxruntime."
        )
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    trt_options: dict[str, Any] = {"trt_fp16_enable": fp16}
    if trt_cache_dir is not None:
        trt_cache_dir.mkdir(parents=True, exist_ok=True)
        trt_options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(trt_cache_dir))
    return [("TensorrtExecutionProvider", trt_options), "CUDAExecutionProvider", "CPUExecutionProvider"]


def check_active(device: str, active: list[str]) -> None:
    """ONNX Runtime falls back to the CPU when a GPU provider fails to start; refuse that for explicit devices."""
    if device in ("auto", "cpu"):
        return
    wanted = _PROVIDER_OF[device]
    if wanted not in active:
        raise ProviderUnavailableError(f"device={device!r}: {wanted} failed to initialise (active providers: {active})")
