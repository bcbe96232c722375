"""The JSON description every exported file carries in ``metadata_props["gru_onnx"]``.

It holds the package version, requested and used strategies, opset, dtype, and for each GRU
stack its module path, full spec, strategy and reason, static sequence length, optional
inputs and where its weights are: enough to rebuild the PyTorch reference from the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import onnx
from google.protobuf.message import DecodeError

from gru_onnx import saving
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.registry import METADATA_KEY
from gru_onnx.weights import stored_names


def load_model(path: str | os.PathLike[str], *, weights: Literal["gru", "none", "all"] = "gru") -> onnx.ModelProto:
    """Load an ONNX file, or a one-line usage error when it is missing, truncated or not ONNX.

    A file with external data (:mod:`gru_onnx.saving`) keeps its tensors on disk except, with
    ``weights="gru"``, the GRU stacks' weights its metadata names (what rebuilding the reference
    and checking weights read), or all of them with ``"all"``. Both first check every data file
    it names (present, complete, inside the model's folder); ``"none"`` reads and checks none.
    """
    path = Path(path)
    if not path.is_file():
        raise GruOnnxUsageError(f"no such file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    if not model.graph.output:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file (no graph outputs)")
    if weights == "none" or not saving.validate_data_files(model, path):
        return model
    if weights == "all":
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    else:
        saving.load_external_tensors(model, path, _gru_tensor_names(find_metadata(model) or {}))
    return model


def _gru_tensor_names(metadata: Mapping[str, Any]) -> set[str]:
    """The initializers a check reads from a file: the GRU stacks' weights, for int8 files
    their int8 values, and every quantization scale (see :mod:`gru_onnx.quantize`)."""
    names = {name for stack in metadata.get("stacks", []) for name in stored_names(stack["weights"])}
    records = (metadata.get("quantization") or {}).get("tensors", {})
    names |= {record["values"] for name, record in records.items() if name in names}
    names |= {record["scale"] for record in records.values()}
    return names


def find_metadata(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The gru-onnx description of ``model``, or None when it has none."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None


def read_metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """The gru-onnx description stored in an exported file (GRU stacks, strategy, versions);
    a file's weights, external data included, are not read."""
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model, weights="none")
    found = find_metadata(model)
    if found is None:
        raise GruOnnxUsageError("the file has no gru-onnx metadata (was it exported by gru-onnx?)")
    return found
