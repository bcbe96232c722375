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
class _Gelu(nn.Module):
    """A whole model whose GELU torchlib writes by opset (an ``Gelu`` op from opset 20 on)."""

    def __init__(self):
        super().__init__()
        self.gru = CustomGRU(4, 6, num_layers=2, bidirectional=True, activation="gelu", reset_after=False,
                             batch_first=True)  # fmt: skip
        self.head = nn.Sequential(nn.Linear(12, 5), nn.GELU(), nn.LayerNorm(5))

    def forward(self, x):
        return self.head(self.gru(x)[0])


def test_a_reused_torchlib_registry_writes_the_same_bytes_and_leaves_torch_as_it_was(tmp_path, monkeypatch):
    assert tracing._REUSABLE, "torch.onnx's registry changed shape: every export now rebuilds it"
    original = _registration.ONNXRegistry.__dict__["from_torchlib"]
    model, x = _Gelu(), torch.randn(2, 5, 4)
    written: dict[tuple[int, bool], set[bytes]] = {}
    for opset, reuse in [(18, False), (20, False), (18, True), (20, True), (18, True), (20, True)]:
        monkeypatch.setattr(tracing, "_REUSABLE", reuse)
        path = tmp_path / f"{opset}-{reuse}.onnx"
        flat.export(model, (x,), path, strategy="loop", opset=opset, check=None)
        written.setdefault((opset, reuse), set()).add(path.read_bytes())
        assert _registration.ONNXRegistry.__dict__["from_torchlib"] is original  # restored after each export
    for opset in (18, 20):  # each opset's registry, not the first one built
        assert len(written[opset, True]) == 1 and written[opset, True] == written[opset, False], opset
    assert written[18, True] != written[20, True]
    assert any(n.op_type == "Gelu" for n in onnx.load(tmp_path / "20-True.onnx").graph.node)
    cached = [registry for _, registry in tracing._REGISTRIES.values()]
    assert len(cached) >= 2
    # an export never extends the cached registries: no custom (translation-table) entries
    assert not any(d.is_custom for registry in cached for decomps in registry.functions.values() for d in decomps)


def test_the_reused_registry_is_torchs_answer_to_the_same_call_and_follows_what_it_is_built_from(monkeypatch):
    registry = _registration.ONNXRegistry
    with tracing._torchlib_registry_reused():
        first = registry.from_torchlib(opset_version=18)
        again = registry.from_torchlib(opset_version=18)
        ((_, cached),) = [v for k, v in tracing._REGISTRIES.items() if k[1:] == ((), (("opset_version", 18),))]
        for fresh in (first, again):  # copies: an export's additions stay its own
            assert fresh is not cached and fresh.functions == cached.functions
            assert all(fresh.functions[k] is not v for k, v in cached.functions.items())
        with pytest.raises(TypeError):  # a call of another shape is torch's own (here: its refusal)
            registry.from_torchlib(torchlib_registry={})
        # A library loaded after the first export (PT2E's quantized_decomposed, torchvision) adds
        # operators torchlib maps: the registry built before it is rebuilt, not reused stale.
        library = torch.library.Library("gru_onnx_late", "DEF")
        library.define("late(Tensor x) -> Tensor")
        registry.from_torchlib(opset_version=18)
        ((_, rebuilt),) = [v for k, v in tracing._REGISTRIES.items() if k[1:] == ((), (("opset_version", 18),))]
        assert rebuilt is not cached

    # torch 2.6 and 2.7: from_torchlib(cls) takes no opset, and _compat calls it without one
    calls, build = [], tracing._FROM_TORCHLIB.__func__

    def older(cls):
        calls.append(cls)
        return build(cls)

    monkeypatch.setattr(tracing, "_FROM_TORCHLIB", classmethod(older))
    monkeypatch.setattr(registry, "from_torchlib", tracing._FROM_TORCHLIB)
    with tracing._torchlib_registry_reused():
        assert registry.from_torchlib().functions and registry.from_torchlib().functions
    assert len(calls) == 1  # built once, then copied

    # someone else's from_torchlib (another library's patch) is used as it is, and stays
    theirs = classmethod(lambda cls, *a, **k: "theirs")
    monkeypatch.setattr(registry, "from_torchlib", theirs)
    with tracing._torchlib_registry_reused():
        assert registry.from_torchlib(opset_version=18) == "theirs"
    assert registry.__dict__["from_torchlib"] is theirs
