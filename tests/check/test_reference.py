"""The reference side of a check (``gru_onnx.check.reference``): PyTorch's own non-finite
values count as equal where the file agrees, and are said."""

from __future__ import annotations

import re

import torch

from gru_onnx import CustomGRU

from helpers import graph_export


def test_a_model_that_produces_nan_passes_with_a_warning(tmp_path, run_cli):
    from gru_onnx import register_activation

    def zero_by_zero(op, x):
        return op.Div(op.Sub(x, x), op.Sub(x, x))

    register_activation("nan_act", lambda x: (x - x) / (x - x), zero_by_zero, overwrite=True)
    gru = CustomGRU(3, 4, activation="nan_act")
    result = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "nan.onnx", strategy="unrolled")
    assert result.passed  # NaN where PyTorch has NaN counts as equal ...
    assert any("non-finite values in 'output'" in w for w in result.parity.warnings)  # ... but it is said
    assert re.search(r"warning: the PyTorch reference has (\d+) of \1 non-finite values", result.parity.summary())
