"""The ONNX Runtime runner (``gru_onnx.runners.onnxruntime``): where nodes ran, read from a real
profile, and parity on the GPU providers where a GPU is present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gru_onnx import CustomGRU
from gru_onnx.runners import RUNNERS, RuntimeUnavailable
from gru_onnx.runners.onnxruntime import fallback_nodes

import flat
from helpers import graph_export


def test_profiler_placement_is_read_from_a_real_profile(tmp_path):
    """ONNX Runtime's profiler says where each node ran; the parser finds GRU nodes."""
    import onnxruntime as ort

    gru = CustomGRU(3, 4, activation="relu")
    path = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "n.onnx", strategy="native", check=False).path
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "prof")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": np.zeros((5, 2, 3), np.float32)})
    profile = json.loads(Path(session.end_profiling()).read_text())
    assert fallback_nodes(profile, "CPUExecutionProvider") == []
    moved = fallback_nodes(profile, "CUDAExecutionProvider")  # as seen from a CUDA session
    assert [(op, where) for _, op, where in moved] == [("GRU", "CPUExecutionProvider")]


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gpu_parity(provider, dtype, tmp_path):
    """Runs where a GPU is present (the device machine); elsewhere it is skipped with the reason."""
    try:
        RUNNERS[provider](tmp_path / "none.onnx").open()
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    except Exception:  # the device works; the file simply does not exist
        pass
    gru = CustomGRU(8, 16, num_layers=2, bidirectional=True, activation="gelu", batch_first=True)
    x = torch.randn(4, 50, 8)
    result = flat.export(gru, (x,), tmp_path / "g.onnx", strategy="loop", dtype=dtype, providers=(provider,))
    assert result.parity.results[0].status == "passed", result.parity.summary()
