"""gru-onnx: GRUs with custom activations, from PyTorch to checked ONNX.

The public API is small: :class:`CustomGRU` (a drop-in for ``torch.nn.GRU``), :func:`export`,
:func:`check_parity`, :func:`read_metadata`, :class:`StreamingSession`, the activation registry
(:func:`register_activation`) and :func:`from_keras` (Keras 3 GRU models). Names are imported
on first use, so ``gru-onnx --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gru_onnx._version import __version__

if TYPE_CHECKING:
    from gru_onnx._export import ExportResult, export
    from gru_onnx.activations import BoundActivation, get_activation, register_activation
    from gru_onnx.errors import ExportError, GruOnnxError, GruOnnxUsageError
    from gru_onnx.keras import from_keras
    from gru_onnx.metadata import read_metadata
    from gru_onnx.module import CustomGRU
    from gru_onnx.parity import ParityReport, check_parity
    from gru_onnx.session import StreamingSession
    from gru_onnx.spec import GRUSpec

_PUBLIC = {
    "BoundActivation": "gru_onnx.activations",
    "CustomGRU": "gru_onnx.module",
    "ExportError": "gru_onnx.errors",
    "ExportResult": "gru_onnx._export",
    "GRUSpec": "gru_onnx.spec",
    "GruOnnxError": "gru_onnx.errors",
    "GruOnnxUsageError": "gru_onnx.errors",
    "ParityReport": "gru_onnx.parity",
    "StreamingSession": "gru_onnx.session",
    "check_parity": "gru_onnx.parity",
    "export": "gru_onnx._export",
    "from_keras": "gru_onnx.keras",
    "get_activation": "gru_onnx.activations",
    "read_metadata": "gru_onnx.metadata",
    "register_activation": "gru_onnx.activations",
}

__all__ = [
    "BoundActivation",
    "CustomGRU",
    "ExportError",
    "ExportResult",
    "GRUSpec",
    "GruOnnxError",
    "GruOnnxUsageError",
    "ParityReport",
    "StreamingSession",
    "__version__",
    "check_parity",
    "export",
    "from_keras",
    "get_activation",
    "read_metadata",
    "register_activation",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gru_onnx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
