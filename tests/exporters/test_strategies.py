"""What every export strategy shares: the numbers of each against NumPy, nn.GRU and packed
sequences, lengths outside 1..T, dynamic lengths.

The strategies are tested at the graph level (``helpers.graph_export``: the lone CustomGRU's
graph built with onnx_ir and lowered as the export lowers it, no torch.export); the first test
holds that this writes the very bytes :func:`gru_onnx.export` writes.
"""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gru_onnx import CustomGRU, GruOnnxUsageError
from gru_onnx.compat import file_support

import flat
from helpers import feeds_for, graph_export, make_inputs, numpy_reference, run_ort

STRATEGIES = ("unrolled", "loop", "native")


MATRIX = list(itertools.product(STRATEGIES, [True, False], [1, 2], [False, True], [False, True], [False, True]))


def _without_torch_annotations(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without the annotations torch.export leaves on graphs and values (kept from IR 10 on)."""
    for graph in [model.graph, *(a.g for n in model.graph.node for a in n.attribute if a.type == a.GRAPH)]:
        del graph.metadata_props[:]
        for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
            del value.metadata_props[:]
    return model


#: (module options, call args, export options) the graph-level writer must match byte for byte.
IDENTITY_CASES = [
    ({"num_layers": 2, "bidirectional": True, "batch_first": True, "activation": "relu"}, "h0+lengths",
     {"strategy": "unrolled"}),
    ({"num_layers": 2, "bidirectional": True, "activation": "gelu", "reset_after": False}, "lengths",
     {"strategy": "loop", "dynamic_seq": True}),
    ({"num_layers": 2, "bidirectional": True, "activation": "relu"}, "h0", {"strategy": "native", "opset": 17}),
    ({"activation": "relu"}, "", {"target": "cpu", "opset": 21}),
    ({"num_layers": 2, "activation": "silu", "recurrent_activation": "hard_sigmoid"}, "",
     {"strategy": "loop", "dtype": "float16"}),
    ({"num_layers": 2, "activation": "relu"}, "", {"strategy": "loop", "streaming": True}),
    ({"batch_first": True, "activation": "relu", "reset_after": False}, "",
     {"strategy": "unrolled", "streaming": True, "chunk": 3}),
]  # fmt: skip


@pytest.mark.parametrize(("module", "extra", "options"), IDENTITY_CASES,
                         ids=["unrolled", "loop-dynamic", "native-opset17", "auto-cpu-opset21", "float16",
                              "streaming-loop", "streaming-chunk"])  # fmt: skip
def test_graph_level_files_are_the_files_export_writes(module, extra, options, tmp_path):
    """The graph-level tests prove what export writes only because both write the same file."""
    gru = CustomGRU(4, 5, **module)
    x, h0, lens = make_inputs(gru, with_h0="h0" in extra, with_lengths="lengths" in extra)
    if options.get("streaming"):  # the example a streaming export traces: ``chunk`` steps
        x = x[:, : options.get("chunk") or x.shape[1]]
    args = (x, h0, lens)
    exported = flat.export(gru, args, tmp_path / "e.onnx", check=False, **options)
    built = graph_export(gru, args, tmp_path / "g.onnx", check=False, **options)
    assert built.metadata == exported.metadata
    want, got = onnx.load(exported.path), onnx.load(built.path)
    if want.ir_version < 10:  # torch's annotations are dropped below IR 10: the same bytes
        assert built.path.read_bytes() == exported.path.read_bytes()
    assert _without_torch_annotations(got) == _without_torch_annotations(want)


@pytest.mark.parametrize(("strategy", "reset_after", "layers", "bidirectional", "batch_first", "lengths"), MATRIX)
def test_strategy_matrix_against_numpy(strategy, reset_after, layers, bidirectional, batch_first, lengths, tmp_path):
    gru = CustomGRU(4, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                    activation="relu", recurrent_activation="hard_sigmoid", reset_after=reset_after)  # fmt: skip
    x, h0, lens = make_inputs(gru, with_lengths=lengths, with_h0=layers == 2)
    args = (x, h0, lens)
    result = graph_export(gru, args, tmp_path / "m.onnx", strategy=strategy)
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
    result = graph_export(gru, (x, h0, lens), tmp_path / "m.onnx", strategy=strategy)
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


# Guards: lengths outside 1..T mean the same in every strategy (zero outputs and h0 kept at length <= 0, all
#   steps past T) and the module refuses them (trust review, item 9)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lengths_outside_the_sequence_mean_the_same_in_every_strategy(strategy, tmp_path):
    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu")
    seq = 6
    x, h0, lengths = torch.randn(seq, 3, 3), 0.5 * torch.randn(4, 3, 4), torch.tensor([seq, 2, 4])
    path = graph_export(gru, (x, h0, lengths), tmp_path / "m.onnx", strategy=strategy).path
    odd = np.array([0, -3, seq + 5, 3, 2], np.int64)  # nothing, nothing, all of it, part, part
    x5, h5 = torch.randn(seq, 5, 3), 0.5 * torch.randn(4, 5, 4)
    y, h_n = run_ort(path, {"input": x5.numpy(), "h0": h5.numpy(), "lengths": odd})
    want_y, want_h = numpy_reference(gru, x5, h5, torch.from_numpy(odd))  # mask t < length
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    assert not y[:, :2].any()  # length <= 0: zero outputs ...
    np.testing.assert_allclose(h_n[:, :2], h5[:, :2].numpy(), rtol=0, atol=0)  # ... and h0 kept
    with pytest.raises(GruOnnxUsageError, match=r"lengths must lie in 1\.\.6"):
        gru(x5, h5, torch.from_numpy(odd))
