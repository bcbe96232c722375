"""Reading Keras files (``gru_onnx.keras.load``): a Keras 2 .h5 reads hard_sigmoid as Keras 2
did, bad files and a missing Keras are one line with exit 2."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from helpers import assert_same, k2_hard_sigmoid, keras_outputs, run_ort
from helpers import keras_seq as seq
from helpers import sequential as _model

if "keras" not in sys.modules:  # the conftest set the torch backend unless Keras came first
    os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install gru-onnx[keras])")
if keras.backend.backend() != "torch":
    pytest.skip("Keras was imported on another backend in this process", allow_module_level=True)

from keras import layers  # noqa: E402

# Keras' own NumPy conversions, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


def test_cli_keras2_h5_reads_hard_sigmoid_as_keras2(run_cli, tmp_path):
    import h5py

    model = keras.Sequential([
        keras.Input((None, 4), name="x"), layers.GRU(5, recurrent_activation="hard_sigmoid", activation="relu"),
    ])  # fmt: skip
    model.save(tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "r+") as f:  # as Keras 2.15 writes it
        f.attrs["keras_version"] = "2.15.0"
    result = run_cli("export", "--keras", "old.h5", "-o", "old.onnx")
    assert result.exit_code == 0, result.output
    assert "written by Keras 2.15.0" in result.output and "PASS against Keras" in result.output
    keras2 = keras.Sequential([
        keras.Input((None, 4)), layers.GRU(5, recurrent_activation=k2_hard_sigmoid, activation="relu"),
    ])  # fmt: skip
    keras2.set_weights(model.get_weights())
    x = seq(steps=7, scale=3.0)
    assert_same(run_ort(tmp_path / "old.onnx", {"x": x}), keras_outputs(keras2, x))
    assert not np.allclose(keras_outputs(model, x)[0], keras_outputs(keras2, x)[0], atol=1e-3)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.joinpath("m.txt").write_text("hello"), "is not a Keras model file"),
        (lambda p: p.joinpath("m.keras").write_bytes(b"not a zip"), "is not a Keras archive"),
        (lambda p: _model(layers.Dense(2)).save(p / "m.keras"), "has no GRU layer"),
        (lambda p: None, "Keras model not found"),
    ],
)
def test_cli_bad_keras_files_exit_2_with_one_line_and_no_file(setup, message, run_cli, tmp_path):
    setup(tmp_path)
    name = "m.txt" if "not a Keras model file" in message else "m.keras"
    result = run_cli("export", "--keras", name, "-o", "out.onnx")
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.onnx").exists()


def test_cli_without_keras_says_how_to_install(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` fails as if not installed
    result = run_cli("export", "--keras", "m.keras")
    assert result.exit_code == 2 and "pip install gru-onnx[keras]" in result.output
