"""Running a file on runtimes (``gru_onnx.check.runs``): what this machine lacks is skipped for
``all`` and a one-line error when named; a file a runtime cannot load is an error, not a skip;
runtime errors keep their cause in one line."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from gru_onnx.runners.onnxruntime import cuda_device_problem


def test_provider_all_skips_what_this_machine_lacks(exported, run_cli):
    _, _, path = exported
    result = run_cli("check", str(path), "--provider", "all", "--report", "all.json")
    assert result.exit_code == 0, result.output
    statuses = {r["runtime"]: r for r in json.loads(Path("all.json").read_text())["runtimes"]}
    assert statuses["onnxruntime-cpu"]["status"] == "passed"
    for gpu in ("onnxruntime-cuda", "onnxruntime-tensorrt"):
        assert statuses[gpu]["status"] in ("passed", "skipped")
        if statuses[gpu]["status"] == "skipped":
            assert "execution provider not available:" in statuses[gpu]["reason"]


def test_a_single_missing_runtime_is_one_line_exit_2(exported, run_cli):
    if cuda_device_problem() is None:
        pytest.skip("this machine has a CUDA device")
    _, _, path = exported
    result = run_cli("check", str(path), "--provider", "cuda")
    assert result.exit_code == 2
    assert result.output.startswith("Error: CUDA execution provider not available: ")
    assert len(result.output.strip().splitlines()) == 1


def test_a_file_onnx_runtime_cannot_load_is_an_error_not_a_skip(exported, run_cli, tmp_path):
    _, _, path = exported
    model = onnx.load(path)
    next(n for n in model.graph.node if n.op_type == "Relu").op_type = "Reluu"
    onnx.save(model, tmp_path / "broken.onnx")
    result = run_cli("check", "broken.onnx", "--provider", "all")
    assert result.exit_code == 1
    assert "onnxruntime-cpu: could not run the file" in result.output


def test_openvino_errors_keep_the_cause():
    from gru_onnx.check.runs import one_line

    text = (
        "Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'false' failed at src/x.cpp:151:\n"
        "FrontEnd API failed with OpConversionFailure:\nModel wasn't fully converted.\n-- Scan-18: body outputs (2)"
    )
    assert one_line(RuntimeError(text)) == "Model wasn't fully converted. | -- Scan-18: body outputs (2)"
