"""The native strategy: the ONNX GRU op only where it is provably the same function, its
alpha/beta lists read alike by ONNX Runtime and TensorRT, one node per layer."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from gru_onnx import CustomGRU, ExportError, register_activation
from gru_onnx.activations import NativeActivation
from gru_onnx.compat import file_support
from gru_onnx.exporters.native import positional_parameters

import flat
from helpers import graph_export, numpy_reference, run_ort


@pytest.mark.parametrize(
    ("act", "rec", "named"),
    [("gelu", "sigmoid", "activation 'gelu'"), ("relu", "silu", "recurrent_activation 'silu'"),
     ("softplus(beta=2)", "sigmoid", "activation 'softplus(beta=2)'"), ("relu6", "sigmoid", "activation 'relu6'")],
)  # fmt: skip
def test_native_refuses_what_onnx_cannot_express(act, rec, named, tmp_path):
    gru = CustomGRU(3, 4, activation=act, recurrent_activation=rec)
    with pytest.raises(ExportError, match=re.escape(f"native ONNX GRU op cannot express {named}")):
        flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="native")
    assert not (tmp_path / "m.onnx").exists()


def test_native_relu_hard_sigmoid_is_one_gru_node_per_layer(tmp_path):
    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", recurrent_activation="hard_sigmoid")
    x = torch.randn(5, 2, 3)
    result = graph_export(gru, (x,), tmp_path / "m.onnx", strategy="native")
    model = onnx.load(result.path)
    nodes = [n for n in model.graph.node if n.op_type == "GRU"]
    assert len(nodes) == 2
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs["activations"] == [b"HardSigmoid", b"Relu", b"HardSigmoid", b"Relu"]
    # By position for TensorRT, in order for ONNX Runtime: one list both read the same way.
    assert attrs["activation_alpha"] == pytest.approx([1 / 6] * 3)
    assert attrs["direction"] == b"bidirectional" and attrs["linear_before_reset"] == 1
    # The nn.GRU-layout originals are gone; only ONNX-layout weights remain.
    assert {t.name for t in model.graph.initializer} >= {"gru_W_l0", "gru_R_l0", "gru_B_l0"}
    assert not any(t.name.startswith("weight_") for t in model.graph.initializer)
    stack = result.metadata["stacks"][0]
    assert stack["weights"]["layout"] == "onnx_gru"
    runtimes = {r.runtime: r.status for r in file_support(result.metadata)}
    assert runtimes == {"onnxruntime-cpu": "yes", "onnxruntime-cuda": "fallback",
                        "onnxruntime-tensorrt": "yes", "openvino": "no", "onnxruntime-web": "yes",
                        "onnxruntime-node": "yes"}  # fmt: skip
    y, _ = run_ort(result.path, {"input": x.numpy()})
    np.testing.assert_allclose(y, numpy_reference(gru, x)[0], rtol=1e-4, atol=1e-5)


# Guards: softplus has no native form because ONNX Runtime's GRU kernel overflows where PyTorch does not
#   (trust review, item 1)
def test_onnxruntime_gru_softplus_overflows_where_pytorch_does_not():
    """Pins the runtime's behaviour that made softplus leave the native mapping."""
    hidden, x = 1, np.full((1, 1, 1), 100.0, np.float32)
    w = np.zeros((1, 3 * hidden, 1), np.float32)
    w[0, 2 * hidden, 0] = 1.0  # candidate pre-activation = x
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=hidden, activations=["Sigmoid", "Softplus"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.zeros((1, 3, 1), np.float32), "R")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    import onnxruntime as ort

    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})
    # z = sigmoid(0) = 0.5, n = softplus(100): PyTorch gives 100 (threshold 20), the kernel inf.
    assert np.isinf(y).all()
    assert torch.isfinite(0.5 * F.softplus(torch.tensor(100.0))).all()


# Guards: native refuses softplus, and the default check's larger input scales catch such a range bug (trust
#   review, item 1)
def test_native_refuses_softplus_and_the_default_check_catches_such_a_range_bug(tmp_path):
    gru = CustomGRU(16, 32, activation="softplus")
    with pytest.raises(ExportError, match="cannot express activation 'softplus'"):
        flat.export(gru, (torch.randn(20, 2, 16),), tmp_path / "n.onnx", strategy="native")
    # The old mapping, as a user could still register it: unit-scale inputs pass, the default
    # check (which also runs x10 and x100) does not.
    register_activation(
        "softplus_as_native", F.softplus, lambda op, x: op.Softplus(x),
        native=lambda _p: NativeActivation("Softplus"), overwrite=True,
    )  # fmt: skip
    gru = CustomGRU(16, 32, activation="softplus_as_native")
    x = torch.randn(20, 2, 16)
    path = graph_export(gru, (x,), tmp_path / "n.onnx", strategy="native", check=False).path
    assert flat.check_parity(gru, path, (x,), scales=(1.0,)).passed
    report = flat.check_parity(gru, path, (x,))
    assert not report.passed and any("NaN/Inf mismatch" in line for line in report.failures())


# Guards: activation_alpha/beta lists that TensorRT (by position) and ONNX Runtime (in order) read alike
#   (trust review, item 8)
@pytest.mark.parametrize(
    ("acts", "expected"),
    [
        ([NativeActivation("Sigmoid"), NativeActivation("LeakyRelu", 0.2)], [0.2, 0.2]),
        ([NativeActivation("LeakyRelu", 0.3), NativeActivation("Tanh")], [0.3]),
        ([NativeActivation("HardSigmoid", 0.2, 0.5), NativeActivation("Elu", 2.0)], [0.2, 2.0]),
        ([NativeActivation("Sigmoid"), NativeActivation("Relu")], []),
        ([NativeActivation("Sigmoid"), NativeActivation("LeakyRelu", 0.2)] * 2, [0.2, 0.2, 0.2, 0.2]),
    ],
)
def test_alpha_lists_read_the_same_by_position_and_in_order(acts, expected):
    values = positional_parameters(acts, "alpha")
    assert values == pytest.approx(expected)
    takers = [a.alpha for a in acts if a.alpha is not None]
    assert values[: len(takers)] == pytest.approx(takers)  # ONNX Runtime: in order, takers only
    for i, a in enumerate(acts):  # TensorRT: by position
        if a.alpha is not None and i < len(values):
            assert values[i] == pytest.approx(a.alpha)
