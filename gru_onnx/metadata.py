"""The JSON description every exported file carries in ``metadata_props["gru_onnx"]``.

It holds the package version, requested and used strategies, opset, dtype, and for each GRU
stack its module path, full spec, strategy and reason, static sequence length, optional
inputs and where its weights are: enough to rebuild the PyTorch reference from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import onnx

from gru_onnx.errors import GruOnnxUsageError

METADATA_KEY = "gru_onnx"


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load an ONNX file, or a one-line usage error when it is missing, truncated or not ONNX."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise GruOnnxUsageError(f"no such file: {path}")
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    if not model.graph.output:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file (no graph outputs)")
    return model


def find_metadata(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The gru-onnx description of ``model``, or None when it has none."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None


def read_metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """The gru-onnx description stored in an exported file (GRU stacks, strategy, versions)."""
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    found = find_metadata(model)
    if found is None:
        raise GruOnnxUsageError("the file has no gru-onnx metadata (was it exported by gru-onnx?)")
    return found
