"""OpenVINO on its CPU device, with the inference precision pinned to f32.

OpenVINO's CPU plugin runs f32 models in bf16 on CPUs with AVX512-BF16 unless told not to
(6e-3 error on a 200-step GRU against 2e-7 with the hint), so the hint is always set and the
report says so. Install with ``pip install gru-onnx[openvino]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gru_onnx.runners.base import Runner, RuntimeUnavailable


def openvino_problem() -> str | None:
    """Why OpenVINO cannot run here (not installed), or None; checked without importing it."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        return "OpenVINO not available: not installed (pip install gru-onnx[openvino])"
    return None


class OpenVINORunner(Runner):
    """OpenVINO Runtime, CPU device, ``INFERENCE_PRECISION_HINT=f32``."""

    name = "openvino"

    def __init__(self, path: Any) -> None:
        super().__init__(path)
        self._compiled: Any = None

    def _open(self) -> None:
        problem = openvino_problem()
        if problem:
            raise RuntimeUnavailable(problem)
        import openvino as ov

        core = ov.Core()
        if "CPU" not in core.available_devices:  # pragma: no cover - CPU is always there
            raise RuntimeUnavailable("OpenVINO not available: no CPU device")
        model = core.read_model(str(self.path))
        self._compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.notes.append("precision pinned: INFERENCE_PRECISION_HINT=f32")

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._compiled(feeds)
        return [np.asarray(result[port]) for port in self._compiled.outputs]

    def _close(self) -> None:
        self._compiled = None
