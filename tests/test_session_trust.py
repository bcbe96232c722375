"""gru_onnx.session: one session shared by threads loses no update; misuse is a usage error naming
what was expected (trust review II, items 5 and 11)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, GruOnnxUsageError, StreamingOptions, StreamingSession
from gru_onnx.runners import Runner

from helpers import graph_export


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


@pytest.mark.parametrize(
    ("rows", "message"),
    [([True], "integers"), ([0.5], "integers"), ([7], "outside the batch"), (1.5, "got 1.5"),
     (np.float64(0), "a batch index or an iterable of them"), (np.array(1), "a batch index or an iterable"),
     ("0", "got '0'"), (True, "got True")],
)  # fmt: skip
def test_reset_with_rows_that_are_not_batch_indices(streaming_file, rows, message):
    """reset(1.5) and reset(np.float64(0)) raised TypeError ('float' object is not iterable)."""
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


class NumpyOnly(Runner):
    """A runtime without I/O binding (as OpenVINO, Node.js and the browser are), on ONNX Runtime."""

    name = "numpy-only"

    def _open(self) -> None:
        self._session = onnxruntime.InferenceSession(str(self.path))

    def _run(self, feeds):
        return self._session.run(None, feeds)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"io_binding": "yes"}, "io_binding must be True, False or None"),
        ({"io_binding": 1}, "io_binding must be True, False or None"),
        ({"providers": None}, "providers must be a provider key or a sequence of them (cpu, "),
        ({"providers": 5}, "providers must be a provider key"),
        ({"providers": ["cpu", None]}, "providers must be a provider key"),
        ({"providers": "bogus"}, "unknown provider 'bogus'"),
        ({"threads": "a"}, "threads must be a whole number from 1 to 1024 or None, got 'a'"),
        ({"threads": 0}, "threads must be a whole number from 1 to 1024"),
        ({"threads": -1}, "threads must be a whole number from 1 to 1024"),
        ({"threads": True}, "threads must be a whole number from 1 to 1024"),
        ({"threads": 10**12}, "threads must be a whole number from 1 to 1024 or None, got 1000000000000"),
        ({"threads": 1025}, "threads must be a whole number from 1 to 1024"),
        ({"model": b"onnx"}, "model must be the file's onnx.ModelProto"),
        ({"runner": "cpu"}, "runner must be a gru_onnx Runner"),
    ],
    ids=[
        "io-binding-str", "io-binding-int", "providers-none", "providers-int", "providers-none-inside",
        "providers-bogus", "threads-str", "threads-0", "threads-negative", "threads-bool", "threads-huge",
        "threads-over", "model-bytes", "runner-str",
    ],
)
def test_bad_session_arguments_are_usage_errors(streaming_file, kwargs, message):
    """io_binding="yes", threads 0 and -1 were accepted; providers=None, threads="a" and
    threads=10**12 raised TypeError (and thousands of threads took minutes to start)."""
    with pytest.raises(GruOnnxUsageError) as raised:
        StreamingSession(streaming_file, **kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_providers_all_means_the_first_runtime_that_opens_here(streaming_file):
    """"all" was refused by a message that listed it as valid."""
    with StreamingSession(streaming_file, "all") as session:
        assert session.run({"input": np.zeros((1, 2, 3), np.float32)})["output"].shape == (1, 2, 4)


def test_io_binding_on_a_runtime_without_it_is_refused_not_ignored(streaming_file):
    with NumpyOnly(streaming_file) as runner:
        with pytest.raises(GruOnnxUsageError, match="io_binding=True needs ONNX Runtime's I/O binding; numpy-only"):
            StreamingSession(streaming_file, runner=runner, io_binding=True)
        for io_binding in (None, False):  # NumPy states, as the runtime carries them
            with StreamingSession(streaming_file, runner=runner, io_binding=io_binding) as session:
                assert not session.io_binding
                session.run({"input": np.zeros((1, 2, 3), np.float32)})


def test_a_model_that_is_not_the_file_is_refused(streaming_file, tmp_path):
    """model= of another file gave ONNX Runtime's raw InvalidArgument on the first run."""
    other = graph_export(CustomGRU(3, 7, batch_first=True), (torch.randn(2, 5, 3),), tmp_path / "o.onnx",
                         streaming=True, check=False).path  # fmt: skip
    with pytest.raises(GruOnnxUsageError, match=r"is not the file .*: its inputs differ \(the same names, other"):
        StreamingSession(streaming_file, model=onnx.load(other))
    renamed = onnx.load(streaming_file)
    renamed.graph.output[0].name = "renamed"
    with pytest.raises(GruOnnxUsageError, match="its outputs differ"):
        StreamingSession(streaming_file, model=renamed)
    for key in ("cpu", "numpy-only"):  # the runtime says what it opened, or the file is read
        runner = NumpyOnly(streaming_file) if key == "numpy-only" else None
        with pytest.raises(GruOnnxUsageError, match="is not the file"):
            StreamingSession(streaming_file, model=onnx.load(other), runner=runner and runner.open())
    with NumpyOnly(other) as runner, pytest.raises(GruOnnxUsageError, match="the runner given is open on"):
        StreamingSession(streaming_file, runner=runner)
    with StreamingSession(streaming_file, model=onnx.load(streaming_file)) as session:  # the file itself
        assert session.run({"input": np.zeros((1, 2, 3), np.float32)})["output"].shape == (1, 2, 4)
