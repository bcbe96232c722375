"""Inputs for a check (``gru_onnx.samples``): larger magnitudes per dtype, many lengths for
dynamic files, ``.npz`` inputs cast and validated."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.samples import generate_samples

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
