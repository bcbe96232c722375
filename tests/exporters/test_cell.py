"""The step every decomposed strategy writes (``exporters/_cell.py``): the scaled gelu form and
its weights, activations in float16. Written at the graph level (``helpers.graph_export``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru_onnx import CustomGRU

import flat
from helpers import graph_export, numpy_reference, run_ort, small_export


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("strategy", ["loop", "unrolled"])
def test_scaled_gelu_matches_and_its_weights_read_back(strategy, reset_after, tmp_path, run_cli):
    gru, (x, h0, lens), result = small_export(tmp_path, strategy=strategy, activation="gelu", reset_after=reset_after,
                                              num_layers=2, bidirectional=True, lengths=True)  # fmt: skip
    weights = result.metadata["stacks"][0]["weights"]
    assert weights["state_scale"] == pytest.approx(2**0.5) and weights["input_scale"] == pytest.approx(2**-0.5)
    assert result.passed and all(w.passed for w in result.parity.weights), result.parity.summary()
    for scale in (1.0, 30.0):  # large inputs: the scaling must not cost range
        y, h_n = run_ort(result.path, {"input": scale * x.numpy(), "lengths": lens.numpy()})
        want_y, want_h = numpy_reference(gru, scale * x, h0, lens)
        np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5 * scale)
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    assert run_cli("check", "m.onnx", "--checkpoint", "source.pt").exit_code == 0
    source = gru.state_dict()
    source["weight_hh_l1"][12, 3] += 0.01  # an n row of a scaled block
    torch.save(source, tmp_path / "other.pt")
    result = run_cli("check", "m.onnx", "--checkpoint", "other.pt")
    assert result.exit_code == 1 and "weight_hh_l1: 1 value(s) differ" in " ".join(result.output.split())


def test_float16_and_opset_20_keep_the_plain_gelu(tmp_path):
    _, _, half = small_export(tmp_path, "h.onnx", strategy="loop", activation="gelu", dtype="float16")
    _, _, new = small_export(tmp_path, "n.onnx", strategy="loop", activation="gelu", opset=20)
    for result in (half, new):
        assert result.passed, result.parity.summary()
        assert "state_scale" not in result.metadata["stacks"][0]["weights"]


# Guards: celu in float16 exports (ONNX's Celu takes float32 only) and matches (trust review, item 2)
@pytest.mark.parametrize("strategy", ["unrolled", "loop"])
def test_celu_exports_in_float16(strategy, tmp_path):
    x = torch.randn(5, 2, 4)
    gru = CustomGRU(4, 6, activation="celu(alpha=0.5)")
    result = graph_export(gru, (x,), tmp_path / "c.onnx", strategy=strategy, dtype="float16")
    assert result.passed, result.parity.summary()
    # celu as the gate too: an unbounded gate lets the state grow without limit (inf in float64
    # at the check's x4 inputs), where any two float16 roundings part; compared at unit inputs.
    gru = CustomGRU(4, 6, activation="celu(alpha=0.5)", recurrent_activation="celu")
    path = graph_export(gru, (x,), tmp_path / "g.onnx", strategy=strategy, dtype="float16", check=False).path
    report = flat.check_parity(gru.half(), path, scales=(1.0,))
    assert report.passed, report.summary()
