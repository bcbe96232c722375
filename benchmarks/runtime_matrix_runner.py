"""Run one file of the runtime matrix on one runtime; stdlib + NumPy + that runtime only.

``benchmarks/runtime_matrix.py`` calls this script with the Python of a throwaway virtual
environment that holds one ONNX Runtime or OpenVINO release and no torch, once per file (a
runtime that crashes on a file takes only that file down):

    python runtime_matrix_runner.py onnxruntime CASE.json OUT.npz

``CASE.json`` names the model file, its inputs (an ``.npz``) and, for a streaming file, the
plan read from its metadata (state pairs, time axes, chunk lengths): the states start at zero
and each chunk's final states feed the next chunk. The outputs go to ``OUT.npz`` by output name;
one JSON line on stdout says what happened: ``{"version", "numpy", "stage", "error"}`` where
``stage`` is ``"ran"``, or ``"load"``/``"run"`` with the error message.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


class OnnxRuntime:
    """ONNX Runtime's CPU provider."""

    def __init__(self, path: str) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds), strict=True))


class OpenVINO:
    """OpenVINO's CPU device, f32 inference precision, compiled for the feeds' static shapes
    (as ``gru_onnx.runners.openvino`` runs it)."""

    def __init__(self, path: str) -> None:
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(path)
        self.compiled: dict[Any, Any] = {}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        key = tuple(sorted((name, array.shape) for name, array in feeds.items()))
        if key not in self.compiled:
            model = self.model.clone()
            dynamic = {p.get_any_name(): list(feeds[p.get_any_name()].shape) for p in model.inputs
                       if p.get_partial_shape().is_dynamic}  # fmt: skip
            if dynamic:
                model.reshape(dynamic)
            self.compiled[key] = self.core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        compiled = self.compiled[key]
        result = compiled(feeds)
        return {port.get_any_name(): np.asarray(result[port]) for port in compiled.outputs}


RUNTIMES = {"onnxruntime": OnnxRuntime, "openvino": OpenVINO}


def version(runtime: str) -> str:
    if runtime == "onnxruntime":
        import onnxruntime

        return onnxruntime.__version__
    import openvino

    return openvino.__version__ if hasattr(openvino, "__version__") else openvino.runtime.get_version()


def run_stream(session: Any, feeds: dict[str, np.ndarray], plan: dict[str, Any]) -> dict[str, np.ndarray]:
    """The file chunk by chunk, each chunk's final states fed to the next; outputs with a time
    axis joined along it, the others taken from the last chunk."""
    batch = next(iter(feeds.values())).shape[plan["batch_axis"]]
    states = {p["input"]: np.zeros([batch, *p["shape"][1:]], np.float32) for p in plan["states"]}
    pieces: dict[str, list[np.ndarray]] = {}
    start = 0
    for length in plan["chunks"]:
        chunk = {}
        for name, array in feeds.items():
            axis = plan["input_axes"].get(name)
            chunk[name] = array if axis is None else np.take(array, range(start, start + length), axis=axis)
        outputs = session.run({**chunk, **states})
        for pair in plan["states"]:
            states[pair["input"]] = outputs.pop(pair["output"])
        for name, value in outputs.items():
            pieces.setdefault(name, []).append(value)
        start += length
    joined = {}
    for name, values in pieces.items():
        axis = plan["output_axes"].get(name)
        joined[name] = values[-1] if axis is None else np.concatenate(values, axis=axis)
    return joined


def main(runtime: str, case_path: str, out_path: str) -> dict[str, Any]:
    with open(case_path) as f:
        case = json.load(f)
    report: dict[str, Any] = {"version": version(runtime), "numpy": np.__version__, "stage": "load", "error": None}
    try:
        session = RUNTIMES[runtime](case["file"])
        report["stage"] = "run"
        with np.load(case["inputs"]) as stored:
            feeds = {name: stored[name] for name in stored.files}
        plan = case.get("stream")
        outputs = run_stream(session, feeds, plan) if plan else session.run(feeds)
        np.savez(out_path, **outputs)
        report["stage"] = "ran"
    except Exception as exc:  # every failure is a result here
        report["error"] = f"{type(exc).__name__}: {exc}"[:4000]  # the report picks the telling line
    return report


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
