"""The weight side of a check (``gru_onnx.check.weights``): stored weights against the source,
so a change too small to move the outputs is still caught, in float and int8 files."""

from __future__ import annotations

import onnx
import torch
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU

import flat
from helpers import graph_export, small_export


def test_a_changed_folded_bias_fails_the_weight_check(tmp_path, run_cli):
    gru, _, result = small_export(tmp_path, strategy="unrolled", activation="relu")
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    name = result.metadata["stacks"][0]["weights"]["directions"]["_l0"]["bias_x"]
    model = onnx.load(result.path)
    for init in model.graph.initializer:
        if init.name == name:
            array = numpy_helper.to_array(init).copy()
            array[1] += 1e-3  # r gate, unit 1
            init.CopyFrom(numpy_helper.from_array(array, name))
    onnx.save(model, tmp_path / "changed.onnx")
    assert run_cli("check", "m.onnx", "--checkpoint", "source.pt").exit_code == 0
    result = run_cli("check", "changed.onnx", "--checkpoint", "source.pt")
    assert result.exit_code == 1
    assert "bias_rz_l0: 1 value(s) differ" in " ".join(result.output.split())


# Guards: a weight change too small for the outputs is caught by comparing the weights themselves (trust
#   review, weights)
def test_a_weight_change_too_small_for_the_outputs_is_caught(tmp_path, run_cli):
    torch.manual_seed(0)
    gru = CustomGRU(16, 32, activation="relu")
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    path = graph_export(gru, (torch.randn(20, 2, 16),), tmp_path / "m.onnx", check=False).path
    model = onnx.load(path)
    stored = gru_onnx.read_metadata(path)["stacks"][0]["weights"]["directions"]["_l0"]["weight_hh"][0]  # r/z rows
    for init in model.graph.initializer:
        if init.name == stored:
            array = numpy_helper.to_array(init).copy()
            array[5, 7] += 0.05
            init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, tmp_path / "changed.onnx")
    outputs_only = flat.check_parity(None, tmp_path / "changed.onnx")  # rebuilt from the file itself
    assert outputs_only.passed and not any(w.compared for w in outputs_only.weights)  # wiring only
    result = run_cli("check", "changed.onnx", "--checkpoint", "source.pt")
    assert result.exit_code == 1
    assert "weights of the GRU differ from the source: weight_hh_l0: 1 value(s) differ, worst 0.05 at [5, 7]" in (
        " ".join(result.output.split())
    )
    report = flat.check_parity(gru, tmp_path / "changed.onnx", (torch.randn(20, 2, 16),))
    assert not report.passed and report.weights[0].mismatches[0].name == "weight_hh_l0"
    assert run_cli("check", "m.onnx", "--checkpoint", "source.pt").exit_code == 0


def test_check_against_a_checkpoint_catches_a_changed_weight(run_cli, tmp_path):
    torch.manual_seed(0)  # the CLI's default model: input 16, hidden 32, seed 0
    module = CustomGRU(16, 32, activation="relu")
    torch.save(module.state_dict(), tmp_path / "good.pt")
    with torch.no_grad():
        module.weight_hh_l0[3, 5] += 0.05
    torch.save(module.state_dict(), tmp_path / "changed.pt")
    assert run_cli("export", "--activation", "relu", "--no-check").exit_code == 0
    assert run_cli("quantize", "gru.onnx", "-o", "int8.onnx", "--mode", "weights").exit_code == 0
    good = run_cli("check", "int8.onnx", "--checkpoint", "good.pt")
    assert good.exit_code == 0, good.output
    assert "int8 weights file vs float32 source" in " ".join(good.output.split())
    changed = run_cli("check", "int8.onnx", "--checkpoint", "changed.pt")
    assert changed.exit_code == 1
    assert "weight_hh_l0" in changed.output
