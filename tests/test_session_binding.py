"""gru_onnx.session with I/O binding (issue 20): the states stay ONNX Runtime values between calls,
and the file computes the same as with NumPy states, frame by frame, resets included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, StreamingOptions, StreamingSession

from helpers import numpy_reference


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CustomGRU]:
    path = tmp_path_factory.mktemp("binding") / "s.onnx"
    torch.manual_seed(0)
    gru = CustomGRU(5, 7, num_layers=2, batch_first=True, activation="gelu", reset_after=False)
    gru_onnx.export(gru, (torch.randn(2, 6, 5),), path, streaming=StreamingOptions(enabled=True), check=None)
    return path, gru


def test_states_stay_runtime_values_and_match_numpy_states_and_the_reference(streamed):
    path, gru = streamed
    x = np.random.default_rng(0).standard_normal((3, 11, 5)).astype(np.float32)
    with StreamingSession(path, io_binding=True) as bound, StreamingSession(path) as plain:
        assert bound.io_binding and not plain.io_binding  # the CPU default: NumPy states
        frames_bound, frames_plain = [], []
        for t in range(11):
            frames_bound.append(bound.run({"input": x[:, t : t + 1]})["output"])
            frames_plain.append(plain.run({"input": x[:, t : t + 1]})["output"])
        assert isinstance(bound._states["state_in"], ort.OrtValue)
        np.testing.assert_array_equal(np.concatenate(frames_bound, 1), np.concatenate(frames_plain, 1))
        np.testing.assert_array_equal(bound.states["state_in"], plain.states["state_in"])
    expected, _ = numpy_reference(gru, torch.from_numpy(x))
    np.testing.assert_allclose(np.concatenate(frames_bound, 1), expected, atol=1e-5, rtol=1e-4)


def test_outputs_stay_runtime_values_when_asked(streamed):
    path, _ = streamed
    with StreamingSession(path, io_binding=True) as session:
        out = session.run({"input": np.zeros((1, 2, 5), np.float32)}, as_numpy=False)["output"]
        assert isinstance(out, ort.OrtValue) and out.shape() == [1, 2, 7]


def test_reset_of_rows_zeroes_them_in_the_bound_states(streamed):
    path, gru = streamed
    x = np.random.default_rng(1).standard_normal((2, 4, 5)).astype(np.float32)
    with StreamingSession(path, io_binding=True) as session:
        session.run({"input": x[:, :2]})
        session.reset([1])
        state = session.states["state_in"]
        assert (state[1] == 0).all() and (state[0] != 0).any()
        rest = session.run({"input": x[:, 2:]})["output"]
    # Row 1 restarted from zero at step 2: the reference on its last two steps alone.
    expected, _ = numpy_reference(gru, torch.from_numpy(x[1:, 2:]))
    np.testing.assert_allclose(rest[1:], expected, atol=1e-5, rtol=1e-4)
