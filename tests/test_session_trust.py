"""gru_onnx.session: one session shared by threads loses no update; misuse is a usage error naming
what was expected (trust review II, items 5 and 11)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, GruOnnxUsageError, StreamingOptions, StreamingSession


@pytest.fixture(scope="module")
def streaming_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("session") / "s.onnx"
    torch.manual_seed(0)
    gru = CustomGRU(3, 4, batch_first=True, activation="relu")
    gru_onnx.export(gru, (torch.randn(2, 5, 3),), path, streaming=StreamingOptions(enabled=True), check=None)
    return path


def test_four_threads_sharing_a_session_lose_no_update(streaming_file):
    """4 threads, one session, 800 calls: 3 updates were lost. Calls are serialised now: with
    a linear count of calls the final state equals that of 800 calls in a row."""
    frames = np.ones((1, 1, 3), np.float32)
    with StreamingSession(streaming_file) as session:
        def work() -> None:
            for _ in range(200):
                session.run({"input": frames})

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shared = session.states["state_in"]
    with StreamingSession(streaming_file) as alone:
        for _ in range(800):
            alone.run({"input": frames})
        np.testing.assert_array_equal(shared, alone.states["state_in"])


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        (np.zeros((1, 2, 3), np.float64), "is float64; the file takes float32"),
        (np.zeros((1, 2, 3), np.int32), "is int32; the file takes float32"),
        (np.zeros((1, 2, 3), np.float16), "is float16; the file takes float32"),
        (np.zeros((1, 2, 3, 1), np.float32), "has shape [1, 2, 3, 1]; the file takes float32 [?, ?, 3]"),
        (np.zeros((1, 2, 5), np.float32), "has shape [1, 2, 5]; the file takes float32 [?, ?, 3]"),
        (np.zeros((1, 0, 3), np.float32), "is empty"),
        ([[0.0, 1.0, 2.0]], "must be a NumPy array"),
    ],
    ids=["float64", "int32", "float16", "rank-4", "features", "empty-chunk", "list"],
)
def test_wrong_feeds_are_usage_errors_naming_dtype_and_shape(streaming_file, feed, message):
    with StreamingSession(streaming_file) as session, pytest.raises(GruOnnxUsageError) as raised:
        session.run({"input": feed})
    assert message in str(raised.value)


@pytest.mark.parametrize(("rows", "message"), [([True], "integers"), ([0.5], "integers"), ([7], "outside the batch")])
def test_reset_with_rows_that_are_not_batch_indices(streaming_file, rows, message):
    with StreamingSession(streaming_file) as session:
        session.run({"input": np.zeros((2, 1, 3), np.float32)})
        with pytest.raises(GruOnnxUsageError, match=message):
            session.reset(rows)


def test_reset_of_one_row_zeroes_only_that_row(streaming_file):
    with StreamingSession(streaming_file) as session:
        session.run({"input": np.ones((2, 1, 3), np.float32)})
        session.reset(np.int64(1))
        state = session.states["state_in"]
        assert (state[1] == 0).all() and (state[0] != 0).any()


def test_providers_given_as_one_string(streaming_file):
    """providers="cpu" read as the providers 'c', 'p', 'u'."""
    with StreamingSession(streaming_file, providers="cpu") as session:
        assert session.run({"input": np.zeros((1, 1, 3), np.float32)})["output"].shape == (1, 1, 4)


def test_run_after_close_is_a_usage_error(streaming_file):
    session = StreamingSession(streaming_file)
    session.close()
    with pytest.raises(GruOnnxUsageError, match="closed"):
        session.run({"input": np.zeros((1, 1, 3), np.float32)})


def test_streaming_a_sequence_first_whole_model_is_refused_up_front(tmp_path):
    """Its advice (dynamic_shapes, --static-batch) did not work: say streaming needs batch-first inputs."""

    class SeqFirst(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = CustomGRU(3, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gru(x)[0]

    for dynamic_batch in (True, False):
        with pytest.raises(GruOnnxUsageError, match="streaming needs batch-first inputs"):
            gru_onnx.export(
                SeqFirst(), (torch.randn(5, 3, 3),), tmp_path / "s.onnx", streaming=StreamingOptions(enabled=True),
                shapes=gru_onnx.ShapeOptions(dynamic_batch=dynamic_batch), check=None,
            )  # fmt: skip
    assert not list(tmp_path.iterdir())
