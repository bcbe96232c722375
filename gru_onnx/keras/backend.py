"""Keras on the torch backend, and Keras activations read with their Keras meaning.

Activations keep their Keras meaning (Keras names, Keras defaults): Keras 3's ``leaky_relu``
has slope 0.2 where PyTorch's has 0.01, and Keras 2's ``hard_sigmoid`` (``0.2 x + 0.5``
clipped) is not Keras 3's (``relu6(x + 3) / 6``), which matters for legacy ``.h5`` files.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from gru_onnx.activations import BoundActivation, parse_activation
from gru_onnx.errors import GruOnnxUsageError

#: Keras activation name -> the gru-onnx activation with the same meaning (Keras 3 defaults).
KERAS_ACTIVATIONS: dict[str, str] = {
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "relu": "relu",
    "relu6": "relu6",
    "leaky_relu": "leaky_relu(alpha=0.2)",  # keras.activations.leaky_relu(negative_slope=0.2)
    "elu": "elu",
    "selu": "selu",
    "celu": "celu",
    "gelu": "gelu",  # keras.activations.gelu(approximate=False)
    "silu": "silu",
    "swish": "silu",
    "mish": "mish",
    "softplus": "softplus",
    "softsign": "softsign",
    "hard_sigmoid": "hard_sigmoid",  # Keras 3: relu6(x + 3) / 6, PyTorch's
    "hard_silu": "hard_swish",
    "hard_swish": "hard_swish",
    "hard_tanh": "hardtanh",
    "linear": "linear",
}
#: What differs in files written by Keras 2 (read from an ``.h5`` file's ``keras_version``).
KERAS2_ACTIVATIONS: dict[str, str] = {"hard_sigmoid": "hard_sigmoid(alpha=0.2, beta=0.5)"}
#: Activations that are not elementwise: allowed in Dense and Activation layers, not in a GRU.
_AXIS_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": functools.partial(torch.softmax, dim=-1),
    "log_softmax": functools.partial(torch.log_softmax, dim=-1),
}
INSTALL_HINT = "Keras models need Keras 3: pip install gru-onnx[keras]"


def keras2_hard_sigmoid(x: Any) -> Any:
    """Keras 2's ``hard_sigmoid``, ``clip(0.2 x + 0.5, 0, 1)``, written with Keras ops.

    Keras 3 reads a Keras 2 file's ``hard_sigmoid`` as its own ``relu6(x + 3) / 6``;
    :func:`load_keras_model` puts this function back so Keras itself computes the original.
    """
    from keras import ops

    return ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def import_keras(set_backend: bool = False) -> Any:
    """Import Keras (on the torch backend when ``set_backend`` and Keras is not loaded yet)."""
    if set_backend and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError as exc:
        if exc.name == "keras":
            raise GruOnnxUsageError(INSTALL_HINT) from None
        raise GruOnnxUsageError(  # Keras is there, its configured backend is not
            f"Keras could not be imported ({exc}); gru-onnx needs Keras on the torch backend: "
            "set KERAS_BACKEND=torch before keras is first imported"
        ) from None
    if not hasattr(keras, "backend") or not str(getattr(keras, "__version__", "0")).startswith("3"):
        raise GruOnnxUsageError(f"gru-onnx reads Keras 3 models; Keras {keras.__version__} is installed")
    backend = keras.backend.backend()
    if backend != "torch":
        raise GruOnnxUsageError(
            f"Keras runs on the {backend!r} backend in this process; gru-onnx needs Keras on the torch backend "
            "(set KERAS_BACKEND=torch before keras is first imported)"
        )
    return keras


def _activation_name(keras: Any, fn: Any) -> str:
    """The Keras name of an activation function (its serialized name, else ``__name__``)."""
    if fn is None:
        return "linear"
    if isinstance(fn, str):
        return fn
    try:
        serialized = keras.activations.serialize(fn)
    except Exception:  # an unregistered custom function: Keras cannot name it
        serialized = None
    if isinstance(serialized, str):
        return serialized
    return getattr(fn, "__name__", None) or type(fn).__name__


class ActivationTable:
    """Keras activation names -> gru-onnx activations: the Keras table, then caller overrides."""

    def __init__(self, keras: Any, overrides: Mapping[str, str | BoundActivation] | None) -> None:
        self.keras = keras
        self.table: dict[str, str | BoundActivation] = {**KERAS_ACTIVATIONS, **(overrides or {})}

    def bound(self, fn: Any, where: str) -> BoundActivation:
        """The gru-onnx activation computing what Keras' ``fn`` computes (or a clear error)."""
        if fn is keras2_hard_sigmoid:
            return parse_activation(KERAS2_ACTIVATIONS["hard_sigmoid"])
        name = _activation_name(self.keras, fn)
        if name in self.table:
            return parse_activation(self.table[name])
        if name.isidentifier():  # a name the caller registered with gru_onnx.register_activation
            try:
                return parse_activation(name)
            except GruOnnxUsageError:
                pass
        return _unknown(name, where)

    def torch_fn(self, fn: Any, where: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """For Dense and Activation layers: also softmax-like activations; None for linear."""
        name = _activation_name(self.keras, fn)
        if name in _AXIS_ACTIVATIONS and name not in self.table:
            return _AXIS_ACTIVATIONS[name]
        bound = self.bound(fn, where)
        return None if bound.name == "linear" else bound.torch


def _unknown(name: str, where: str) -> BoundActivation:
    raise GruOnnxUsageError(
        f"{where}: Keras activation {name!r} has no gru-onnx equivalent; register one with "
        f"gru_onnx.register_activation({name!r}, torch_fn, onnx_fn) (or pass activations={{{name!r}: ...}} "
        "to from_keras)"
    )


class ActivationModule(nn.Module):
    """An activation function as a module (Dense and Activation layers)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def variable_array(variable: Any) -> np.ndarray:
    """A Keras variable (or tensor) as a float32 NumPy array."""
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)

