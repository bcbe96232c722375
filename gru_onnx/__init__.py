"""gru-onnx: GRUs with custom activations, from PyTorch to checked ONNX.

The public API is small: :class:`CustomGRU` (a drop-in for ``torch.nn.GRU``), :func:`export`,
:func:`check_parity`, and the activation registry (:func:`register_activation`).
"""

from gru_onnx._export import ExportResult, export
from gru_onnx._version import __version__
from gru_onnx.activations import BoundActivation, get_activation, register_activation
from gru_onnx.errors import ExportError, GruOnnxError, GruOnnxUsageError
from gru_onnx.metadata import read_metadata
from gru_onnx.module import CustomGRU
from gru_onnx.parity import ParityReport, check_parity
from gru_onnx.spec import GRUSpec

__all__ = [
    "BoundActivation",
    "CustomGRU",
    "ExportError",
    "ExportResult",
    "GRUSpec",
    "GruOnnxError",
    "GruOnnxUsageError",
    "ParityReport",
    "__version__",
    "check_parity",
    "export",
    "get_activation",
    "read_metadata",
    "register_activation",
]
