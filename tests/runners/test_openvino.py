"""The OpenVINO runner (``gru_onnx.runners.openvino``): f32 precision pinned, dynamic files
compiled for the feeds' static shapes, native and int8 files, external data read from the
model's folder."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from gru_onnx import CustomGRU

import flat
from helpers import TOKENS, graph_export, numpy_reference


def test_check_passes_on_cpu_and_openvino(exported, run_cli):
    pytest.importorskip("openvino", reason="OpenVINO is an optional extra (gru-onnx[openvino])")
    _, _, path = exported
    result = run_cli("check", str(path), "--provider", "cpu", "--provider", "openvino", "--samples", "2")
    assert result.exit_code == 0, result.output
    assert "ort-cpu" in result.output and "openvino" in result.output and "FAIL" not in result.output
    assert "INFERENCE_PRECISION_HINT=f32" in result.output
    report = flat.check_parity(None, path, providers=("cpu", "openvino"), scales=(1.0,))
    assert [r.status for r in report.results] == ["passed", "passed"] and report.reference == "metadata"
    assert max(o.max_abs for r in report.results for o in r.outputs) < 1e-5


def test_native_file_on_openvino(tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is an optional extra (gru-onnx[openvino])")
    gru = CustomGRU(3, 5, bidirectional=True, batch_first=True, activation="relu")
    x = torch.randn(2, 7, 3)
    lengths = torch.tensor([7, 3])
    path = graph_export(gru, (x, None, lengths), tmp_path / "n.onnx", strategy="native", dynamic_seq=True).path
    report = flat.check_parity(None, path, providers=("openvino",), samples=3)
    assert report.passed, report.summary()
    assert [len(s["lengths_values"]) for s in report.samples] == [3, 3, 3]


def test_openvino_runs_a_dynamic_file_reshaped_to_the_feeds(loop_file, run_cli, tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is an optional extra (gru-onnx[openvino])")
    from gru_onnx.runners import OpenVINORunner

    gru, path = loop_file
    with OpenVINORunner(path) as runner:
        for seq, batch in ((6, 1), (9, 3)):
            x = torch.randn(seq, batch, 3)
            y, _ = runner.run({"input": x.numpy()})
            np.testing.assert_allclose(y, numpy_reference(gru, x)[0], rtol=1e-4, atol=1e-5)
        compiled = list(runner._compiled.values())
        assert len(compiled) == 2 and not any(p.get_partial_shape().is_dynamic for c in compiled for p in c.inputs)
        assert "compiled for the feeds' static shapes" in runner.notes
    result = run_cli("bench", str(path), "--provider", "openvino", "--runs", "2", "--warmup", "0", "--json", "o.json")
    assert result.exit_code == 0, result.output
    (file,) = [t for t in json.loads((tmp_path / "o.json").read_text())["timings"] if t["kind"] == "file"]
    assert file["runtime"] == "openvino" and "static shapes" in file["note"]


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs OpenVINO (gru-onnx[openvino])")
@pytest.mark.parametrize("mode", ["weights", "dynamic"])
def test_openvino_runs_int8_files(run_cli, tmp_path, mode):
    assert run_cli("export", "--activation", "relu", "--strategy", "loop", "--dynamic-seq", "--no-check").exit_code == 0
    assert run_cli("quantize", "gru.onnx", "-o", "int8.onnx", "--mode", mode).exit_code == 0
    result = run_cli("check", "int8.onnx", "--provider", "openvino")
    assert result.exit_code == 0, result.output


def test_openvino_reads_the_pair_from_the_model_path(pair, tagger):
    pytest.importorskip("openvino", reason="needs the [openvino] extra")
    report = flat.check_parity(tagger, pair, (TOKENS,), providers=("openvino",))
    (result,) = report.results
    assert result.status == "passed", report.summary()
    assert report.max_abs < 1e-5
