"""Runners: one small adapter per runtime, all with the same interface (open, run, close).

``RUNNERS`` maps a provider key (what ``--provider`` takes) to a factory ``(path) -> Runner``;
heavy imports happen when a runner opens, so a missing runtime only makes its own runner
unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gru_onnx.runners.base import Runner, RuntimeUnavailable
from gru_onnx.runners.onnxruntime import OnnxRuntimeRunner, provider_problem
from gru_onnx.runners.openvino import OpenVINORunner, openvino_problem

RUNNERS: dict[str, Callable[[Path], Runner]] = {
    "cpu": lambda path: OnnxRuntimeRunner(path, "cpu"),
    "cuda": lambda path: OnnxRuntimeRunner(path, "cuda"),
    "tensorrt": lambda path: OnnxRuntimeRunner(path, "tensorrt"),
    "openvino": OpenVINORunner,
}
ALL = tuple(RUNNERS)


def unavailable_reason(key: str) -> str | None:
    """Why runtime ``key`` cannot run on this machine (checked without a file), or None."""
    return openvino_problem() if key == "openvino" else provider_problem(key)


__all__ = [
    "ALL",
    "RUNNERS",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "Runner",
    "RuntimeUnavailable",
    "unavailable_reason",
]
