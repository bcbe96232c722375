"""The seed's own model (issue 18): Keras GRU subclasses and custom layers through from_keras and --keras,
checked against Keras itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install gru-onnx[keras])")
if keras.backend.backend() != "torch":
    pytest.skip("Keras was imported on another backend in this process", allow_module_level=True)

import gru_onnx  # noqa: E402
from gru_onnx import GruOnnxUsageError, ShapeOptions  # noqa: E402
from gru_onnx.keras import convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SEED_MODULE = '''
import keras

@keras.saving.register_keras_serializable(package="seed")
class CustomGRU(keras.layers.GRU):
    def __init__(self, units, **kwargs):
        kwargs.pop("activation", None)
        super().__init__(units, activation="relu", **kwargs)
'''

CELL_MODULE = '''
import keras

@keras.saving.register_keras_serializable(package="seedcell")
class ReluCell(keras.layers.GRUCell):
    """The seed's idea in Keras 3: the candidate's activation is a method of the cell."""

    def _activation(self, x):
        return keras.ops.relu(x)

    def call(self, inputs, states, training=False):
        stock, self.activation = self.activation, self._activation
        try:
            return super().call(inputs, states, training=training)
        finally:
            self.activation = stock
'''


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """The user's modules, importable from the test's folder (as --import finds them)."""
    (tmp_path / "seedlayers.py").write_text(SEED_MODULE)
    (tmp_path / "seedcells.py").write_text(CELL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import importlib

    return importlib.import_module("seedlayers"), importlib.import_module("seedcells")


@pytest.fixture(autouse=True)
def _no_user_converters():
    yield
    convert.USER_CONVERTERS.clear()


def _seed_model(seedlayers) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((None, 5)), seedlayers.CustomGRU(units=10, return_sequences=True)])


def _keras_error(module: torch.nn.Module, model: keras.Model, steps: int = 9) -> float:
    x = np.random.default_rng(steps).standard_normal((3, steps, 5)).astype(np.float32)
    with torch.no_grad():
        ours = module(torch.from_numpy(x))
    theirs = keras.ops.convert_to_numpy(model(x, training=False))
    return float(np.abs(ours.numpy() - theirs).max())


def test_a_registered_subclass_with_the_stock_math_converts(user_code, tmp_path):
    seedlayers, _ = user_code
    model = _seed_model(seedlayers)
    module = gru_onnx.from_keras(model)
    gru = next(m for m in module.modules() if isinstance(m, gru_onnx.CustomGRU))
    assert gru.spec.activation.name == "relu"
    assert _keras_error(module, model) < 1e-5
    result = gru_onnx.export(module, module.example_inputs(seq_len=6), tmp_path / "s.onnx",
                             shapes=ShapeOptions(dynamic_seq=True))  # fmt: skip
    assert result.passed


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "gru_onnx.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)  # fmt: skip


def test_the_cli_names_the_missing_class_then_exports_with_import(user_code, tmp_path):
    """A fresh process cannot load a custom class it never imported: the message names it, its
    module and the --import to add; with --import the export and its check against Keras pass."""
    seedlayers, _ = user_code
    _seed_model(seedlayers).save(tmp_path / "subclass.keras")
    missing = _cli("export", "--keras", "subclass.keras", cwd=tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert "seed>CustomGRU (module 'seedlayers')" in missing.stderr and "--import seedlayers" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    checked = _cli("check", "nothing.onnx", "--keras", "subclass.keras", cwd=tmp_path)
    assert checked.returncode == 2
    done = _cli("export", "--keras", "subclass.keras", "--import", "seedlayers", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "PASS against Keras" in done.stdout
    assert (tmp_path / "subclass.onnx").is_file()  # named after the Keras file, not gru.onnx
    again = _cli("check", "subclass.onnx", "--keras", "subclass.keras", "--import", "seedlayers", "--scale", "3",
                 cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "x3" not in again.stderr, again.stderr


def test_a_subclass_that_overrides_the_computation_is_refused_then_converted(user_code, tmp_path):
    _, seedcells = user_code
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((None, 5)), keras.layers.RNN(seedcells.ReluCell(6), return_sequences=True)])
    refused = r"overrides ReluCell\._activation, ReluCell\.call.*register_keras_layer\(ReluCell,"  # the cell's class
    with pytest.raises(GruOnnxUsageError, match=refused):
        gru_onnx.from_keras(model)
    gru_onnx.register_keras_layer(seedcells.ReluCell, lambda layer: gru_onnx.keras.keras_gru(layer, activation="relu"))
    module = gru_onnx.from_keras(model)
    assert _keras_error(module, model) < 1e-5  # what Keras computes: relu, through the method
    result = gru_onnx.export(module, module.example_inputs(seq_len=5), tmp_path / "c.onnx",
                             shapes=ShapeOptions(dynamic_seq=True))  # fmt: skip
    assert result.passed


def test_a_converter_registered_by_name_and_returning_any_module(user_code):
    seedlayers, _ = user_code
    model = _seed_model(seedlayers)
    seen = []

    def converter(layer):
        seen.append(layer.name)
        return gru_onnx.keras.keras_gru(layer)

    gru_onnx.register_keras_layer("seed>CustomGRU", converter)
    module = gru_onnx.from_keras(model)
    assert seen == [model.layers[0].name] and _keras_error(module, model) < 1e-5
    with pytest.raises(GruOnnxUsageError, match="registered already"):
        gru_onnx.register_keras_layer("seed>CustomGRU", converter)


def test_rnn_over_a_gru_cell_converts_by_the_same_rules():
    keras.utils.set_random_seed(2)
    for cell in (keras.layers.GRUCell(4, activation="gelu"), keras.layers.GRUCell(4, reset_after=False)):
        inputs = keras.Input((None, 3))
        outputs = keras.layers.RNN(cell, return_sequences=True, go_backwards=True)(inputs)
        model = keras.Model(inputs, outputs)
        module = gru_onnx.from_keras(model)
        x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype(np.float32)
        with torch.no_grad():
            ours = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(model(x)), atol=1e-5, rtol=1e-4)


def test_rnn_over_another_cell_is_refused_naming_it():
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, keras.layers.RNN(keras.layers.LSTMCell(4))(inputs))
    with pytest.raises(GruOnnxUsageError, match="RNN around LSTMCell"):
        gru_onnx.from_keras(model)


def test_return_state_outputs_get_distinct_names(tmp_path):
    """A GRU with return_state=True, return_sequences=False gave ['gru_2_1', 'gru_2_1']."""
    inputs = keras.Input((None, 5), name="x")
    last, state = keras.layers.GRU(6, return_state=True, name="gru_2")(inputs)
    module = gru_onnx.from_keras(keras.Model(inputs, [last, state]))
    result = gru_onnx.export(module, module.example_inputs(seq_len=4), tmp_path / "r.onnx",
                             shapes=ShapeOptions(dynamic_seq=True))  # fmt: skip
    names = [o.name for o in onnx.load(tmp_path / "r.onnx").graph.output]
    assert names == ["gru_2_0", "gru_2_1"] and result.passed


def test_an_initial_state_model_exports_with_a_dynamic_time_axis_by_default(tmp_path):
    """It failed unless the user passed dynamic_shapes=module.dynamic_shapes()."""
    x, h = keras.Input((None, 5), name="x"), keras.Input((6,), name="h")
    model = keras.Model([x, h], keras.layers.GRU(6, return_sequences=True)(x, initial_state=h))
    module = gru_onnx.from_keras(model)
    result = gru_onnx.export(module, module.example_inputs(seq_len=4), tmp_path / "i.onnx",
                             shapes=ShapeOptions(dynamic_seq=True))  # fmt: skip
    assert result.passed and result.metadata["dynamic_seq"]


def test_a_keras_file_that_is_not_an_archive_says_so(tmp_path, run_cli):
    """It said "File not found: filepath=..."."""
    (tmp_path / "fake.keras").write_text("not a zip")
    result = run_cli("export", "--keras", str(tmp_path / "fake.keras"))
    assert result.exit_code == 2 and "is not a Keras archive" in result.output
