"""Rebuilding the PyTorch reference from a file alone (``gru_onnx.rebuild``): the spec and the
parameters read back through each weight layout compute what the source computes. Files are
written at the graph level (``helpers.graph_export``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import gru_onnx
from gru_onnx.rebuild import reference_from_file

from helpers import export_and_run, inputs, make, numpy_reference, small_export


@pytest.mark.parametrize("strategy", ["unrolled", "native"])
def test_pytorch_reference_rebuilt_from_the_file_alone(strategy, tmp_path):
    gru = make(2, True, True, activation="relu", recurrent_activation="hard_sigmoid")
    args = inputs(gru, seq=5)
    result, (y, _) = export_and_run(gru, args, tmp_path, strategy=strategy)
    model = onnx.load(result.path)
    rebuilt = reference_from_file(model, gru_onnx.read_metadata(model))
    assert rebuilt.spec == gru.spec
    source, back = gru.state_dict(), rebuilt.state_dict()
    for name, tensor in source.items():
        if name.startswith("weight") or strategy == "native":  # stored as they are
            torch.testing.assert_close(back[name], tensor, rtol=0, atol=0, msg=name)
    for name in (n for n in source if n.startswith("bias_ih")):  # folded: the sums the gates see
        hh = name.replace("_ih", "_hh")
        folded = (source[name].double() + source[hh].double()).float()
        torch.testing.assert_close(back[name] + back[hh], folded, rtol=0, atol=0, msg=name)
    np.testing.assert_allclose(rebuilt(*args)[0].detach().numpy(), y, rtol=1e-5, atol=1e-6)


def test_rebuilt_from_a_folded_file_computes_the_source_function(tmp_path):
    from gru_onnx.rebuild import reference_from_file

    gru, (x, h0, lens), result = small_export(tmp_path, strategy="loop", activation="gelu", reset_after=True,
                                              num_layers=2, bidirectional=True, lengths=True)  # fmt: skip
    rebuilt = reference_from_file(onnx.load(result.path), result.metadata)
    with torch.no_grad():
        y, h_n = rebuilt(x, None, lens)
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.numpy(), want_h, rtol=1e-5, atol=1e-6)
