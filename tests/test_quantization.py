"""int8 files (``gru_onnx.quantization``): accuracy against the float32 PyTorch model, stored
weights, size, structure, loop bodies, streaming files, external data pairs. Lone-GRU float
files are written at the graph level (``helpers.graph_export``)."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU, read_metadata
from gru_onnx.quantization import INT8_TOLERANCES, dequantized_initializers

import flat
from flat import export, quantize
from helpers import TOKENS, TokenTagger, export_pair, external_tensors, graph_export, one_line_error, run_ort


def _float_file(tmp_path, module, strategy, seq=30, batch=2, name="float.onnx"):
    path = tmp_path / name
    x = torch.randn(seq, batch, module.spec.input_size)
    graph_export(module, (x,), path, strategy=strategy, dynamic_seq=strategy == "loop", check=False)
    return path


@pytest.mark.parametrize("mode", ["weights", "dynamic"])
@pytest.mark.parametrize(
    ("strategy", "config"),
    [
        ("loop", {"num_layers": 2, "activation": "relu"}),
        ("unrolled", {"activation": "gelu", "reset_after": False}),
        ("loop", {"bidirectional": True, "activation": "tanh", "recurrent_activation": "hard_sigmoid"}),
    ],
    ids=["loop-relu-2layers", "unrolled-gelu-reset-before", "loop-bidirectional"],
)
def test_int8_stays_within_5_percent_of_the_float_model(tmp_path, mode, strategy, config):
    """The issue's accuracy bar: max |int8 - float32| <= 5% of the output's largest value."""
    torch.manual_seed(0)
    module = CustomGRU(16, 64, **config).eval()
    source = _float_file(tmp_path, module, strategy)
    target = tmp_path / "int8.onnx"
    quantize(source, target, mode=mode)
    x = torch.randn(30, 3, 16)
    with torch.no_grad():
        expected = module(x)[0].numpy()
    (got, _) = run_ort(target, {"input": x.numpy()})
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()
    assert np.abs(got - expected).max() > 0  # it is int8 arithmetic, not the float file


@pytest.mark.parametrize("per_channel", [True, False])
def test_stored_weights_are_within_half_a_step_of_the_source(tmp_path, per_channel):
    """Read back through the file's weight layout, every nn.GRU weight is within half a
    quantization step of the source (the step bounded from the whole weight's range)."""
    from gru_onnx.rebuild import state_dict_from_file

    torch.manual_seed(1)
    module = CustomGRU(8, 32, activation="relu").eval()
    target = tmp_path / "int8.onnx"
    quantize(_float_file(tmp_path, module, "loop"), target, mode="weights", per_channel=per_channel)
    model = onnx.load(target)
    (stack,) = read_metadata(target)["stacks"]
    stored = state_dict_from_file(model, stack)
    assert set(dequantized_initializers(model))  # int8 values and scales are what was read
    for name in ("weight_ih_l0", "weight_hh_l0"):
        source = getattr(module, name).detach().numpy()  # [3H, in]: one output channel per row
        peak = np.abs(source).max(axis=1, keepdims=True) if per_channel else np.abs(source).max()
        step = peak / 127.0
        got = stored[name].numpy()
        assert got.shape == source.shape
        assert np.all(np.abs(got - source) <= step / 2 * (1 + 1e-5))
        assert np.any(got != source)  # int8, not the float weights


def test_int8_file_is_under_035x_for_two_layers_of_256(tmp_path):
    torch.manual_seed(0)
    module = CustomGRU(64, 256, num_layers=2, activation="relu")
    source = _float_file(tmp_path, module, "loop", seq=4)
    for mode in ("weights", "dynamic"):
        result = quantize(source, tmp_path / f"{mode}.onnx", mode=mode)
        assert result.size_after <= 0.35 * result.size_before, (mode, result.size_after / result.size_before)


def _body_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    bodies = [a.g for node in model.graph.node if node.op_type == "Scan" for a in node.attribute if a.name == "body"]
    return [n for body in bodies for n in body.node]


def test_loop_bodies_are_quantized_and_no_transpose_of_weights_is_left(tmp_path):
    torch.manual_seed(0)
    source = _float_file(tmp_path, CustomGRU(8, 16, activation="relu"), "loop")
    quantize(source, tmp_path / "d.onnx", mode="dynamic")
    quantize(source, tmp_path / "w.onnx", mode="weights")
    dynamic, weights = onnx.load(tmp_path / "d.onnx"), onnx.load(tmp_path / "w.onnx")
    body = [n.op_type for n in _body_nodes(dynamic)]
    assert "MatMulInteger" in body and "DynamicQuantizeLinear" in body and "Gemm" not in body
    assert "MatMulInteger" in [n.op_type for n in dynamic.graph.node]  # the input projection too
    for model in (dynamic, weights):
        inits = {t.name for t in model.graph.initializer}
        assert not [n for n in model.graph.node if n.op_type == "Transpose" and n.input[0] in inits]
        assert not {"weight_ih_l0", "weight_hh_l0.rz", "weight_hh_l0.n"} & inits  # no float copy left
    scan = next(n for n in weights.graph.node if n.op_type == "Scan")
    (body,) = [a.g for a in scan.attribute if a.name == "body"]
    body_inits = {t.name: t.data_type for t in body.initializer}
    assert body_inits["weight_hh_l0.rz_int8"] == body_inits["weight_hh_l0.n_int8"] == onnx.TensorProto.INT8
    assert "DequantizeLinear" in [n.op_type for n in _body_nodes(weights)]


def test_quantizing_is_reproducible(tmp_path):
    source = _float_file(tmp_path, CustomGRU(8, 16), "unrolled", seq=5)
    quantize(source, tmp_path / "a.onnx")
    quantize(source, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_export_with_quantize_checks_against_the_float_model(tmp_path):
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = CustomGRU(8, 32, batch_first=True, activation="relu")
            self.head = nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0])

    torch.manual_seed(0)
    result = export(Tagger(), (torch.randn(2, 12, 8),), tmp_path / "t.onnx", quantize="dynamic")
    assert result.passed, result.parity.summary()
    record = read_metadata(tmp_path / "t.onnx")["quantization"]
    assert record["mode"] == "dynamic" and record["granularity"] == "per_channel"
    assert set(record["tensors"]) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0.rz", "rnn.weight_hh_l0.n", "head.weight"}
    assert "int8 dynamic file vs float32 source" in result.parity.reference
    assert (result.parity.atol, result.parity.rtol) == INT8_TOLERANCES["dynamic"]


def test_native_gru_weights_stay_float_and_are_named(tmp_path):
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = CustomGRU(8, 32, batch_first=True)
            self.head = nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0])

    result = export(Tagger(), (torch.randn(2, 12, 8),), tmp_path / "t.onnx", strategy="native", quantize="weights")
    assert result.passed, result.parity.summary()
    record = read_metadata(tmp_path / "t.onnx")["quantization"]
    assert list(record["tensors"]) == ["head.weight"]
    assert "native GRU op" in record["left_float"]


def test_streaming_file_quantizes_and_streams_within_5_percent(tmp_path):
    from gru_onnx import StreamingSession

    torch.manual_seed(0)
    module = CustomGRU(8, 32, batch_first=True, activation="relu").eval()
    graph_export(module, (torch.randn(2, 6, 8),), tmp_path / "s.onnx", streaming=True, check=False)
    result = quantize(tmp_path / "s.onnx", tmp_path / "q.onnx")
    assert len(result.quantized) == 3  # input weights, recurrent r/z and n blocks
    session = StreamingSession(tmp_path / "q.onnx")
    x = torch.randn(3, 40, 8)
    frames = [session.run({"input": x[:, t : t + 1].numpy()})["output"] for t in range(40)]
    with torch.no_grad():
        expected = module(x)[0].numpy()
    got = np.concatenate(frames, axis=1)
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()
    report = flat.check_parity(None, tmp_path / "q.onnx")
    assert report.passed, report.summary()


def test_onnx_runtime_fuses_every_dequantize_of_a_weights_file(tmp_path):
    """A DequantizeLinear left in a loop body after ONNX Runtime's optimizations runs at every
    step (9x slower, measured): ONNX Runtime must fold all of them into its int8 kernels."""
    import onnxruntime as ort

    torch.manual_seed(0)
    source = _float_file(tmp_path, CustomGRU(16, 32, num_layers=2, activation="relu"), "loop")
    quantize(source, tmp_path / "w.onnx", mode="weights")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(tmp_path / "w.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(tmp_path / "optimized.onnx")
    body_ops = [n.op_type for n in _body_nodes(optimized)]
    assert "MatMulNBits" in body_ops
    assert "DequantizeLinear" not in body_ops


def test_quantize_reads_an_external_pair_and_writes_one(run_cli, tmp_path, pair, tagger):
    """Source and target pairs both: the int8 file stays within 5% of the float model."""
    result = run_cli("quantize", str(pair), "-o", "int8.onnx", "--mode", "weights", "--external-data")
    assert result.exit_code == 0, result.output
    (data,) = tmp_path.glob("int8.onnx.*.data")
    assert data.name == f"int8.onnx.{hashlib.sha256(data.read_bytes()).hexdigest()[:16]}.data"
    with torch.no_grad():
        expected = tagger(TOKENS).numpy()
    (got,) = run_ort(tmp_path / "int8.onnx", {"tokens": TOKENS.numpy()})
    assert 0 < np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()
    inline = run_cli("quantize", str(pair), "-o", "inline.onnx", "--mode", "weights")
    assert inline.exit_code == 0 and not list(tmp_path.glob("inline.onnx.*"))
    np.testing.assert_array_equal(run_ort(tmp_path / "inline.onnx", {"tokens": TOKENS.numpy()})[0], got)


def test_quantize_refuses_a_pair_whose_data_is_missing(run_cli, tmp_path, pair, no_reads):
    next(pair.parent.glob("*.data")).unlink()
    assert "is missing" in one_line_error(run_cli("quantize", str(pair), "-o", "int8.onnx"))
    assert not list(tmp_path.glob("int8.onnx*"))


def test_int8_export_with_external_data_checks_from_the_pair(tmp_path):
    """The check rebuilds the dequantized reference from int8 values and scales in the data file
    (hidden 96: 288 per-channel scales, over the 1 KiB that sends a tensor there)."""
    torch.manual_seed(0)
    model = TokenTagger(embed=32, hidden=96).eval()
    result = export_pair(model, tmp_path / "int8.onnx", quantize="weights", check=True)
    assert result.data_path is not None and result.passed, result.parity.summary()
    record = gru_onnx.read_metadata(result.path)["quantization"]["tensors"]["rnn.weight_ih_l0"]
    external = {t.name for t in external_tensors(result.path)}
    assert record["values"] in external and record["scale"] in external
    assert result.parity.weights and all(w.passed for w in result.parity.weights)
