"""Tracing (``gru_onnx.tracing``): axes promised dynamic stay dynamic or are refused naming the
input, shared encoders get their own sequence axes, dtype conversion leaves the caller's model
alone, and torch's internal warnings stay out of the user's way."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.onnx._internal.exporter import _registration

from gru_onnx import CustomGRU, ExportError, GruOnnxUsageError, tracing

import flat
from helpers import numpy_reference, run_ort


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


class _WithH0(nn.Module):
    def __init__(self, layers=2):
        super().__init__()
        self.rnn = CustomGRU(4, 5, num_layers=layers, batch_first=True, activation="relu")
        self.head = nn.Linear(5, 3)

    def forward(self, x, h0):
        y, h = self.rnn(x, h0)
        return self.head(y), h


# Guards: an axis torch.export fixes silently is refused, naming the input; dynamic_shapes fixes it (trust
#   review, item 5)
def test_an_axis_torch_export_fixes_silently_is_refused_naming_the_input(tmp_path):
    model = _WithH0()
    args = (torch.randn(2, 6, 4), torch.randn(2, 2, 5))
    with pytest.raises(ExportError, match=r"'h0' axis 0 \(batch\) = 2.*pass dynamic_shapes"):
        flat.export(model, args, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    batch = torch.export.Dim("batch")
    shapes = {"x": {0: batch}, "h0": {1: batch}}
    result = flat.export(model, args, tmp_path / "m.onnx", dynamic_shapes=shapes)
    assert result.passed, result.parity.summary()
    # The check ran at a batch other than the example's, and the file runs at any batch.
    assert {s["x"][0] for s in result.parity.samples} >= {2, 3}
    x, h0 = torch.randn(5, 6, 4), torch.randn(2, 5, 5)
    y, _ = run_ort(result.path, {"x": x.numpy(), "h0": h0.numpy()})
    np.testing.assert_allclose(y, model(x, h0)[0].detach().numpy(), rtol=1e-4, atol=1e-5)


# Guards: a one-layer h0 (size 1 on axis 0) names the input and points to dynamic_shapes (trust review, item
#   5)
def test_a_one_layer_h0_names_the_input_and_dynamic_shapes(tmp_path):
    with pytest.raises(GruOnnxUsageError, match=r"input 'h0': axis 0 has size 1 .* pass dynamic_shapes"):
        flat.export(_WithH0(layers=1), (torch.randn(2, 6, 4), torch.randn(1, 2, 5)), tmp_path / "m.onnx")


# Guards: inputs of different example lengths get their own sequence axes (trust review, item 10)
def test_a_shared_encoder_reads_sequences_of_different_lengths(tmp_path):
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = CustomGRU(4, 5, batch_first=True, activation="relu")

        def forward(self, a, b):
            return self.enc(a)[1] - self.enc(b)[1]

    model = Pair()
    args = (torch.randn(2, 5, 4), torch.randn(2, 7, 4))
    result = flat.export(model, args, tmp_path / "p.onnx", dynamic_seq=True)
    assert result.passed, result.parity.summary()
    a, b = torch.randn(3, 2, 4), torch.randn(3, 9, 4)
    (out,) = run_ort(result.path, {"a": a.numpy(), "b": b.numpy()})
    np.testing.assert_allclose(out, model(a, b).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_whole_model_cli_shows_no_torch_internal_warnings(tmp_path, factory_module):
    """torch.export's internal warnings are hidden from CLI users (GRU_ONNX_DEBUG=1 shows them)."""
    import subprocess

    command = [sys.executable, "-m", "gru_onnx.cli", "export", "--model", f"{factory_module}:with_options"]
    quiet = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert quiet.returncode == 0, quiet.stderr
    assert "Warning" not in quiet.stderr + quiet.stdout


# Guards: torchlib's registry is built once per process, not once per export (about half of a small
#   export's time went to re-parsing every torchlib op's source); the files are the same bytes
def test_a_reused_torchlib_registry_writes_the_same_bytes_and_leaves_torch_as_it_was(tmp_path, monkeypatch):
    assert tracing._REUSABLE, "torch.onnx's registry changed shape: every export now rebuilds it"
    original = _registration.ONNXRegistry.__dict__["from_torchlib"]
    model = CustomGRU(4, 6, num_layers=2, bidirectional=True, activation="gelu", reset_after=False)
    x = torch.randn(5, 2, 4)
    written = {}
    for reuse in (False, True, True):
        monkeypatch.setattr(tracing, "_REUSABLE", reuse)
        path = tmp_path / f"{reuse}-{len(written)}.onnx"
        flat.export(model, (x,), path, strategy="loop", check=None)
        written[path.name] = path.read_bytes()
        assert _registration.ONNXRegistry.__dict__["from_torchlib"] is original  # restored after each export
    assert len(set(written.values())) == 1
    assert tracing._torchlib_registry.cache_info().currsize >= 1
    # the cached registry is never extended by an export: no custom (translation-table) entries
    cached = tracing._torchlib_registry(tracing._DEFAULT_OPSET)
    assert not any(d.is_custom for decomps in cached.functions.values() for d in decomps)
    with tracing._torchlib_registry_reused():
        registry = _registration.ONNXRegistry
        for fresh in (registry.from_torchlib(), registry.from_torchlib(opset_version=18)):
            assert fresh is not cached and fresh.functions == cached.functions
            assert all(fresh.functions[k] is not v for k, v in cached.functions.items())
        with pytest.raises(TypeError):  # a call of another shape is torch's own (here: its refusal)
            registry.from_torchlib(torchlib_registry={})
