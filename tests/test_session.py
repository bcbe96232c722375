"""``StreamingSession`` (``gru_onnx.session``): states carried between calls, batch > 1, rows
reset mid-stream, float16 states, and what it refuses. Its own files are written at the graph
level (``helpers.graph_export``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gru_onnx import CustomGRU, GruOnnxUsageError, StreamingSession

from helpers import graph_export, numpy_reference, stream

TOL = {"rtol": 1e-4, "atol": 1e-5}


def test_reset_rows_mid_stream(streaming_file):
    gru, path = streaming_file
    x = torch.randn(3, 10, 3)
    with StreamingSession(path) as session:
        first = stream(session, {"input": x[:, :4].numpy()}, [2, 2])["output"]
        session.reset([1])  # stream 1 ends; a new one starts in its row
        second = stream(session, {"input": x[:, 4:].numpy()}, [1, 5])["output"]
    whole, _ = numpy_reference(gru, x)
    restarted, _ = numpy_reference(gru, x[1:2, 4:])
    np.testing.assert_allclose(first, whole[:, :4], **TOL)
    np.testing.assert_allclose(second[[0, 2]], whole[[0, 2], 4:], **TOL)
    np.testing.assert_allclose(second[1:2], restarted, **TOL)
    assert not np.allclose(second[1], whole[1, 4:], atol=1e-3)  # the reset changed something


def test_session_states_batch_and_errors(streaming_file):
    _, path = streaming_file
    with StreamingSession(path) as session:
        assert session.states == {} and session.batch_size is None
        session.run({"input": np.zeros((2, 1, 3), np.float32)})
        state = session.states["state_in"]
        assert state.shape == (2, 2, 4) and state.dtype == np.float32
        with pytest.raises(GruOnnxUsageError, match=r"batch size 3.*reset"):
            session.run({"input": np.zeros((3, 1, 3), np.float32)})
        with pytest.raises(GruOnnxUsageError, match="unknown input 'state_in'"):
            session.run({"input": np.zeros((2, 1, 3), np.float32), "state_in": np.zeros((2, 2, 4), np.float32)})
        with pytest.raises(GruOnnxUsageError, match="missing 'input'"):
            session.run({})
        with pytest.raises(GruOnnxUsageError, match="outside the batch"):
            session.reset([5])
        session.reset()
        assert session.batch_size is None
        session.run({"input": np.ones((3, 2, 3), np.float32)})
        assert session.batch_size == 3


def test_float16_file_keeps_float16_states(tmp_path):
    gru = CustomGRU(4, 8, num_layers=2, batch_first=True, activation="relu")
    x = torch.randn(2, 9, 4)
    graph_export(gru, (x,), tmp_path / "h.onnx", streaming=True, dtype="float16", check=False)
    with StreamingSession(tmp_path / "h.onnx") as session:
        got = stream(session, {"input": x.half().numpy()}, [2, 1, 6])["output"]
        assert session.states["state_in"].dtype == np.float16
    want, _ = numpy_reference(gru, x.half().float())  # float16 inputs, float64 math
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-2, atol=2e-3)


def test_session_refuses_a_file_without_states(tmp_path):
    graph_export(CustomGRU(3, 4), (torch.randn(5, 2, 3),), tmp_path / "plain.onnx", check=False)
    with pytest.raises(GruOnnxUsageError, match="not a streaming file"):
        StreamingSession(tmp_path / "plain.onnx")


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=8), batch=st.integers(1, 3))
def test_any_split_equals_the_whole_sequence(streaming_file, sizes, batch):
    gru, path = streaming_file
    x = torch.randn(batch, sum(sizes), 3)
    with StreamingSession(path) as session:
        got = stream(session, {"input": x.numpy()}, sizes)["output"]
    np.testing.assert_allclose(got, numpy_reference(gru, x)[0], **TOL)
