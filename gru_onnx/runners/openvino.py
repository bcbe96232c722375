"""OpenVINO on its CPU device, with the inference precision pinned to f32.

OpenVINO's CPU plugin runs f32 models in bf16 on CPUs with AVX512-BF16 unless told not to
(6e-3 error on a 200-step GRU against 2e-7 with the hint), so the hint is always set and the
report says so. The model is compiled for the static shapes of the feeds it is given (once per
set of shapes): OpenVINO runs a file with dynamic axes far slower than the same file reshaped
(20x against 1.2x ONNX Runtime's fused GRU op for an unrolled file, issue 10). Install with
``pip install gru-onnx[openvino]``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from gru_onnx.runners.base import Runner, RuntimeUnavailable


def openvino_problem() -> str | None:
    """Why OpenVINO cannot run here (not installed), or None; checked without importing it."""
    if importlib.util.find_spec("openvino") is None:
        return "OpenVINO not available: not installed (pip install gru-onnx[openvino])"
    return None


class OpenVINORunner(Runner):
    """OpenVINO Runtime, CPU device, ``INFERENCE_PRECISION_HINT=f32``."""

    name = "openvino"

    def __init__(self, path: Any, *, threads: int | None = None) -> None:
        super().__init__(path, threads=threads)
        self._core: Any = None
        self._model: Any = None
        self._compiled: dict[tuple[tuple[str, tuple[int, ...]], ...], Any] = {}

    def _open(self) -> None:
        problem = openvino_problem()
        if problem:
            raise RuntimeUnavailable(problem)
        import openvino as ov

        core = ov.Core()
        if "CPU" not in core.available_devices:  # pragma: no cover - CPU is always there
            raise RuntimeUnavailable("OpenVINO not available: no CPU device")
        self._core = core
        self._model = core.read_model(str(self.path))
        self.notes.append("precision pinned: INFERENCE_PRECISION_HINT=f32")
        if any(port.get_partial_shape().is_dynamic for port in self._model.inputs):
            self.notes.append("compiled for the feeds' static shapes")

    def _compile(self, feeds: dict[str, np.ndarray]) -> Any:
        """The model compiled for these feeds' shapes (reshaped where its axes are dynamic)."""
        key = tuple(sorted((name, tuple(array.shape)) for name, array in feeds.items()))
        if key not in self._compiled:
            model = self._model.clone()
            dynamic = {p.get_any_name(): list(feeds[p.get_any_name()].shape) for p in model.inputs
                       if p.get_partial_shape().is_dynamic and p.get_any_name() in feeds}  # fmt: skip
            if dynamic:
                model.reshape(dynamic)
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
            if self.threads is not None:
                config["INFERENCE_NUM_THREADS"] = self.threads
            self._compiled[key] = self._core.compile_model(model, "CPU", config)
        return self._compiled[key]

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        compiled = self._compile(feeds)
        result = compiled(feeds)
        return [np.asarray(result[port]) for port in compiled.outputs]

    def _timed(self, feeds: dict[str, np.ndarray]) -> Any:
        request = self._compile(feeds).create_infer_request()
        return lambda: request.infer(feeds)

    def _close(self) -> None:
        self._compiled = {}
        self._model = self._core = None
