"""Bench baselines (``gru_onnx.bench``): the fused-op file holds the file's own weights where
the activations have a native form, a labelled sigmoid/tanh yardstick where they do not."""

from __future__ import annotations

import json

import numpy as np
import onnx
import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.bench import fused_op_files

from helpers import graph_export, numpy_reference, run_ort


def test_the_fused_op_baseline_holds_the_files_weights(loop_file, tmp_path):
    gru, path = loop_file
    model = onnx.load(path)
    ((_, kind, fused, _),) = fused_op_files(model, gru_onnx.read_metadata(model), 2, 6, tmp_path)
    assert kind == "fused-op"
    assert [n.op_type for n in onnx.load(fused).graph.node].count("GRU") == 1
    x = torch.randn(6, 2, 3)
    y, _ = run_ort(fused, {"input": x.numpy()})
    np.testing.assert_allclose(y, numpy_reference(gru, x)[0], rtol=1e-4, atol=1e-5)


def test_activations_without_a_native_form_get_a_labelled_yardstick(tmp_path, run_cli):
    gru = CustomGRU(3, 4, activation="gelu")
    graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "g.onnx", strategy="unrolled", check=False)
    result = run_cli("bench", "g.onnx", "--runs", "2", "--warmup", "0", "--json", "g.json")
    assert result.exit_code == 0, result.output
    timings = json.loads((tmp_path / "g.json").read_text())["timings"]
    assert timings[1]["kind"] == "yardstick" and "sigmoid/tanh" in timings[1]["name"]
    assert json.loads((tmp_path / "g.json").read_text())["seq_len"] == 5  # the file's static length
