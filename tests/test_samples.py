"""Inputs for a check (``gru_onnx.samples``): larger magnitudes per dtype, many lengths for
dynamic files, ``.npz`` inputs cast and validated."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import gru_onnx
from gru_onnx import BenchOptions, CustomGRU, ShapeOptions, StreamingOptions
from gru_onnx.bench import bench
from gru_onnx.metadata import load_model, read_metadata
from gru_onnx.samples import generate_samples, timing_feeds

import flat
from helpers import graph_export


def test_inputs_from_npz(exported, run_cli, tmp_path):
    _, x, path = exported
    np.savez(tmp_path / "in.npz", input=x.numpy())
    result = run_cli("check", str(path), "--inputs", "in.npz", "--report", "r.json")
    assert result.exit_code == 0, result.output
    (sample,) = json.loads((tmp_path / "r.json").read_text())["samples"]
    assert sample.pop("magnitude") >= 1.0
    assert sample == {"input": [12, 2, 4], "scale": 1.0}
    np.savez(tmp_path / "wrong.npz", x=x.numpy())
    result = run_cli("check", str(path), "--inputs", "wrong.npz")
    assert result.exit_code == 2 and "has no array 'input'" in result.output


def test_dynamic_files_are_checked_at_many_lengths(tmp_path):
    gru = CustomGRU(3, 4, activation="gelu", batch_first=True)
    x = torch.randn(2, 5, 3)
    path = graph_export(gru, (x, None, torch.tensor([5, 2])), tmp_path / "d.onnx", dynamic_seq=True).path
    model = onnx.load(path)
    samples = generate_samples(model, gru_onnx.read_metadata(model), count=4, seq_len=30, batch=3, seed=0)
    seqs = [s.args[0].shape[1] for s in samples]
    assert seqs[0] == 30 and seqs[1] == 1 and all(1 <= t <= 30 for t in seqs)
    for s in samples:
        lengths = s.feeds["lengths"]
        assert lengths[0] == s.args[0].shape[1] and lengths[-1] == 1 and lengths.dtype == np.int64
    report = flat.check_parity(None, path, samples=4, seq_len=30, batch=3)
    assert report.passed and len(report.samples) == 4


def test_npz_inputs_are_cast_and_validated(exported, run_cli, tmp_path):
    _, x, path = exported
    np.savez(tmp_path / "f64.npz", input=x.double().numpy())
    assert run_cli("check", str(path), "--inputs", "f64.npz").exit_code == 0
    np.savez(tmp_path / "short.npz", input=x[:5].numpy())
    result = run_cli("check", str(path), "--inputs", "short.npz")
    assert result.exit_code == 2 and "'input' has shape [5, 2, 4], the file takes [12, batch, 4]" in result.output


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        (np.array([7, 0]), "lengths must lie in 1..6"),
        (np.array([5.9, 2.0]), "'lengths' is float64, the file takes int64"),
    ],
)
def test_npz_lengths_are_checked(tmp_path, run_cli, lengths, message):
    gru = CustomGRU(3, 4, activation="relu")
    x = torch.randn(6, 2, 3)
    graph_export(gru, (x, None, torch.tensor([6, 2])), tmp_path / "len.onnx")
    np.savez(tmp_path / "bad.npz", input=x.numpy(), lengths=lengths)
    result = run_cli("check", "len.onnx", "--inputs", "bad.npz")
    assert result.exit_code == 2 and message in result.output


# Guards: the default check looks beyond N(0, 1): x1, x10, x100 in float32, x1, x4 in float16; --scale
#   overrides (trust review, samples)
def test_default_samples_cover_larger_magnitudes_per_dtype(tmp_path, run_cli):
    gru = CustomGRU(3, 4, activation="relu")
    path = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", check=False).path
    report = flat.check_parity(None, path)
    assert [s["scale"] for s in report.samples] == [1.0, 10.0, 100.0]
    half = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "h.onnx", dtype="float16", check=False).path
    assert [s["scale"] for s in flat.check_parity(None, half).samples] == [1.0, 4.0, 1.0]
    result = run_cli("check", str(path), "--scale", "1000", "--samples", "2", "--report", "r.json")
    assert result.exit_code == 0, result.output
    import json

    assert [s["scale"] for s in json.loads((tmp_path / "r.json").read_text())["samples"]] == [1000.0, 1000.0]


# --------------------------------------------------------------------------------------------
# A lone GRU's inputs by position, whatever their names; a streaming file's states
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def named_files(tmp_path_factory: pytest.TempPathFactory):
    """A lone CustomGRU(4, 5) exported with its own input names (a factory's ``input_names``):
    taking h0 and lengths (``audio``, ``start``, ``valid``; 6 steps), and streaming (``audio``)."""
    folder = tmp_path_factory.mktemp("named")
    torch.manual_seed(0)
    gru = CustomGRU(4, 5, batch_first=True)
    x, h0, lengths = torch.randn(3, 6, 4), torch.randn(1, 3, 5), torch.tensor([6, 2, 1])
    names = ShapeOptions(input_names=("audio", "start", "valid"))
    gru_onnx.export(gru, (x, h0, lengths), folder / "named.onnx", shapes=names, check=None)
    gru_onnx.export(gru, (x,), folder / "named_s.onnx", shapes=ShapeOptions(input_names=("audio",)),
                    streaming=StreamingOptions(enabled=True), check=None)  # fmt: skip
    return {"plain": folder / "named.onnx", "stream": folder / "named_s.onnx", "x": x}


@pytest.mark.parametrize("kind", ["plain", "stream"])
def test_a_lone_gru_with_its_own_input_names_is_checked_from_the_file(named_files, run_cli, kind):
    """``check named.onnx`` exited 3 (KeyError 'input'): the samples were keyed by the export's
    default names."""
    result = run_cli("check", str(named_files[kind]))
    assert result.exit_code == 0, result.output


def test_npz_inputs_of_a_lone_gru_with_its_own_input_names(named_files, run_cli, tmp_path):
    x = named_files["x"].numpy()
    h0 = np.zeros((1, 3, 5), np.float32)
    np.savez(tmp_path / "in.npz", audio=x, start=h0, valid=np.array([6, 3, 1]))
    assert run_cli("check", str(named_files["plain"]), "--inputs", "in.npz").exit_code == 0
    np.savez(tmp_path / "bad.npz", audio=x, start=h0, valid=np.array([7, 3, 1]))
    result = run_cli("check", str(named_files["plain"]), "--inputs", "bad.npz")
    assert result.exit_code == 2 and "lengths must lie in 1..6" in result.output, result.output


def test_timing_feeds_know_a_lone_grus_inputs_by_position(named_files):
    """bench said "input 'audio' axis 0 is dynamic (batch) and not batch or sequence"."""
    model = load_model(named_files["plain"])
    feeds, seq_len = timing_feeds(model, read_metadata(model), 2, None)
    assert seq_len == 6
    assert {n: a.shape for n, a in feeds.items()} == {"audio": (2, 6, 4), "start": (1, 2, 5), "valid": (2,)}
    assert (feeds["valid"] == 6).all()
    session = onnxruntime.InferenceSession(str(named_files["plain"]))
    assert session.run(None, feeds)[0].shape == (2, 6, 5)


@pytest.mark.parametrize("chunk", [None, 3])
def test_timing_feeds_give_a_streaming_files_states_as_zeros(named_files, tmp_path, chunk):
    """bench of a streaming lone GRU said "input 'state_in' axis 0 is dynamic (batch) and not batch
    or sequence": a state's axis 0 is the batch."""
    gru = CustomGRU(4, 5, num_layers=2, batch_first=True)
    path = graph_export(gru, (torch.randn(2, chunk or 6, 4),), tmp_path / "s.onnx", streaming=True, chunk=chunk,
                        check=False).path  # fmt: skip
    model = load_model(path)
    feeds, seq_len = timing_feeds(model, read_metadata(model), 3, None)
    assert seq_len == (chunk or 200)
    assert feeds["input"].shape == (3, seq_len, 4)
    assert feeds["state_in"].shape == (3, 2, 5) and not feeds["state_in"].any()
    outputs = onnxruntime.InferenceSession(str(path)).run(None, feeds)
    assert outputs[0].shape == (3, seq_len, 5)
    named = load_model(named_files["stream"])
    feeds, _ = timing_feeds(named, read_metadata(named), 2, 7)
    assert {n: a.shape for n, a in feeds.items()} == {"audio": (2, 7, 4), "state_in": (2, 1, 5)}
    report = bench(path, BenchOptions(batch=3, warmup=0, runs=2, baselines=False))
    assert [t.kind for t in report.timings] == ["file"]


class _Whole(torch.nn.Module):
    """A whole model around a CustomGRU (batch first), as a user writes one."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = CustomGRU(4, 5, batch_first=True, activation="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


def test_timing_feeds_refuse_a_batch_a_static_whole_model_cannot_take(tmp_path):
    """bench of a whole model exported with a static batch of 2 said "batch 7" and computed its
    sequences per second for 7, while the file ran at 2: the static size is now refused by name."""
    path = flat.export(_Whole(), (torch.randn(2, 6, 4),), tmp_path / "w.onnx", dynamic_batch=False, check=False).path
    model = load_model(path)
    with pytest.raises(gru_onnx.GruOnnxUsageError, match=r"input 'x' has a static batch axis of 2; use --batch 2"):
        timing_feeds(model, read_metadata(model), 7, None)
    feeds, seq_len = timing_feeds(model, read_metadata(model), 2, None)
    assert seq_len == 6 and feeds["x"].shape == (2, 6, 4)


def _foreign(tmp_path, dims) -> onnx.ModelProto:
    """A file without gru-onnx metadata: an Identity on one float input of ``dims``."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, dims)
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, dims)
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])


def test_timing_feeds_refuse_what_a_file_without_metadata_does_not_say(tmp_path):
    """A foreign file with static shapes was timed at its own shapes while the report said
    ``--batch 5 --seq-len 7``; axes named batch and seq are still set."""
    with pytest.raises(gru_onnx.GruOnnxUsageError, match="cannot tell which input axis is the batch"):
        timing_feeds(_foreign(tmp_path, [3, 2, 4]), None, 5, 7)
    with pytest.raises(gru_onnx.GruOnnxUsageError, match="cannot tell which input axis is the sequence"):
        timing_feeds(_foreign(tmp_path, ["batch", 2, 4]), None, 5, 7)
    feeds, seq_len = timing_feeds(_foreign(tmp_path, ["batch", "seq", 4]), None, 5, 7)
    assert seq_len == 7 and feeds["x"].shape == (5, 7, 4)


def test_a_check_of_more_steps_than_its_limit_is_refused(tmp_path, run_cli):
    """A 1x1 GRU whose file (input, output and metadata) was forged to 2,000,000 static steps:
    ``check --samples 1`` ran for two minutes. The limit names itself and what to pass instead."""
    path = tmp_path / "tiny.onnx"
    gru_onnx.export(CustomGRU(1, 1), (torch.randn(5, 2, 1),), path, graph=gru_onnx.GraphOptions(strategy="loop"),
                    check=None)  # fmt: skip
    model = onnx.load(path)
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 2_000_000
    (prop,) = [p for p in model.metadata_props if p.key == "gru_onnx"]
    meta = json.loads(prop.value)
    meta["stacks"][0]["seq_len"] = 2_000_000
    prop.value = json.dumps(meta)
    with pytest.raises(gru_onnx.GruOnnxUsageError, match=r"over the check's limit of 1000000.*--inputs FILE\.npz"):
        generate_samples(model, meta, count=1, seq_len=None, batch=None, seed=0)
    onnx.save(model, path)
    result = run_cli("check", str(path), "--samples", "1", "--scale", "1")
    assert result.exit_code == 2 and "2000000 GRU steps, over the check's limit" in result.output, result.output
    bench = run_cli("bench", str(path), "--runs", "1", "--warmup", "0")  # ran for minutes as well
    assert bench.exit_code == 2 and "2000000 GRU steps, over bench's limit of 1000000" in bench.output, bench.output
    dynamic = tmp_path / "dyn.onnx"
    gru_onnx.export(CustomGRU(1, 1), (torch.randn(5, 2, 1),), dynamic, graph=gru_onnx.GraphOptions(strategy="loop"),
                    shapes=gru_onnx.ShapeOptions(dynamic_seq=True), check=None)  # fmt: skip
    asked = run_cli("bench", str(dynamic), "--seq-len", "2000000", "--runs", "1", "--warmup", "0")
    assert asked.exit_code == 2 and "give a shorter --seq-len" in asked.output, asked.output
