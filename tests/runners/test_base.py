"""The runner interface (``gru_onnx.runners.base``): a context manager that opens, runs and
closes; a runtime this machine lacks says why; a crash while opening reaches stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gru_onnx.runners import RUNNERS, RuntimeUnavailable
from gru_onnx.runners import onnxruntime as ort_runner
from gru_onnx.runners.base import Runner
from gru_onnx.runners.onnxruntime import cuda_device_problem


def test_runner_interface_and_missing_runtimes(exported):
    _, x, path = exported
    with RUNNERS["cpu"](path) as runner:
        y, h_n = runner.run({"input": x.numpy()})
    assert y.shape == (12, 2, 12) and h_n.shape == (4, 2, 6)
    if cuda_device_problem() is not None:
        with pytest.raises(RuntimeUnavailable, match="CUDA execution provider not available"):
            RUNNERS["cuda"](path).open()


def _transpose_matmul(perm: list[int]) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 5)).astype(np.float16), "W")
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=perm), helper.make_node("MatMul", ["t", "W"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["a", "b", "c"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)], [w],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


# Guards: a crash of ONNX Runtime while a runner opens a file reaches stderr, not a silent exit (trust review,
#   item 6)
def test_a_crash_while_a_runner_opens_reaches_stderr(tmp_path):
    onnx.save(_transpose_matmul([1, 0, 2]), tmp_path / "crash.onnx")
    code = (
        "from gru_onnx.runners import RUNNERS; "
        f"RUNNERS['cpu']({str(tmp_path / 'crash.onnx')!r}).open()"
    )
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "Segmentation fault" in proc.stderr


class _Partial(Runner):  # opens a resource, then fails
    name = "partial"

    def __init__(self, path):
        super().__init__(path)
        self.held = None
        self.closed = 0

    def _open(self):
        self.held = "a process"
        raise RuntimeError("the runtime refused the file")

    def _run(self, feeds):  # pragma: no cover - never opened
        return []

    def _close(self):
        self.closed += 1
        self.held = None


# Guards: a runner whose opening failed partway kept what it had acquired (attack review: left alone
#   in the 2026-11-29 note), e.g. the CUDA runner's NVIDIA_TF32_OVERRIDE=0 for the rest of the process
def test_a_runner_that_fails_while_opening_releases_what_it_held(tmp_path, monkeypatch):
    runner = _Partial(tmp_path / "m.onnx")
    with pytest.raises(RuntimeError, match="refused"):
        runner.open()
    assert runner.held is None and runner.closed == 1
    runner.close()  # never opened: nothing more to release
    assert runner.closed == 1

    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    monkeypatch.setattr(ort_runner, "provider_problem", lambda provider: None)  # as if a GPU were there
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    cuda = RUNNERS["cuda"](tmp_path / "bad.onnx")
    with pytest.raises(Exception):  # noqa: B017 - ONNX Runtime's own error type
        cuda.open()
    assert "NVIDIA_TF32_OVERRIDE" not in os.environ
