"""Checking a file against the Keras model itself (``gru_onnx.keras.check``), at the example's
length and shorter ones, and failing against other weights."""

from __future__ import annotations

import os
import sys

import pytest

import gru_onnx

from helpers import functional_model

if "keras" not in sys.modules:  # the conftest set the torch backend unless Keras came first
    os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install gru-onnx[keras])")
if keras.backend.backend() != "torch":
    pytest.skip("Keras was imported on another backend in this process", allow_module_level=True)


# Keras' own NumPy conversions, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


def test_cli_exports_and_checks_against_keras(run_cli, tmp_path):
    functional_model().save(tmp_path / "m.keras")
    result = run_cli("export", "--keras", "m.keras", "-o", "m.onnx")
    assert result.exit_code == 0, result.output
    assert "vs Keras (the Keras model itself" in result.output and "PASS against Keras" in result.output
    assert "keras T=1 " in result.output  # a dynamic time axis is checked at other lengths too
    assert gru_onnx.read_metadata(tmp_path / "m.onnx")["dynamic_seq"]
    result = run_cli("check", "m.onnx", "--keras", "m.keras", "--samples", "2")
    assert result.exit_code == 0, result.output
    assert "PASS against Keras" in result.output
    other = functional_model()  # same layout, other weights: the file is not its export
    other.save(tmp_path / "other.keras")
    result = run_cli("check", "m.onnx", "--keras", "other.keras")
    assert result.exit_code == 1 and "parity check against Keras failed" in result.output


def test_a_float16_file_is_checked_against_keras_on_rounded_inputs(run_cli, tmp_path):
    """``export --keras --dtype float16`` failed every Keras row ("expected tensor(float16)"): the
    Keras check fed float32 inputs. Same values rounded now; other weights still fail."""
    functional_model().save(tmp_path / "m.keras")
    result = run_cli("export", "--keras", "m.keras", "--dtype", "float16", "-o", "h.onnx")
    assert result.exit_code == 0, result.output
    assert "PASS against Keras" in result.output and "float16" in result.output
    functional_model().save(tmp_path / "other.keras")
    result = run_cli("check", "h.onnx", "--keras", "other.keras")
    assert result.exit_code == 1 and "parity check against Keras failed" in result.output
