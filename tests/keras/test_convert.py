"""Keras 3 models and layers converted to torch modules (``gru_onnx.keras.convert``, ``from_keras``),
checked against Keras' own outputs: activations with their Keras meaning, every GRU and
Bidirectional option, whole models and their files, and what is refused."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gru_onnx
from gru_onnx import GruOnnxUsageError

import flat
from helpers import assert_same, functional_model, k2_hard_sigmoid, keras_outputs, run_ort
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
from gru_onnx.keras import KERAS_ACTIVATIONS  # noqa: E402


def module_outputs(module, *inputs):
    with torch.no_grad():
        out = module(*(torch.as_tensor(x) for x in inputs))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def built(layer, x):
    layer(x)  # builds the weights, as a first call does in Keras
    return layer


@pytest.mark.parametrize("role", ["activation", "recurrent_activation"])
@pytest.mark.parametrize("name", sorted(KERAS_ACTIVATIONS))
def test_every_mapped_keras_activation_matches_keras(name, role):
    x = seq(features=3)
    gru = built(layers.GRU(5, return_sequences=True, reset_after=role == "activation", **{role: name}), x)
    module = gru_onnx.from_keras(gru)
    assert_same(module_outputs(module, x), keras_outputs(gru, x))


def test_keras_names_not_in_the_table_are_refused_not_guessed():
    """A Keras built-in outside the table must not silently take a gru-onnx meaning."""
    x = seq(features=3)
    from keras.src.activations import ALL_OBJECTS_DICT  # every name Keras resolves, aliases included

    unmapped = sorted(set(ALL_OBJECTS_DICT) - set(KERAS_ACTIVATIONS))
    assert "exponential" in unmapped and "softmax" in unmapped
    refused = 0
    for name in unmapped:
        try:
            gru = built(layers.GRU(4, activation=name), x)
        except Exception:  # Keras cannot run it in a GRU either (glu halves the last axis)
            continue
        refused += 1
        with pytest.raises(GruOnnxUsageError, match=rf"activation '{name}'.*register_activation"):
            gru_onnx.from_keras(gru)
    assert refused >= 10


def test_keras_leaky_relu_is_not_pytorchs():
    x = seq(features=3, scale=4.0)
    gru = built(layers.GRU(5, activation="leaky_relu", return_sequences=True), x)
    module = gru_onnx.from_keras(gru)
    assert str(module.layers[gru.name].gru.spec.activation) == "leaky_relu(alpha=0.2)"
    assert_same(module_outputs(module, x), keras_outputs(gru, x))


def test_registered_activation_and_override_by_keras_name():
    x = seq(features=3)
    gru = built(layers.GRU(5, recurrent_activation=k2_hard_sigmoid, return_sequences=True), x)
    with pytest.raises(GruOnnxUsageError, match="k2_hard_sigmoid"):
        gru_onnx.from_keras(gru)
    module = gru_onnx.from_keras(gru, activations={"k2_hard_sigmoid": "hard_sigmoid(alpha=0.2, beta=0.5)"})
    assert_same(module_outputs(module, x), keras_outputs(gru, x))


@pytest.mark.parametrize(
    ("reset_after", "use_bias", "go_backwards", "return_sequences", "return_state"),
    list(itertools.product([True, False], repeat=5)),
)
def test_gru_options_match_keras(reset_after, use_bias, go_backwards, return_sequences, return_state):
    x = seq(steps=5)
    gru = layers.GRU(
        6, activation="relu", reset_after=reset_after, use_bias=use_bias, go_backwards=go_backwards,
        return_sequences=return_sequences, return_state=return_state,
        bias_initializer="random_normal",  # nonzero biases, so their placement matters
    )  # fmt: skip
    built(gru, x)
    module = gru_onnx.from_keras(gru)
    assert_same(module_outputs(module, x), keras_outputs(gru, x))
    assert module.layers[gru.name].gru.spec.bias == use_bias


@pytest.mark.parametrize(
    ("merge_mode", "return_sequences", "return_state"),
    list(itertools.product(["concat", "sum", "mul", "ave", None], [True, False], [True, False])),
)
def test_bidirectional_merge_modes_match_keras(merge_mode, return_sequences, return_state):
    x = seq(steps=5)
    gru = layers.GRU(5, activation="gelu", return_sequences=return_sequences, return_state=return_state,
                     bias_initializer="random_normal")  # fmt: skip
    bi = built(layers.Bidirectional(gru, merge_mode=merge_mode), x)
    module = gru_onnx.from_keras(bi)
    assert_same(module_outputs(module, x), keras_outputs(bi, x))


def test_initial_state_and_stacked_grus_in_a_model():
    x, h, h_fwd, h_bwd = keras.Input((None, 4), name="x"), keras.Input((6,)), keras.Input((3,)), keras.Input((3,))
    y = layers.GRU(6, return_sequences=True, activation="silu")(x, initial_state=h)
    y = layers.GRU(6, return_sequences=True, reset_after=False)(y)
    y = layers.Bidirectional(layers.GRU(3), merge_mode="sum")(y, initial_state=[h_fwd, h_bwd])
    model = keras.Model([x, h, h_fwd, h_bwd], y)
    rng = np.random.default_rng(1)
    states = [rng.standard_normal((2, n)).astype(np.float32) for n in (6, 3, 3)]
    inputs = [seq(steps=5), *states]
    assert_same(module_outputs(gru_onnx.from_keras(model), *inputs), keras_outputs(model, *inputs))


def model_inputs(steps, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 11, (3, steps)).astype(np.int64), rng.standard_normal((3, steps, 4)).astype(np.float32)


def test_functional_model_exports_with_keras_names_and_dynamic_time(tmp_path):
    model = functional_model()
    weights = [w.copy() for w in model.get_weights()]
    module = gru_onnx.from_keras(model)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))  # untouched
    assert module.dynamic_time
    assert_same(module_outputs(module, *model_inputs(7)), keras_outputs(model, *model_inputs(7)))

    result = flat.export(module, module.example_inputs(batch=2, seq_len=6), tmp_path / "m.onnx", dynamic_seq=True)
    assert result.passed, result.parity.summary()
    import onnxruntime as ort

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["tokens", "feats"]
    assert [o.name for o in session.get_outputs()] == ["tags", "summary"]
    for steps in (1, 3, 11):  # none of them the example's length
        tokens, feats = model_inputs(steps, seed=steps)
        got = run_ort(result.path, {"tokens": tokens, "feats": feats})
        assert_same(got, keras_outputs(model, tokens, feats))


@pytest.mark.parametrize(("strategy", "steps"), [("loop", None), ("native", None), ("unrolled", 6)])
def test_sequential_relu_gru_with_keras2_gates_on_every_strategy(strategy, steps, tmp_path):
    """Keras 2's hard_sigmoid gates (alpha 0.2) are exact in every strategy, the native GRU op too."""
    model = keras.Sequential([
        keras.Input((steps, 5), name="audio"),
        layers.GRU(7, activation="relu", recurrent_activation=k2_hard_sigmoid, return_sequences=True),
        layers.Dense(1, name="vad", activation="sigmoid"),
    ])  # fmt: skip
    module = gru_onnx.from_keras(model, activations={"k2_hard_sigmoid": "hard_sigmoid(alpha=0.2, beta=0.5)"})
    result = flat.export(
        module, module.example_inputs(seq_len=6), tmp_path / "m.onnx", strategy=strategy, dynamic_seq=steps is None
    )
    assert result.passed and result.strategy == strategy
    for length in (6,) if steps else (2, 9):
        x = seq(batch=3, steps=length, features=5, seed=length)
        assert_same(run_ort(result.path, {"audio": x}), keras_outputs(model, x))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _model(layers.Masking(), layers.GRU(3)), r"'masking.*' \(Masking\) masks time steps"),
        (
            lambda: _model(layers.Embedding(9, 3, mask_zero=True), layers.GRU(3), shape=(None,), dtype="int32"),
            r"\(Embedding\(mask_zero=True\)\) masks time steps",
        ),
        (lambda: _model(layers.Conv1D(3, 2), layers.GRU(3)), r"unsupported Keras layer 'conv1d.*' \(class Conv1D\)"),
        (lambda: _model(layers.Bidirectional(layers.LSTM(3))), r"class Bidirectional around LSTM"),
        (lambda: _model(layers.Dense(3)), "has no GRU layer"),
        (lambda: _model(layers.GRU(3, activation="exponential")), r"'exponential'.*register_activation"),
    ],
)
def test_unsupported_models_are_refused_naming_the_layer(make, message):
    with pytest.raises(GruOnnxUsageError, match=message):
        gru_onnx.from_keras(make())


def test_stateful_gru_points_to_streaming_export():
    model = keras.Sequential([keras.Input((None, 4), batch_size=2), layers.GRU(3, stateful=True, name="live")])
    with pytest.raises(GruOnnxUsageError, match=r"'live'.*stateful=True.*streaming"):
        gru_onnx.from_keras(model)


def test_other_backends_are_a_clear_error(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(GruOnnxUsageError, match=r"Keras runs on the 'jax' backend.*KERAS_BACKEND=torch"):
        gru_onnx.from_keras(_model(layers.GRU(3)))


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed here")
def test_a_backend_that_is_not_installed_is_a_clear_error():
    code = "import gru_onnx\ntry:\n    gru_onnx.from_keras(None)\nexcept gru_onnx.GruOnnxUsageError as e:\n    print(e)"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "Keras could not be imported" in proc.stdout and "KERAS_BACKEND=torch" in proc.stdout, proc.stderr
