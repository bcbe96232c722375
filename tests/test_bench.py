"""gru-onnx bench: the CLI with a tiny run count, its JSON against the schema, the baselines'
weights, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.bench import bench, fused_op_files

import flat
from conftest import numpy_reference, run_ort


@pytest.fixture
def loop_file(tmp_path):
    torch.manual_seed(0)
    gru = CustomGRU(3, 4, activation="relu")
    result = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="loop", dynamic_seq=True,
                             check=False)  # fmt: skip
    return gru, result.path


def test_bench_cli_writes_json_that_validates(loop_file, run_cli, tmp_path):
    _, path = loop_file
    result = run_cli("bench", str(path), "--runs", "3", "--warmup", "1", "--seq-len", "7", "--batch", "2",
                     "--json", "b.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fused GRU op" in result.output and "PyTorch eager" in result.output
    report = json.loads((tmp_path / "b.json").read_text())
    schema = json.loads(resources.files("gru_onnx").joinpath("bench.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert (report["batch"], report["seq_len"], report["runs"]) == (2, 7, 3)
    kinds = [t["kind"] for t in report["timings"]]
    assert kinds == ["file", "fused-op", "pytorch"]
    fused = report["timings"][1]
    assert fused["ratio"] == 1.0 and fused["p10_ms"] <= fused["median_ms"] <= fused["p90_ms"]
    file = report["timings"][0]
    assert file["sequences_per_s"] == pytest.approx(2 / (file["median_ms"] / 1e3))


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
    flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "g.onnx", strategy="unrolled", check=False)
    result = run_cli("bench", "g.onnx", "--runs", "2", "--warmup", "0", "--json", "g.json")
    assert result.exit_code == 0, result.output
    timings = json.loads((tmp_path / "g.json").read_text())["timings"]
    assert timings[1]["kind"] == "yardstick" and "sigmoid/tanh" in timings[1]["name"]
    assert json.loads((tmp_path / "g.json").read_text())["seq_len"] == 5  # the file's static length


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.onnx"], "no such file"),
        (["{path}", "--runs", "0", "--json", "x.json"], "--runs"),
        (["{path}", "--json", "nodir/x.json"], "cannot write"),
        (["{static}", "--seq-len", "9", "--json", "x.json"], "fixed at 5"),
        (["{static}", "--provider", "gpu", "--json", "x.json"], "--provider"),
        (["{static}", "--cuda-graph", "--json", "x.json"], "--cuda-graph with --provider cuda only"),
        (["{static}", "--cuda-graph", "--provider", "cpu", "--provider", "cuda"], "--provider cuda only"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, loop_file, tmp_path):
    _, path = loop_file
    flat.export(CustomGRU(3, 4, activation="relu"), (torch.randn(5, 2, 3),), tmp_path / "s.onnx",
                    strategy="unrolled", check=False)  # fmt: skip
    argv = [a.format(path=path, static=tmp_path / "s.onnx") for a in args]
    proc = subprocess.run(["gru-onnx", "bench", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and not proc.stdout
    assert not (tmp_path / "x.json").exists()


def test_cuda_graphs_refuse_control_flow_before_any_runtime_opens(loop_file):
    # ONNX Runtime runs Scan/Loop/If from the CPU, so a capture would fail on the GPU: refused
    # from the file's content, here on a machine without CUDA as on one with it.
    _, path = loop_file
    with pytest.raises(gru_onnx.GruOnnxUsageError, match=r"control flow \((Loop|Scan)\).*unrolled"):
        bench(path, gru_onnx.BenchOptions(providers=("cuda",), cuda_graph=True))


def test_cuda_graph_timing_on_the_cuda_provider(tmp_path):
    from gru_onnx.runners import unavailable_reason

    if reason := unavailable_reason("cuda"):
        pytest.skip(reason)
    path = tmp_path / "u.onnx"
    flat.export(CustomGRU(3, 4, activation="relu"), (torch.randn(5, 2, 3),), path, strategy="unrolled", check=False)
    report = bench(path, gru_onnx.BenchOptions(providers=("cuda",), cuda_graph=True, runs=5, warmup=2))
    file = report.timings[0]
    assert file.note == "CUDA graph" and file.median_ms > 0


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


def test_whole_model_bench_with_model_factory(tmp_path, run_cli, monkeypatch):
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    sys.modules.pop("examples.tagger", None)
    from examples.tagger import make_model

    model, args = make_model()
    flat.export(model, args, tmp_path / "t.onnx", check=False)
    without = run_cli("bench", "t.onnx", "--runs", "2", "--warmup", "0", "--batch", "3", "--json", "a.json")
    assert without.exit_code == 0, without.output
    report = json.loads((tmp_path / "a.json").read_text())
    assert [t["kind"] for t in report["timings"]] == ["file", "yardstick"]  # gelu: no native form
    assert report["seq_len"] == 50 and report["batch"] == 3
    with_model = run_cli("bench", "t.onnx", "--model", "examples.tagger:make_model", "--runs", "2", "--warmup", "0",
                         "--json", "b.json")  # fmt: skip
    assert with_model.exit_code == 0, with_model.output
    (torch_row,) = [t for t in json.loads((tmp_path / "b.json").read_text())["timings"] if t["kind"] == "pytorch"]
    assert torch_row["note"] == "the --model module"
