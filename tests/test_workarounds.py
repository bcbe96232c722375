"""Rewrites that route around runtime bugs (``gru_onnx.workarounds``): the ONNX Runtime crash on a
float16 Transpose feeding a MatMul, pinned, and the exact rewrite that avoids it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from gru_onnx import CustomGRU
from gru_onnx.workarounds import matmul_before_transpose

import flat
from helpers import run_ort


def _fresh_session(path) -> subprocess.CompletedProcess:
    """Open ``path`` in a default ONNX Runtime session in a new process (a crash kills only it)."""
    code = f"import onnxruntime as ort; ort.InferenceSession({str(path)!r}); print('loaded')"
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True)


def _transpose_matmul(perm: list[int]) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 5)).astype(np.float16), "W")
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=perm), helper.make_node("MatMul", ["t", "W"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["a", "b", "c"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)], [w],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


# Guards: the ONNX Runtime bug the rewrite routes around is still there; when this fails, ORT fixed it (trust
#   review, item 6)
@pytest.mark.parametrize("perm", [[1, 0, 2], [1, 2, 0]])
def test_onnxruntime_still_crashes_on_float16_transpose_matmul(perm, tmp_path):
    """Pins the ONNX Runtime bug the rewrite routes around (when this fails, ORT fixed it)."""
    onnx.save(_transpose_matmul(perm), tmp_path / "crash.onnx")
    proc = _fresh_session(tmp_path / "crash.onnx")
    assert proc.returncode != 0 and "Segmentation fault" in proc.stderr


# Guards: the MatMul-before-Transpose rewrite loads and computes the same (trust review, item 6)
@pytest.mark.parametrize("perm", [[1, 0, 2], [1, 2, 0]])
def test_the_rewrite_loads_and_computes_the_same(perm, tmp_path):
    import onnx_ir as ir

    model = ir.from_proto(_transpose_matmul(perm))
    assert matmul_before_transpose(model.graph) == 1
    onnx.save(ir.to_proto(model), tmp_path / "fixed.onnx")
    assert _fresh_session(tmp_path / "fixed.onnx").returncode == 0
    shape = [0, 0, 0]
    shape[perm[2]], shape[perm[0]], shape[perm[1]] = 8, 3, 2  # the contracted axis meets W's 8 rows
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float16)
    w = onnx.numpy_helper.to_array(_transpose_matmul(perm).graph.initializer[0])
    (y,) = run_ort(tmp_path / "fixed.onnx", {"x": x})
    np.testing.assert_allclose(y, np.transpose(x, perm).astype(np.float32) @ w.astype(np.float32), rtol=2e-3, atol=2e-3)


# Guards: a float16 GRU followed by nn.Linear loads in a default ONNX Runtime session (trust review, item 6)
def test_a_float16_gru_followed_by_linear_loads_in_a_default_session(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = CustomGRU(4, 6, batch_first=True, activation="relu")
            self.head = nn.Linear(6, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    result = flat.export(Net(), (torch.randn(2, 5, 4),), tmp_path / "h.onnx", dtype="float16", check=False)
    proc = _fresh_session(result.path)
    assert proc.returncode == 0, proc.stderr[-2000:]
