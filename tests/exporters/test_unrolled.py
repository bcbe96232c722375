"""The unrolled strategy: ONNX Runtime's results against NumPy, nn.GRU and ONNX Runtime's own
GRU op, every activation as candidate and gate, and what each time step costs.

Written at the graph level (``helpers.graph_export``: the same file export writes, without
torch.export; see ``exporters/test_strategies.py``).
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
from onnx import helper
from torch import nn

from gru_onnx.activations import list_activations

from helpers import export_and_run, inputs, make, numpy_reference, run_ort, small_export

#: layers, bidirectional, batch_first, with h0
SHAPES = [(1, False, False, False), (2, True, True, True), (3, False, False, True), (2, True, False, False)]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "with_h0"), SHAPES)
def test_shapes_and_reset_forms_match_numpy(layers, bidirectional, batch_first, with_h0, reset_after, tmp_path):
    gru = make(
        layers,
        bidirectional,
        batch_first,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        reset_after=reset_after,
    )
    args = inputs(gru, with_h0=with_h0)
    result, (y, h_n) = export_and_run(gru, args, tmp_path)
    want_y, want_h = numpy_reference(gru, *args)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    assert result.parity is not None and result.parity.passed
    assert result.parity.max_abs < 1e-5 * 100  # the check runs inputs up to x100; atol scales with them


@pytest.mark.parametrize("name", sorted(name for name, _, _ in list_activations()))
def test_every_registered_activation_exports_as_candidate_and_gate(name, tmp_path):
    gru = make(2, True, activation=name, recurrent_activation=name if name != "linear" else "sigmoid")
    args = inputs(gru, seq=4)
    result, (y, h_n) = export_and_run(gru, args, tmp_path)
    want_y, want_h = numpy_reference(gru, *args)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    assert result.passed


def test_tanh_export_equals_nn_gru(tmp_path):
    ref = nn.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    gru = make(2, True, True)
    gru.load_state_dict(ref.state_dict())
    args = inputs(gru, with_h0=True)
    _, (y, h_n) = export_and_run(gru, args, tmp_path)
    want_y, want_h = ref(*args)
    np.testing.assert_allclose(y, want_y.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n, want_h.detach().numpy(), rtol=1e-5, atol=1e-6)


def onnx_gru_op_reference(gru, x, native_f, native_g, tmp_path):
    """ONNX Runtime's own GRU op (one node per layer is enough for one layer) on gru's weights."""
    spec = gru.spec
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}

    def zrh(w):  # PyTorch r, z, n -> ONNX z, r, h
        r, z, n = np.split(w, 3)
        return np.concatenate([z, r, n])

    dirs = ["_l0", "_l0_reverse"][: spec.num_directions]
    W = np.stack([zrh(sd[f"weight_ih{d}"]) for d in dirs])
    R = np.stack([zrh(sd[f"weight_hh{d}"]) for d in dirs])
    B = np.stack([np.concatenate([zrh(sd[f"bias_ih{d}"]), zrh(sd[f"bias_hh{d}"])]) for d in dirs])
    # ONNX Runtime consumes activation_alpha/beta only for the activations that take them.
    acts, alphas, betas = [], [], []
    for _ in dirs:
        for native in (native_f, native_g):
            acts.append(native.name)
            alphas += [native.alpha] if native.alpha is not None else []
            betas += [native.beta] if native.beta is not None else []
    node = helper.make_node(
        "GRU",
        ["X", "W", "R", "B"],
        ["Y", "Y_h"],
        hidden_size=spec.hidden_size,
        direction="bidirectional" if spec.bidirectional else "forward",
        linear_before_reset=int(spec.reset_after),
        activations=acts,
        **({"activation_alpha": alphas} if alphas else {}),
        **({"activation_beta": betas} if betas else {}),
    )
    graph = helper.make_graph(
        [node],
        "ref",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, list(x.shape))],
        [
            helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Y_h", onnx.TensorProto.FLOAT, None),
        ],
        initializer=[onnx.numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (B, "B"))],
    )
    path = tmp_path / "native_ref.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), path)
    y, y_h = run_ort(path, {"X": x.numpy()})
    # ONNX Y is [T, D, B, H]; nn.GRU's output is [T, B, D*H].
    return y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1), y_h


@pytest.mark.parametrize(
    ("act", "rec"),
    [
        ("relu", "hard_sigmoid"),
        ("leaky_relu(alpha=0.1)", "sigmoid"),
        ("softsign", "hard_sigmoid"),
        ("elu(alpha=0.7)", "sigmoid"),
        ("tanh", "softsign"),
        ("linear", "sigmoid"),
    ],
)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_onnxruntime_gru_op(act, rec, reset_after, bidirectional, tmp_path):
    gru = make(1, bidirectional, activation=act, recurrent_activation=rec, reset_after=reset_after)
    (x,) = inputs(gru, seq=7)
    _, (y, h_n) = export_and_run(gru, (x,), tmp_path, check=False)
    want_y, want_h = onnx_gru_op_reference(
        gru, x, gru.spec.recurrent_activation.native(), gru.spec.activation.native(), tmp_path
    )
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_unrolled_step_has_no_per_step_reshaping(reset_after, tmp_path):
    counts = {}
    for seq in (2, 7):
        _, _, result = small_export(tmp_path, f"u{seq}.onnx", seq=seq, strategy="unrolled", activation="relu",
                                    reset_after=reset_after)  # fmt: skip
        counts[seq] = collections.Counter(n.op_type for n in onnx.load(result.path).graph.node)
    per_step = {op: (counts[7][op] - counts[2][op]) / 5 for op in counts[7] | counts[2]}
    per_step = {op: c for op, c in per_step.items() if c}
    want = {"Gemm": 2, "Sigmoid": 1, "Split": 1, "Mul": 2, "Relu": 1, "Sub": 1, "Add": 2 if reset_after else 1}
    assert per_step == want  # no Gather, Squeeze, Unsqueeze, Concat per step
    assert counts[7]["Split"] == 7 + 1 and counts[7]["Concat"] <= 2  # one Split cuts all steps, one Concat joins
