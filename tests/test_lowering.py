"""Lowering (``gru_onnx.lowering``): each placeholder written by its strategy at the requested
opset, relabelled to opset 17 where every node means the same, one scope per call."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gru_onnx import CustomGRU, ExportError
from gru_onnx.registry import MAX_OPSET, MIN_OPSET

import flat
from helpers import feeds_for, graph_export, make_inputs, numpy_reference, run_ort, scan_bodies, small_export


@pytest.mark.parametrize("opset", range(MIN_OPSET, MAX_OPSET + 1))
def test_every_supported_opset(opset, tmp_path):
    gru = CustomGRU(3, 4, bidirectional=True, activation="gelu", recurrent_activation="hard_sigmoid")
    x, _, lens = make_inputs(gru, batch=3, seq=5, with_lengths=True)
    result = graph_export(gru, (x, None, lens), tmp_path / "m.onnx", strategy="loop", opset=opset)
    model = onnx.load(result.path)
    assert next(o.version for o in model.opset_import if o.domain == "") == opset
    y, _ = run_ort(result.path, feeds_for((x, None, lens)))
    np.testing.assert_allclose(y, numpy_reference(gru, x, None, lens)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [17, 19, 20, 23])
def test_each_opset_exports_gelu_and_mish(opset, tmp_path):
    gru = CustomGRU(4, 6, activation="gelu", recurrent_activation="sigmoid")
    args = (torch.randn(5, 3, 4),)
    result = flat.export(gru, args, tmp_path / "gru.onnx", strategy="unrolled", opset=opset)
    (y, _) = run_ort(result.path, {"input": args[0].numpy()})
    model = onnx.load(result.path)
    assert next(o.version for o in model.opset_import if o.domain == "") == opset
    assert ("Gelu" in result.node_counts) == (opset >= 20)
    np.testing.assert_allclose(y, numpy_reference(gru, *args)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("strategy", ["loop", "unrolled"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_opset_17_files_use_split_sizes_and_match(strategy, reset_after, tmp_path):
    gru, (x, h0, lens), result = small_export(tmp_path, strategy=strategy, opset=17, activation="gelu",
                                              reset_after=reset_after, bidirectional=True, lengths=True)  # fmt: skip
    model = onnx.load(result.path)
    assert [o.version for o in model.opset_import if o.domain == ""] == [17]
    nodes = list(model.graph.node) + [n for b in scan_bodies(model) for n in b.node]
    splits = [n for n in nodes if n.op_type == "Split"]
    assert splits and all(len(n.input) == 2 and not any(a.name == "num_outputs" for a in n.attribute) for n in splits)
    y, h_n = run_ort(result.path, {"input": x.numpy(), "lengths": lens.numpy()})
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


# Guards: a file for opset 17 with an op ONNX defines later names the op and the opset to use (trust review,
#   item 3)
def test_opset_17_with_an_op_it_lacks_names_the_op(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = CustomGRU(4, 5, batch_first=True, activation="relu")

        def forward(self, x):
            return F.mish(self.gru(x)[0])

    with pytest.raises(ExportError, match=r"Mish, which ONNX defines from opset 18; export with --opset 18"):
        flat.export(Net(), (torch.randn(2, 5, 4),), tmp_path / "m.onnx", opset=17)


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


# Guards: a time axis made dynamic by dynamic_shapes is written dynamic (loop) or refused naming the axis and
#   the strategy (trust review, item 10)
def test_time_made_dynamic_by_dynamic_shapes_is_dynamic_or_named(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = CustomGRU(4, 5, batch_first=True, activation="relu")

        def forward(self, x):
            return self.rnn(x)[0]

    shapes = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("time")},)
    result = flat.export(Net(), (torch.randn(2, 6, 4),), tmp_path / "m.onnx", dynamic_shapes=shapes)
    assert result.metadata["stacks"][0]["strategy"] == "loop" and result.passed
    with pytest.raises(ExportError, match=r"dynamic time axis \(time, from dynamic_shapes\).*unrolled strategy"):
        flat.export(Net(), (torch.randn(2, 6, 4),), tmp_path / "u.onnx", dynamic_shapes=shapes,
                        strategy="unrolled")  # fmt: skip
