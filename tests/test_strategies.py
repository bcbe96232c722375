"""Every export strategy against NumPy and nn.GRU; dynamic lengths, padded batches, fp16, opsets."""

from __future__ import annotations

import importlib.util
import itertools
import re

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gru_onnx import CustomGRU, ExportError, GruOnnxUsageError
from gru_onnx.compat import file_support
from gru_onnx.registry import MAX_OPSET, MIN_OPSET

import flat
from conftest import numpy_reference, run_ort

STRATEGIES = ("unrolled", "loop", "native")
MATRIX = list(itertools.product(STRATEGIES, [True, False], [1, 2], [False, True], [False, True], [False, True]))


def feeds_for(args):
    names = ("input", "h0", "lengths")
    return {n: a.numpy() for n, a in zip(names, args, strict=False) if a is not None}


def make_inputs(gru, batch=3, seq=6, with_lengths=False, with_h0=False):
    spec = gru.spec
    x = torch.randn((batch, seq, spec.input_size) if spec.batch_first else (seq, batch, spec.input_size))
    h0 = 0.5 * torch.randn(spec.num_layers * spec.num_directions, batch, spec.hidden_size) if with_h0 else None
    lengths = torch.tensor([seq, 1, seq - 2][:batch]) if with_lengths else None
    return x, h0, lengths


@pytest.mark.parametrize(("strategy", "reset_after", "layers", "bidirectional", "batch_first", "lengths"), MATRIX)
def test_strategy_matrix_against_numpy(strategy, reset_after, layers, bidirectional, batch_first, lengths, tmp_path):
    gru = CustomGRU(4, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                    activation="relu", recurrent_activation="hard_sigmoid", reset_after=reset_after)  # fmt: skip
    x, h0, lens = make_inputs(gru, with_lengths=lengths, with_h0=layers == 2)
    args = (x, h0, lens)
    result = flat.export(gru, args, tmp_path / "m.onnx", strategy=strategy)
    assert result.strategy == strategy and result.passed, result.parity.summary()
    y, h_n = run_ort(result.path, feeds_for(args))
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    if importlib.util.find_spec("openvino") is not None:  # the same file on a second runtime
        on_openvino = flat.check_parity(gru, result.path, args, providers=("openvino",))
        expected = {r.runtime: r.status for r in file_support(result.metadata)}["openvino"]
        if expected == "yes":
            assert on_openvino.passed, on_openvino.summary()
        else:  # the compatibility table says OpenVINO cannot run it, and indeed it cannot
            assert on_openvino.results[0].status == "error", on_openvino.summary()
    if lens is not None:  # sequence 1 has length 1: every later output is exactly zero
        past_end = y[1, 1:] if batch_first else y[1:, 1]
        assert past_end.shape[0] == 5 and not past_end.any()


@pytest.mark.parametrize(("strategy", "bidirectional", "lengths"),
                         list(itertools.product(STRATEGIES, [False, True], [False, True])))  # fmt: skip
def test_strategies_match_nn_gru_and_packed_sequences(strategy, bidirectional, lengths, tmp_path):
    ref = nn.GRU(4, 5, num_layers=2, bidirectional=bidirectional, batch_first=True)
    gru = CustomGRU(4, 5, num_layers=2, bidirectional=bidirectional, batch_first=True)
    gru.load_state_dict(ref.state_dict())
    x, h0, lens = make_inputs(gru, batch=3, seq=7, with_lengths=lengths, with_h0=True)
    result = flat.export(gru, (x, h0, lens), tmp_path / "m.onnx", strategy=strategy)
    y, h_n = run_ort(result.path, feeds_for((x, h0, lens)))
    if lens is None:
        want_y, want_h = ref(x, h0)
    else:
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, want_h = ref(packed, h0)
        want_y, _ = pad_packed_sequence(out, batch_first=True, total_length=7)
    np.testing.assert_allclose(y, want_y.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h.detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("strategy", ["loop", "native"])
def test_dynamic_length_export_runs_at_other_lengths(strategy, tmp_path):
    gru = CustomGRU(3, 6, num_layers=2, bidirectional=True, activation="relu", recurrent_activation="sigmoid")
    x8 = torch.randn(8, 2, 3)
    result = flat.export(gru, (x8,), tmp_path / "dyn.onnx", strategy=strategy, dynamic_seq=True)
    model = onnx.load(result.path)
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[:2]] == ["seq", "batch"]
    for seq, batch in ((1, 1), (2000, 2), (37, 5)):
        x = torch.randn(seq, batch, 3) * 0.5
        y, h_n = run_ort(result.path, {"input": x.numpy()})
        want_y, want_h = numpy_reference(gru, x)
        np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


def test_dynamic_length_with_padded_batches(tmp_path):
    gru = CustomGRU(3, 4, bidirectional=True, batch_first=True, activation="gelu")
    x, _, lens = make_inputs(gru, batch=3, seq=6, with_lengths=True)
    result = flat.export(gru, (x, None, lens), tmp_path / "m.onnx", dynamic_seq=True)
    assert result.strategy == "loop"
    x2 = torch.randn(4, 11, 3)
    lens2 = torch.tensor([11, 3, 1, 8])
    y, h_n = run_ort(result.path, {"input": x2.numpy(), "lengths": lens2.numpy()})
    want_y, want_h = numpy_reference(gru, x2, None, lens2)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


def test_unrolled_refuses_a_dynamic_length(tmp_path):
    gru = CustomGRU(3, 4)
    with pytest.raises(GruOnnxUsageError, match="the unrolled strategy fixes the sequence length"):
        flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="unrolled", dynamic_seq=True)
    assert not (tmp_path / "m.onnx").exists()


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
    result = flat.export(gru, (x,), tmp_path / "m.onnx", strategy="native")
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
                        "onnxruntime-tensorrt": "yes", "openvino": "no"}  # fmt: skip
    y, _ = run_ort(result.path, {"input": x.numpy()})
    np.testing.assert_allclose(y, numpy_reference(gru, x)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "export_kwargs", "seq", "expected"),
    [
        ({}, {}, 6, "native"),
        ({}, {"dtype": "float16"}, 6, "unrolled"),
        ({"activation": "relu"}, {}, 6, "unrolled"),
        ({"activation": "relu"}, {}, 200, "loop"),
        ({"activation": "relu"}, {"dynamic_seq": True}, 6, "loop"),
        ({"reset_after": False}, {}, 6, "unrolled"),
        ({}, {"dynamic_seq": True}, 6, "native"),
    ],
)
def test_auto_choice(kwargs, export_kwargs, seq, expected, tmp_path):
    gru = CustomGRU(3, 4, **kwargs)
    result = flat.export(gru, (torch.randn(seq, 2, 3),), tmp_path / "m.onnx", **export_kwargs)
    (stack,) = result.metadata["stacks"]
    assert stack["strategy"] == expected == result.strategy
    assert result.metadata["requested_strategy"] == "auto"
    assert stack["reason"]
    assert result.passed, result.parity.summary()


def test_auto_chooses_per_stack_in_a_whole_model(tmp_path):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = CustomGRU(3, 4, batch_first=True)
            self.b = CustomGRU(4, 4, batch_first=True, activation="mish")

        def forward(self, x):
            return self.b(self.a(x)[0])[0]

    result = flat.export(Two(), (torch.randn(2, 5, 3),), tmp_path / "m.onnx")
    assert [s["strategy"] for s in result.metadata["stacks"]] == ["native", "unrolled"]
    assert result.strategy == "mixed" and result.passed


@pytest.mark.parametrize("strategy", ["unrolled", "loop"])
def test_float16_export(strategy, tmp_path):
    gru = CustomGRU(4, 8, num_layers=2, bidirectional=True, activation="silu", recurrent_activation="hard_sigmoid")
    x = torch.randn(6, 3, 4)
    result = flat.export(gru, (x,), tmp_path / "h.onnx", strategy=strategy, dtype="float16")
    assert result.metadata["dtype"] == "float16" and result.passed, result.parity.summary()
    assert result.parity.atol == 2e-3 and result.parity.rtol == 2e-2
    model = onnx.load(result.path)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert all(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer if t.name.startswith("weight"))
    y, _ = run_ort(result.path, {"input": x.half().numpy()})
    want, _ = numpy_reference(gru, x)  # float64 reference on the float32 weights
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=2e-2, atol=5e-3)
    assert next(p for p in gru.parameters()).dtype == torch.float32  # the caller's model is untouched


@pytest.mark.parametrize("opset", range(MIN_OPSET, MAX_OPSET + 1))
def test_every_supported_opset(opset, tmp_path):
    gru = CustomGRU(3, 4, bidirectional=True, activation="gelu", recurrent_activation="hard_sigmoid")
    x, _, lens = make_inputs(gru, batch=3, seq=5, with_lengths=True)
    result = flat.export(gru, (x, None, lens), tmp_path / "m.onnx", strategy="loop", opset=opset)
    model = onnx.load(result.path)
    assert next(o.version for o in model.opset_import if o.domain == "") == opset
    y, _ = run_ort(result.path, feeds_for((x, None, lens)))
    np.testing.assert_allclose(y, numpy_reference(gru, x, None, lens)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("strategy", "reset_after"), [("native", True), ("loop", False), ("unrolled", False)])
def test_a_gru_called_twice_shares_its_weights(strategy, reset_after, tmp_path):
    class Siamese(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = CustomGRU(3, 4, batch_first=True, activation="relu", reset_after=reset_after)

        def forward(self, a, b):
            return self.rnn(a)[1] - self.rnn(b)[1]

    args = (torch.randn(2, 5, 3), torch.randn(2, 5, 3))
    result = flat.export(Siamese(), args, tmp_path / "s.onnx", strategy=strategy)
    assert result.passed, result.parity.summary()
    assert len(result.metadata["stacks"]) == 2


def test_a_sequence_first_gru_inside_a_model_needs_its_axes_named(tmp_path):
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = CustomGRU(4, 5, activation="relu")  # sequence first, as nn.GRU

        def forward(self, x):
            return self.rnn(x)[0]

    x = torch.randn(6, 3, 4)
    with pytest.raises(ExportError, match=r"gets the batch axis as its time axis.*pass dynamic_shapes"):
        flat.export(Wrap(), (x,), tmp_path / "w.onnx")
    batch = torch.export.Dim("batch")
    result = flat.export(Wrap(), (x,), tmp_path / "w.onnx", dynamic_shapes=({1: batch},))
    assert result.passed and result.metadata["stacks"][0]["seq_len"] == 6
