"""Runners: one small adapter per runtime, all with the same interface (open, run, close).

``RUNNERS`` maps a provider key (what ``--provider`` takes) to a factory ``(path) -> Runner``;
heavy imports happen when a runner opens, so a missing runtime only makes its own runner
unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gru_onnx.runners.base import Runner, RuntimeUnavailable
from gru_onnx.runners.onnxruntime import OnnxRuntimeRunner
from gru_onnx.runners.openvino import OpenVINORunner

RUNNERS: dict[str, Callable[[Path], Runner]] = {
    "cpu": lambda path: OnnxRuntimeRunner(path, "cpu"),
    "cuda": lambda path: OnnxRuntimeRunner(path, "cuda"),
    "tensorrt": lambda path: OnnxRuntimeRunner(path, "tensorrt"),
    "openvino": OpenVINORunner,
}
ALL = tuple(RUNNERS)


def unavailable_reason(key: str) -> str | None:
    """Why runtime ``key`` cannot run on this machine (checked without a file), or None."""
    import importlib.util

    if key == "openvino":
        if importlib.util.find_spec("openvino") is None:
            return "OpenVINO not available: not installed (pip install gru-onnx[openvino])"
        return None
    if key == "cpu":
        return None
    import onnxruntime as ort

    from gru_onnx.runners.onnxruntime import DISPLAY, PROVIDERS, cuda_device_problem

    label = DISPLAY[key]
    if PROVIDERS[key] not in ort.get_available_providers():
        return f"{label} execution provider not available: this onnxruntime build does not include it"
    problem = cuda_device_problem()
    return f"{label} execution provider not available: {problem}" if problem else None


__all__ = [
    "ALL",
    "RUNNERS",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "Runner",
    "RuntimeUnavailable",
    "unavailable_reason",
]
