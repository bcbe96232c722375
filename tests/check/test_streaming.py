"""The streaming check (``gru_onnx.check.streaming``): chunk plans, ``.npz`` inputs and batch
sizes, a file that is right whole and wrong in chunks (not frame-local)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gru_onnx import CustomGRU, GruOnnxUsageError

import flat
from helpers import graph_export


class ConvFront(nn.Module):
    """A convolution over time before the GRU: not frame-local, so chunks cannot be exact."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.gru = CustomGRU(4, 5, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(self.conv(x.transpose(1, 2)).transpose(1, 2))[0]


def test_non_frame_local_model_fails_with_the_frame_local_message(tmp_path):
    model = ConvFront()
    x = torch.randn(2, 9, 4)
    result = flat.export(model, (x,), tmp_path / "c.onnx", streaming=True)
    report = result.parity
    assert not report.passed
    status = {r.runtime: r.status for r in report.results}
    assert status["onnxruntime-cpu, chunks whole"] == "passed"  # the file itself is right
    assert status["onnxruntime-cpu, chunks 1"] == "failed"
    assert "exact only when everything outside the GRUs is frame-local" in report.failures()[-1]
    # The per-step curve covers every step of the whole sequence.
    chunked = next(r for r in report.results if r.runtime.endswith("chunks 1"))
    assert len(chunked.outputs[0].per_step_max_abs) == x.shape[1]


def test_check_parity_streaming_from_the_file_alone(streaming_file, tmp_path):
    _, path = streaming_file
    report = flat.check_parity(None, path, streaming=[1, 5], seq_len=11)
    assert report.passed, report.summary()
    assert [r.runtime for r in report.results] == ["onnxruntime-cpu, chunks 1", "onnxruntime-cpu, chunks 5"]
    assert report.samples[0]["input"][1] == 11
    with pytest.raises(GruOnnxUsageError, match="not a streaming file"):
        flat.check_parity(None, _plain(tmp_path), streaming=True)


def _plain(folder):
    """A lone-GRU file without states, in ``folder``."""
    plain = folder / "plain.onnx"
    graph_export(CustomGRU(3, 4), (torch.randn(5, 2, 3),), plain, check=False)
    return plain


def test_check_parity_streaming_with_inputs_npz_and_batch(streaming_file, tmp_path):
    _, path = streaming_file
    np.savez(tmp_path / "in.npz", input=np.random.randn(2, 9, 3).astype(np.float32))
    report = flat.check_parity(None, path, inputs=tmp_path / "in.npz", streaming=[4])
    assert report.passed and report.samples[0]["input"] == [2, 9, 3]
    varied = flat.check_parity(None, path, streaming=True, batch=5, samples=2)
    assert varied.passed and [s["input"][:2] for s in varied.samples] == [[5, 12], [5, 12]]  # --batch, default length
