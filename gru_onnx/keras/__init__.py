"""Keras 3 models in: converted to torch modules with a CustomGRU per Keras GRU, checked against Keras.

:func:`from_keras` converts a live Keras model or layer (:mod:`gru_onnx.keras.convert`);
:func:`load_keras_model` reads a ``.keras`` or legacy ``.h5`` file (:mod:`gru_onnx.keras.load`);
:mod:`gru_onnx.keras.check` compares a file with the Keras model itself. Keras runs on the
torch backend (:mod:`gru_onnx.keras.backend`); Keras' activations keep their Keras meaning.
"""

from gru_onnx.keras.backend import KERAS2_ACTIVATIONS, KERAS_ACTIVATIONS, keras2_hard_sigmoid
from gru_onnx.keras.convert import CONVERTERS, KerasModule, from_keras, keras_gru, register_keras_layer
from gru_onnx.keras.load import load_keras_model

__all__ = [
    "CONVERTERS",
    "KERAS2_ACTIVATIONS",
    "KERAS_ACTIVATIONS",
    "KerasModule",
    "from_keras",
    "keras2_hard_sigmoid",
    "keras_gru",
    "load_keras_model",
    "register_keras_layer",
]
