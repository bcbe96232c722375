"""The inputs a check runs and the runtimes it runs on (trust review II, items 9, 10, 11 and 12):
gru_onnx.samples refuses non-finite and overflowing inputs, gru_onnx.check.runs makes the API and
the CLI agree on runtimes that cannot run here, gru_onnx.loading names a checkpoint holding code,
and every verdict prints the rule it applied."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import gru_onnx
from gru_onnx import CheckOptions, CustomGRU, GruOnnxUsageError
from gru_onnx.runners import unavailable_reason


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CustomGRU, torch.Tensor]:
    path = tmp_path_factory.mktemp("inputs") / "g.onnx"
    torch.manual_seed(0)
    gru = CustomGRU(3, 4, activation="relu")
    x = torch.randn(6, 2, 3)
    gru_onnx.export(gru, (x,), path, check=None)
    return path, gru, x


# ---------------------------------------------------------------- item 9: non-finite inputs


def test_all_nan_inputs_are_refused(exported, tmp_path, run_cli):
    path, _, _ = exported
    np.savez(tmp_path / "nan.npz", input=np.full((6, 2, 3), np.nan, np.float32))
    result = run_cli("check", str(path), "--inputs", str(tmp_path / "nan.npz"))
    assert result.exit_code == 2 and "holds 36 NaN/inf value(s)" in result.output
    assert "--allow-nonfinite" in result.output
    allowed = run_cli("check", str(path), "--inputs", str(tmp_path / "nan.npz"), "--allow-nonfinite")
    assert allowed.exit_code == 0 and "non-finite values" in allowed.output  # the reference's own warning


def test_float64_inputs_beyond_float32_are_refused_not_made_inf(exported, tmp_path, run_cli):
    """They became inf and gave "max abs 0.0 pass"."""
    path, _, _ = exported
    big = np.random.default_rng(0).standard_normal((6, 2, 3))
    big[0, 0, 0] = 1e40
    np.savez(tmp_path / "big.npz", input=big)
    result = run_cli("check", str(path), "--inputs", str(tmp_path / "big.npz"))
    assert result.exit_code == 2 and "overflow float32 to inf" in result.output
    fine = np.random.default_rng(0).standard_normal((6, 2, 3))  # float64 rounded to float32: fine
    np.savez(tmp_path / "fine.npz", input=fine)
    assert run_cli("check", str(path), "--inputs", str(tmp_path / "fine.npz")).exit_code == 0


def test_integer_inputs_that_would_wrap_are_refused(tmp_path):
    gru = CustomGRU(3, 4)
    path = tmp_path / "l.onnx"
    gru_onnx.export(gru, (torch.randn(6, 2, 3), None, torch.tensor([6, 3])), path, check=None)
    np.savez(tmp_path / "wrap.npz", input=np.zeros((6, 2, 3), np.float32), lengths=np.array([2**63 + 1, 3], np.uint64))
    with pytest.raises(GruOnnxUsageError, match="would wrap around"):
        gru_onnx.check_parity(None, path, check=CheckOptions(inputs=tmp_path / "wrap.npz"))


def test_an_object_npz_is_refused(exported, tmp_path, run_cli):
    path, _, _ = exported
    np.savez(tmp_path / "obj.npz", input=np.array([{"a": 1}], dtype=object))
    result = run_cli("check", str(path), "--inputs", str(tmp_path / "obj.npz"))
    assert result.exit_code == 2 and "cannot read 'input'" in result.output


@pytest.mark.parametrize("content", [b"input,1,2\n", b"\x80\x04K\x01.", b""], ids=["text", "pickle", "empty"])
def test_a_file_that_is_not_an_npz_says_so(content, exported, tmp_path, run_cli):
    """A text file given as --inputs got NumPy's "pickled data ... allow_pickle" message."""
    path, _, _ = exported
    (tmp_path / "in.npz").write_bytes(content)
    result = run_cli("check", str(path), "--inputs", str(tmp_path / "in.npz"))
    assert result.exit_code == 2 and "is not an .npz archive" in result.output, result.output
    assert "pickle" not in result.output


def test_scaled_samples_that_overflow_float16_are_refused(tmp_path):
    gru = CustomGRU(3, 4)
    path = tmp_path / "h.onnx"
    gru_onnx.export(gru, (torch.randn(6, 2, 3),), path, graph=gru_onnx.GraphOptions(dtype="float16"), check=None)
    with pytest.raises(GruOnnxUsageError, match="NaN/inf"):
        gru_onnx.check_parity(None, path, check=CheckOptions(scales=(1e6,)))


# ---------------------------------------------------------------- item 10: the API and the CLI agree


@pytest.mark.skipif(unavailable_reason("openvino") is None and unavailable_reason("cuda") is None,
                    reason="every runtime runs here: nothing is unavailable to ask for")  # fmt: skip
def test_a_runtime_asked_for_by_name_that_cannot_run_fails_in_the_api(exported):
    """check_parity(..., providers=("cpu", "openvino")) without OpenVINO returned passed=True."""
    path, gru, x = exported
    missing = "cuda" if unavailable_reason("cuda") else "openvino"
    with pytest.raises(GruOnnxUsageError, match="not available"):
        gru_onnx.check_parity(gru, path, (x,), check=CheckOptions(providers=("cpu", missing)))
    skipped = gru_onnx.check_parity(
        gru, path, (x,), check=CheckOptions(providers=("cpu", missing), skip_unavailable=True)
    )
    assert skipped.passed and [r.status for r in skipped.results] == ["passed", "skipped"]
    every = gru_onnx.check_parity(gru, path, (x,), check=CheckOptions(providers=("all",)))
    assert every.passed and "skipped" in {r.status for r in every.results}
    # only unavailable runtimes: nothing would be compared, which is not a parity failure (export
    # said "parity check failed" and wrote a .failed.onnx)
    with pytest.raises(GruOnnxUsageError, match=f"no runtime asked for can run here: .*{missing}"):
        gru_onnx.check_parity(gru, path, (x,), check=CheckOptions(providers=(missing,), skip_unavailable=True))


@pytest.mark.skipif(unavailable_reason("cuda") is None, reason="CUDA runs here: nothing is unavailable")
def test_export_with_only_unavailable_runtimes_is_a_usage_error_and_writes_nothing(run_cli, tmp_path):
    result = run_cli("export", "--provider", "cuda", "--skip-unavailable", "-o", "c.onnx")
    assert result.exit_code == 2 and "no runtime asked for can run here" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_providers_given_as_one_string_is_one_provider(exported):
    path, gru, x = exported
    report = gru_onnx.check_parity(gru, path, (x,), check=CheckOptions(providers="cpu"))  # type: ignore[arg-type]
    assert [r.runtime for r in report.results] == ["onnxruntime-cpu"]


# ---------------------------------------------------------------- item 11: messages


def test_a_checkpoint_that_smuggles_code_is_named_so(exported, tmp_path, run_cli):
    path, _, _ = exported

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"weight_ih_l0": torch.zeros(12, 3), "x": Evil()}, tmp_path / "evil.pt")
    result = run_cli("check", str(path), "--checkpoint", str(tmp_path / "evil.pt"))
    assert result.exit_code == 2 and "holds code (a pickled call of posix.system) and was refused" in result.output


def test_a_file_with_an_unregistered_activation_says_how_to_check_it(tmp_path, run_cli):
    from gru_onnx import activations

    gru_onnx.register_activation("quick_gelu", lambda x: x * torch.sigmoid(1.702 * x),
                                 lambda op, x: op.Mul(x, op.Sigmoid(op.Mul(x, 1.702))))  # fmt: skip
    try:
        gru_onnx.export(CustomGRU(3, 4, activation="quick_gelu"), (torch.randn(5, 2, 3),), tmp_path / "q.onnx",
                        check=None)  # fmt: skip
    finally:
        del activations._REGISTRY["quick_gelu"]
    checked = run_cli("check", str(tmp_path / "q.onnx"))
    assert checked.exit_code == 2 and "unknown activation 'quick_gelu'" in checked.output
    assert "--model" in checked.output and "register" in checked.output
    inspected = run_cli("inspect", str(tmp_path / "q.onnx"))
    assert inspected.exit_code == 0 and "quick_gelu/sigmoid" in inspected.output


def test_warnings_are_one_line_without_a_source_path(tmp_path):
    """torch and NumPy warning lines with source paths reached stderr."""
    import subprocess
    import sys

    (tmp_path / "warny.py").write_text(
        "import warnings, torch\nfrom gru_onnx import CustomGRU\n"
        "def make():\n    warnings.warn('something odd\\nsecond line')\n"
        "    return CustomGRU(3, 4), (torch.randn(5, 2, 3),)\n"
    )
    proc = subprocess.run([sys.executable, "-m", "gru_onnx.cli", "export", "--model", "warny:make", "--no-check"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: something odd" in proc.stderr
    assert "warny.py" not in proc.stderr and "second line" not in proc.stderr


# ---------------------------------------------------------------- item 12: the rule as applied


def test_every_verdict_prints_the_rule_it_applied(exported, run_cli):
    """"max abs 7.25e-05 ... ok" under "PASS (atol 1e-05, rtol 0.0001)" read as violated."""
    path, _, _ = exported
    exported_result = run_cli("export", "--activation", "relu", "-o", "e.onnx")
    assert "1e-05*s + 0.0001*|torch|, s the sample's input RMS" in exported_result.output.replace("\n", " ")
    checked = run_cli("check", str(path))
    assert "1e-05*s + 0.0001*|torch|" in checked.output.replace("\n", " ")
    report = gru_onnx.check_parity(None, path, check=CheckOptions(scales=(1.0,)))
    assert report.rule().startswith("pass if |onnx - torch| <= 1e-05*s") or report.rule() == (
        "pass if |onnx - torch| <= 1e-05 + 0.0001*|torch|"
    )
