"""Parity in users' CI (``gru_onnx.testing``): ``assert_parity`` fails with the table, and the
``gru_onnx_export`` pytest fixture exports and gates."""

from __future__ import annotations

import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.testing import assert_parity

from helpers import perturb


def test_assert_parity_raises_with_the_table(exported, tmp_path):
    gru, x, path = exported
    report = assert_parity(gru, path, (x,))
    assert report.passed
    perturb(path, tmp_path / "bad.onnx", "weight_ih_l0", 5e-3)
    failed = r"(?s)ONNX parity failed: weights of the GRU differ.*onnxruntime-cpu: output 'output'.*ort-cpu"
    with pytest.raises(AssertionError, match=failed):
        assert_parity(gru, tmp_path / "bad.onnx", (x,))


def test_the_pytest_fixture_exports_and_gates(gru_onnx_export):
    gru = CustomGRU(3, 4, activation="silu", batch_first=True)
    result = gru_onnx_export(
        gru, (torch.randn(2, 5, 3),), graph=gru_onnx.GraphOptions(strategy="loop"),
        shapes=gru_onnx.ShapeOptions(dynamic_seq=True),
    )  # fmt: skip
    assert result.path.exists() and result.parity.passed and result.strategy == "loop"
