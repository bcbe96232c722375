"""The JSON description every exported file carries in ``metadata_props["gru_onnx"]``, and loading files.

It holds the package version, requested and used strategies, opset, dtype, and for each GRU
stack its module path, full spec, strategy and reason, static sequence length, optional
inputs and where its weights are: enough to rebuild the PyTorch reference from the file.

What a file claims is checked against what it is before anything is trusted or allocated:
the JSON against its schema (``gru_onnx/metadata.schema.json``; one entry only), then every
size the metadata states against the initializers' shapes and the graph's inputs
(:func:`check_against_file`). A file that fails is refused with one line (exit 2).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
import onnx
from google.protobuf.message import DecodeError

from gru_onnx import saving
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import regular_file
from gru_onnx.protos import all_graphs
from gru_onnx.registry import MAX_OPSET, METADATA_KEY
from gru_onnx.spec import GRUSpec
from gru_onnx.weights import expected_shapes, stored_names

#: The metadata format this gru-onnx writes (2: each stack records its weights' consumers).
FORMAT = 2
#: The largest metadata entry read (real ones are a few KiB).
MAX_METADATA_BYTES = 4 * 2**20


def data_file_paths(path: str | os.PathLike[str]) -> list[Path]:
    """The external data files the ONNX file at ``path`` names, read from the file without its
    data (a loaded model's tensors are inline and name none): what no output may be written over."""
    return [d.path for d in saving.data_files(load_model(path, weights="none"), path)]


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema the metadata follows (``gru_onnx/metadata.schema.json``)."""
    return json.loads(resources.files("gru_onnx").joinpath("metadata.schema.json").read_text())


def load_model(path: str | os.PathLike[str], *, weights: Literal["gru", "none", "all"] = "gru") -> onnx.ModelProto:
    """Load an ONNX file, or a one-line usage error when it is missing, truncated, not ONNX, or
    its metadata does not hold against the file.

    A file with external data (:mod:`gru_onnx.saving`) keeps its tensors on disk except, with
    ``weights="gru"``, the GRU stacks' weights its metadata names (what rebuilding the reference
    and checking weights read), or all of them with ``"all"``. Both first check every data file
    it names (present, complete, inside the model's folder); ``"none"`` reads and checks none.
    """
    path = regular_file(path, "ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    if not model.graph.output:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file (no graph outputs)")
    _refuse_future(model, path)
    metadata = find_metadata(model)
    if metadata is not None:
        check_against_file(model, metadata)
    if weights == "none" or not saving.validate_data_files(model, path):
        return model
    if weights == "all":
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    else:
        saving.load_external_tensors(model, path, _gru_tensor_names(metadata or {}))
    return model


def _refuse_future(model: onnx.ModelProto, path: Path) -> None:
    """A file newer than what gru-onnx and its runtimes read (IR version, default opset) is refused."""
    if model.ir_version > onnx.IR_VERSION:
        raise GruOnnxUsageError(
            f"{path} has IR version {model.ir_version}, newer than this onnx package reads ({onnx.IR_VERSION})"
        )
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    if opsets.get("ai.onnx", 0) > MAX_OPSET:
        raise GruOnnxUsageError(
            f"{path} uses opset {opsets['ai.onnx']}, newer than gru-onnx and its runtimes support ({MAX_OPSET})"
        )


def _gru_tensor_names(metadata: Mapping[str, Any]) -> set[str]:
    """The initializers a check reads from a file: the GRU stacks' weights, for int8 files
    their int8 values, and every quantization scale (see :mod:`gru_onnx.quantization`)."""
    names = {name for stack in metadata.get("stacks", []) for name in stored_names(stack["weights"])}
    records = (metadata.get("quantization") or {}).get("tensors", {})
    names |= {record["values"] for name, record in records.items() if name in names}
    names |= {record["scale"] for record in records.values()}
    return names


def parse_metadata(text: str) -> dict[str, Any]:
    """The metadata JSON, checked against its schema; anything else is a one-line usage error."""
    if len(text) > MAX_METADATA_BYTES:
        raise GruOnnxUsageError(f"the gru-onnx metadata takes {len(text)} bytes, more than it ever does; refusing it")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GruOnnxUsageError(f"the gru-onnx metadata is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise GruOnnxUsageError(f"the gru-onnx metadata is a JSON {type(data).__name__}, not an object")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        raise GruOnnxUsageError(f"the gru-onnx metadata does not follow its schema at {where}: {message}")
    return data


def find_metadata(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The gru-onnx description of ``model`` (checked against its schema), or None when it has
    none; two entries are refused (gru-onnx and ONNX Runtime would read different ones)."""
    entries = [prop.value for prop in model.metadata_props if prop.key == METADATA_KEY]
    if len(entries) > 1:
        raise GruOnnxUsageError(
            f"the file has {len(entries)} {METADATA_KEY!r} metadata entries; refusing an ambiguous file"
        )
    return parse_metadata(entries[0]) if entries else None


def read_metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """The gru-onnx description stored in an exported file (GRU stacks, strategy, versions);
    a file's weights, external data included, are not read."""
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model, weights="none")
    found = find_metadata(model)
    if found is None:
        raise GruOnnxUsageError("the file has no gru-onnx metadata (was it exported by gru-onnx?)")
    return found


def _dims(tensor: onnx.TensorProto) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.dims)


def check_against_file(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    """Every size the metadata states, checked against the file before anything is allocated:
    each stack's weights against the initializers' shapes (through its layout), state pairs
    against their stacks, static lengths against the graph's inputs, quantization records
    against the tensors they name. Duplicate initializer names are refused too."""
    initializers: dict[str, tuple[int, ...]] = {}
    for graph in all_graphs(model.graph):
        seen: set[str] = set()
        for tensor in graph.initializer:
            if tensor.name in seen:
                raise GruOnnxUsageError(
                    f"the file has two initializers named {tensor.name!r}; refusing an ambiguous file"
                )
            seen.add(tensor.name)
            initializers[tensor.name] = _dims(tensor)
    quantized = (metadata.get("quantization") or {}).get("tensors", {})
    specs: dict[str, GRUSpec] = {}
    for stack in metadata["stacks"]:
        spec = _spec(stack)
        specs.setdefault(stack["path"], spec)
        for names, shape in expected_shapes(spec, stack["weights"]):
            found = [_stored_dims(name, initializers, quantized) for name in names]
            fits = all(len(d) == len(shape) and d[1:] == shape[1:] for d in found)
            rows = sum(d[0] for d in found) if fits else -1
            if rows != shape[0]:
                where = repr(stack["path"]) if stack["path"] else "the GRU"
                have = " + ".join(str(list(d)) for d in found)
                raise GruOnnxUsageError(
                    f"the metadata says {where} is {spec.describe()}, which needs {list(shape)} for "
                    f"{' + '.join(names)}; the file holds {have}: the metadata does not describe this file"
                )
    for state in (metadata.get("streaming") or {}).get("states", []):
        spec = specs.get(state["module"])
        rows = spec.num_layers * spec.num_directions if spec is not None else None
        if spec is None or list(state["shape"][1:]) != [rows, spec.hidden_size]:
            raise GruOnnxUsageError(
                f"the metadata's state {state['input']!r} has shape {state['shape']}, which no GRU stack of the file "
                "has: the metadata does not describe this file"
            )
    _check_lengths(model, metadata)


def stack_spec(stack: Mapping[str, Any]) -> GRUSpec:
    """A stack's spec; an activation this installation does not know is refused saying how to
    check such a file (with its model, whose code registers the activation)."""
    try:
        return GRUSpec.from_json(stack["spec"])
    except GruOnnxUsageError as exc:
        where = repr(stack["path"]) if stack["path"] else "of this file"
        raise GruOnnxUsageError(
            f"the GRU {where}: {exc}; check the file with --model (which imports the code that registers "
            "it), or register the activation (gru_onnx.register_activation) first"
        ) from None


def _spec(stack: Mapping[str, Any]) -> GRUSpec:
    """The spec's sizes (activations this installation does not know stand in as the defaults:
    only sizes are checked here; reading the math later names them)."""
    fields = dict(stack["spec"])
    try:
        return GRUSpec.from_json(fields)
    except GruOnnxUsageError:
        fields.update(activation={"name": "tanh"}, recurrent_activation={"name": "sigmoid"})
        return GRUSpec.from_json(fields)


def _stored_dims(
    name: str, initializers: Mapping[str, tuple[int, ...]], quantized: Mapping[str, Any]
) -> tuple[int, ...]:
    """The shape of the tensor a weight record names: an initializer, or an int8 one's source shape."""
    if name in quantized:
        record = quantized[name]
        if record["values"] not in initializers:
            raise GruOnnxUsageError(
                f"the metadata names int8 values {record['values']!r}, which the file does not have"
            )
        dims = initializers[record["values"]]
        return tuple(reversed(dims)) if record["transposed"] else dims
    if name not in initializers:
        raise GruOnnxUsageError(f"the metadata names initializer {name!r}, which the file does not have")
    return initializers[name]


def _check_lengths(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    """A lone GRU's static length must be its input's time axis (what bench and the check allocate)."""
    stacks = metadata["stacks"]
    if len(stacks) != 1 or stacks[0]["path"] != "" or stacks[0]["seq_len"] is None:
        return
    inputs = {i.name: i for i in model.graph.input}
    if "input" not in inputs or metadata.get("streaming"):
        return
    dims = inputs["input"].type.tensor_type.shape.dim
    axis = (1 if stacks[0]["spec"]["batch_first"] and len(dims) == 3 else 0) if dims else None
    if axis is not None and dims[axis].HasField("dim_value") and dims[axis].dim_value != stacks[0]["seq_len"]:
        raise GruOnnxUsageError(
            f"the metadata says the sequence length is {stacks[0]['seq_len']}, the file's input has "
            f"{dims[axis].dim_value} steps: the metadata does not describe this file"
        )
