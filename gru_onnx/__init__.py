"""gru-onnx: GRUs with custom activations, from PyTorch to checked ONNX.

The public API is small: :class:`CustomGRU` (a drop-in for ``torch.nn.GRU``), :func:`export`
with its option groups (:class:`GraphOptions`, :class:`ShapeOptions`, :class:`StreamingOptions`,
:class:`CheckOptions`, :class:`SavingOptions`, :class:`QuantizeOptions`), :func:`check_parity`,
:func:`describe` and :func:`read_metadata`, :class:`StreamingSession`, :func:`quantize`,
:func:`package_triton` and :func:`package_web`, the activation and strategy registries (:func:`register_activation`,
:func:`register_strategy`) and :func:`from_keras` (Keras 3 GRU models, custom layers through
:func:`register_keras_layer`). Names are imported on
first use, so ``gru-onnx --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gru_onnx._version import __version__

if TYPE_CHECKING:
    from gru_onnx.activations import BoundActivation, get_activation, register_activation
    from gru_onnx.description import FileDescription, describe
    from gru_onnx.errors import ExportError, GruOnnxError, GruOnnxUsageError
    from gru_onnx.exporters import register_strategy
    from gru_onnx.exporting import ExportResult, export
    from gru_onnx.keras import from_keras, load_keras_model, register_keras_layer
    from gru_onnx.metadata import read_metadata
    from gru_onnx.module import CustomGRU
    from gru_onnx.options import (
        BenchOptions,
        CheckOptions,
        GraphOptions,
        KerasOptions,
        QuantizeOptions,
        SavingOptions,
        ShapeOptions,
        StreamingOptions,
        TritonOptions,
        WebOptions,
    )
    from gru_onnx.parity import ParityReport, check_parity
    from gru_onnx.quantization import quantize
    from gru_onnx.session import StreamingSession
    from gru_onnx.spec import GRUSpec
    from gru_onnx.triton import package_triton
    from gru_onnx.web.bundle import package_web

_PUBLIC = {
    "BenchOptions": "gru_onnx.options",
    "BoundActivation": "gru_onnx.activations",
    "CheckOptions": "gru_onnx.options",
    "CustomGRU": "gru_onnx.module",
    "ExportError": "gru_onnx.errors",
    "ExportResult": "gru_onnx.exporting",
    "FileDescription": "gru_onnx.description",
    "GRUSpec": "gru_onnx.spec",
    "GraphOptions": "gru_onnx.options",
    "GruOnnxError": "gru_onnx.errors",
    "GruOnnxUsageError": "gru_onnx.errors",
    "KerasOptions": "gru_onnx.options",
    "ParityReport": "gru_onnx.parity",
    "QuantizeOptions": "gru_onnx.options",
    "SavingOptions": "gru_onnx.options",
    "ShapeOptions": "gru_onnx.options",
    "StreamingOptions": "gru_onnx.options",
    "StreamingSession": "gru_onnx.session",
    "TritonOptions": "gru_onnx.options",
    "WebOptions": "gru_onnx.options",
    "check_parity": "gru_onnx.parity",
    "describe": "gru_onnx.description",
    "export": "gru_onnx.exporting",
    "from_keras": "gru_onnx.keras",
    "get_activation": "gru_onnx.activations",
    "load_keras_model": "gru_onnx.keras",
    "package_triton": "gru_onnx.triton",
    "package_web": "gru_onnx.web.bundle",
    "quantize": "gru_onnx.quantization",
    "read_metadata": "gru_onnx.metadata",
    "register_activation": "gru_onnx.activations",
    "register_keras_layer": "gru_onnx.keras",
    "register_strategy": "gru_onnx.exporters",
}

__all__ = [
    "BenchOptions",
    "BoundActivation",
    "CheckOptions",
    "CustomGRU",
    "ExportError",
    "ExportResult",
    "FileDescription",
    "GRUSpec",
    "GraphOptions",
    "GruOnnxError",
    "GruOnnxUsageError",
    "KerasOptions",
    "ParityReport",
    "QuantizeOptions",
    "SavingOptions",
    "ShapeOptions",
    "StreamingOptions",
    "StreamingSession",
    "TritonOptions",
    "WebOptions",
    "__version__",
    "check_parity",
    "describe",
    "export",
    "from_keras",
    "get_activation",
    "load_keras_model",
    "package_triton",
    "package_web",
    "quantize",
    "read_metadata",
    "register_activation",
    "register_keras_layer",
    "register_strategy",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gru_onnx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
