"""The examples in examples/ run as documented."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ci_example_passes():
    proc = subprocess.run(
        # -n 0: one process for the example's two tests (the project's addopts would spread them over every core)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "examples/test_ci_parity.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout


def test_tagger_example_exports(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gru_onnx.cli", "export", "--model", "examples.tagger:make_model",
         "-o", str(tmp_path / "tagger.onnx")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PASS" in proc.stdout and (tmp_path / "tagger.onnx").exists()


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed (gru-onnx[keras])")
def test_keras_relu_gru_example_trains_exports_and_matches_keras(tmp_path):
    proc = subprocess.run(
        [sys.executable, "examples/keras_relu_gru.py", str(tmp_path / "relu.onnx")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": "torch"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "parity vs Keras, T=50" in proc.stdout and proc.stdout.strip().endswith("PASS")
    assert (tmp_path / "relu.onnx").exists()


def test_keras_custom_gru_example_exports_the_seeds_subclass_from_another_process(tmp_path):
    """The seed's model in Keras 3 (a registered GRU subclass with relu), trained, saved, exported by
    `gru-onnx export --keras --import` in a separate process, checked against Keras at T=3 and 41."""
    proc = subprocess.run(
        [sys.executable, "examples/keras_custom_gru.py", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": "torch"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PASS against Keras" in proc.stdout and "against Keras, T=41" in proc.stdout
    assert proc.stdout.strip().endswith("PASS") and (tmp_path / "custom_gru.onnx").exists()


def test_streaming_denoiser_example_streams_frame_by_frame(tmp_path):
    proc = subprocess.run(
        [sys.executable, "examples/streaming_denoiser.py", str(tmp_path / "denoiser.onnx")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "parity PASS" in proc.stdout and "one per call: max |onnx - torch|" in proc.stdout
    assert proc.stdout.strip().endswith("PASS") and "state denoise_gru_state_in" in proc.stdout
