"""The plain check (``gru_onnx.check.plain``): every sample through every runtime, compared with
the reference; a failure names the output and its first failing time step."""

from __future__ import annotations

import json

from helpers import perturb


def test_perturbed_weights_fail_and_name_output_and_step(exported, run_cli, tmp_path):
    _, _, path = exported
    perturb(path, tmp_path / "bad.onnx", "weight_hh_l1", 1e-3)
    # Checked against the file's own weights the perturbation is invisible ...
    assert run_cli("check", "bad.onnx").exit_code == 0
    # ... against the source weights it is caught.
    result = run_cli("check", "bad.onnx", "--checkpoint", "source.pt", "--report", "r.json", "--plot", "e.png")
    assert result.exit_code == 1, result.output
    assert "parity check failed" in result.output
    # W_hh meets the zero initial state at step 0, so the error starts at step 1.
    assert "output 'output'" in result.output and "first failing time step 1" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    (cpu,) = report["runtimes"]
    output = next(o for o in cpu["outputs"] if o["name"] == "output")
    assert cpu["status"] == "failed" and output["first_failing_step"] == 1 and len(output["per_step_max_abs"]) == 12
    assert output["per_step_max_abs"][0] < 1e-5 < output["per_step_max_abs"][1]
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
