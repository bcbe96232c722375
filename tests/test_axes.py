"""Time axes of a whole model's outputs (``gru_onnx.axes``), found by running it: the per-step
error and first failing step of a static whole model, and outputs that have no time axis."""

from __future__ import annotations

import torch
from torch import nn

from gru_onnx import CustomGRU, read_metadata
from gru_onnx.report import render_text

import flat
from flat import export


def test_static_whole_model_reports_per_step_error_and_says_which_outputs_have_no_time_axis(whole_models):
    _, _, result = whole_models["nested-dict"]  # static sequence length: no axis named seq in the file
    path = result.path
    assert read_metadata(path)["time_axes"] == {"heads.tag": 1, "heads.pooled": None, "state.0": None}
    outputs = {o.name: o for o in result.parity.results[0].outputs}
    assert outputs["heads.tag"].time_axis == 1
    assert len(outputs["heads.tag"].per_step_max_abs) == 6
    assert outputs["heads.pooled"].per_step_max_abs is None
    text = render_text(result.parity)
    assert "no time axis (no per-step error): heads.pooled, state.0" in text


def test_first_failing_step_of_a_static_whole_model(tmp_path):
    """A file that goes wrong from step 3 on says so."""

    class Late(nn.Module):
        def __init__(self, shift: float) -> None:
            super().__init__()
            self.gru = CustomGRU(3, 4, batch_first=True)
            self.shift = shift

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.gru(x)
            mask = (torch.arange(y.shape[1]) >= 3).to(y.dtype).view(1, -1, 1)
            return y + self.shift * mask

    torch.manual_seed(1)
    exported = Late(0.5)
    source = Late(0.0)
    source.load_state_dict(exported.state_dict())
    path = tmp_path / "m.onnx"
    export(exported, (torch.randn(2, 6, 3),), path, check=False)
    report = flat.check_parity(source, path, (torch.randn(2, 6, 3),))
    assert not report.passed
    (output,) = report.results[0].outputs
    assert output.first_failing_step == 3
