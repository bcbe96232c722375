"""``gru-onnx bench``: a tiny run count, its JSON against the schema, a ``--model`` factory's
module as the PyTorch baseline, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import torch

from gru_onnx import CustomGRU

import flat
from helpers import graph_export


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
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, loop_file, tmp_path, run_main):
    _, path = loop_file
    graph_export(CustomGRU(3, 4, activation="relu"), (torch.randn(5, 2, 3),), tmp_path / "s.onnx",
                 strategy="unrolled", check=False)  # fmt: skip
    argv = [a.format(path=path, static=tmp_path / "s.onnx") for a in args]
    proc = run_main("bench", *argv)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and not proc.stdout
    assert not (tmp_path / "x.json").exists()


def test_whole_model_bench_with_model_factory(tmp_path, run_cli, monkeypatch):
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    sys.modules.pop("examples.tagger", None)
    from examples.tagger import make_model

    model, args = make_model()
    flat.export(model, args, tmp_path / "t.onnx", check=False)
    without = run_cli("bench", "t.onnx", "--runs", "2", "--warmup", "0", "--batch", "3", "--json", "a.json")
    assert without.exit_code == 0, without.output
    report = json.loads((tmp_path / "a.json").read_text())
    assert [t["kind"] for t in report["timings"]] == ["file", "yardstick"]  # gelu: no native form
    assert report["seq_len"] == args[0].shape[1] and report["batch"] == 3  # the static file's length
    with_model = run_cli("bench", "t.onnx", "--model", "examples.tagger:make_model", "--runs", "2", "--warmup", "0",
                         "--json", "b.json")  # fmt: skip
    assert with_model.exit_code == 0, with_model.output
    (torch_row,) = [t for t in json.loads((tmp_path / "b.json").read_text())["timings"] if t["kind"] == "pytorch"]
    assert torch_row["note"] == "the --model module"


def test_a_file_the_runtime_cannot_run_is_one_line_naming_the_runtime(loop_file, tmp_path):
    """Guards: a runtime failure while timing (here an output of 4 TB) exited 3, with ONNX
    Runtime's own multi-line log before it (attack review)."""
    import onnx
    from onnx import TensorProto, helper

    _, path = loop_file
    model = onnx.load(str(path))
    shape = helper.make_tensor("huge_shape", TensorProto.INT64, [2], [1_000_000, 1_000_000])
    model.graph.initializer.append(shape)
    model.graph.node.append(helper.make_node("ConstantOfShape", ["huge_shape"], ["huge"]))
    model.graph.output.append(helper.make_tensor_value_info("huge", TensorProto.FLOAT, [1_000_000, 1_000_000]))
    onnx.save(model, str(tmp_path / "huge.onnx"))
    proc = subprocess.run(["gru-onnx", "bench", "huge.onnx", "--runs", "2", "--warmup", "0"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: onnxruntime-cpu could not run the file")
    assert len(proc.stderr.splitlines()) == 1


def test_a_file_the_runtime_cannot_load_is_one_line_exit_2(loop_file, tmp_path):
    """Guards: a file ONNX Runtime refuses to load exited 3 with its traceback: runners were opened
    outside the probe. (An input of type STRING was the attack; the file checks refuse that one
    now, so the runtime is given an op of an unknown domain, which ONNX itself cannot judge.)"""
    import onnx

    _, path = loop_file
    model = onnx.load(str(path))
    model.graph.node[0].domain = "x.unknown"
    model.opset_import.append(onnx.helper.make_opsetid("x.unknown", 1))
    onnx.save(model, str(tmp_path / "str.onnx"))
    proc = subprocess.run(["gru-onnx", "bench", "str.onnx", "--runs", "2", "--warmup", "0"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: ") and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "onnxruntime-cpu" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("threads", ["99999999999", "1025", "100000"])
def test_threads_beyond_the_bound_are_refused_before_any_runtime_starts(threads, loop_file, run_cli):
    """Guards: --threads 99999999999 exited 3 (TypeError), 2000 spawned threads for minutes and
    100000 crashed under a memory limit; the flag takes 1 to 1024, as its help says."""
    _, path = loop_file
    result = run_cli("bench", str(path), "--threads", threads, "--runs", "1", "--warmup", "0")
    assert result.exit_code == 2, result.output
    assert "--threads" in result.output and "1<=x<=1024" in result.output


def test_the_threads_bound_is_in_the_help(run_cli):
    result = run_cli("bench", "--help")
    assert "Intra-op threads, 1 to 1024." in " ".join(result.output.split())
