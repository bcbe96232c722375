"""A file held to itself before anything in it is trusted: what every command checks on load.

:func:`check_well_formed` runs on every file :func:`gru_onnx.metadata.load_model` reads, before
the metadata is looked at and before any array is built:

- **tensor data against its dims and type**: every tensor (initializers in every graph, sparse
  ones, node attributes) has a known data type, no negative dims, and holds exactly the bytes its
  dims and type need: ``raw_data``'s length, the typed field's count, or an external location's
  ``length`` (a missing one runs to the end of the data file; :mod:`gru_onnx.saving` checks that
  against the file's size). A tensor that holds more or less is refused naming it, not reshaped
  into an error or an allocation its dims ask for.
- **no shadowing**: a name a subgraph defines (its inputs, initializers and node outputs) may not
  be one an enclosing graph already defines. ONNX Runtime runs a body's own tensor; a check that
  read the outer one would compare weights the graph does not use.
- **graph inputs and outputs** are tensors of a known element type, without negative sizes.

Each refusal is one line (:class:`GruOnnxUsageError`, exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import onnx

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.protos import all_tensors

#: Types stored 4 bits a value (two to a byte, two to an ``int32_data`` entry).
_FOUR_BIT = {
    getattr(onnx.TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(onnx.TensorProto, name)
}
#: Types stored 2 bits a value, where this onnx knows them.
_TWO_BIT = {getattr(onnx.TensorProto, name) for name in ("INT2", "UINT2") if hasattr(onnx.TensorProto, name)}
_COMPLEX = {onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}


def few(names: Iterable[str], shown: int = 3) -> str:
    """At most ``shown`` names quoted, then ``and N more``: error messages stay one short line."""
    items = list(names)
    text = ", ".join(repr(n if len(n) <= 80 else n[:77] + "...") for n in items[:shown])
    return f"{text} and {len(items) - shown} more" if len(items) > shown else text


def known_dtype(data_type: int) -> np.dtype | None:
    """The NumPy type of an ONNX data type, or None for UNDEFINED and types this onnx does not know."""
    if data_type == onnx.TensorProto.UNDEFINED:
        return None
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type))
    except (KeyError, TypeError, ValueError):
        return None


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes a tensor's data takes by its type and shape (None for strings: no fixed size)."""
    count = math.prod(tensor.dims)
    if tensor.data_type in _FOUR_BIT:
        return (count * 4 + 7) // 8
    if tensor.data_type in _TWO_BIT:
        return (count * 2 + 7) // 8
    dtype = known_dtype(tensor.data_type)
    if dtype is None or dtype.kind == "O":
        return None
    return count * dtype.itemsize


def check_well_formed(model: onnx.ModelProto) -> None:
    """Refuse (one line) a model whose tensors do not hold what their dims and types say, whose
    subgraphs shadow a name from an enclosing graph, or whose inputs or outputs have unknown
    element types or negative sizes (see the module's docstring)."""
    _check_values(model.graph)
    for tensor in all_tensors(model):
        _check_tensor(tensor)
    _check_scopes(model.graph, frozenset(), "the graph")


def _check_values(graph: onnx.GraphProto) -> None:
    initializers = {t.name for t in graph.initializer}
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            if kind == "input" and value.name in initializers:
                continue  # an initializer's declaration: its tensor is checked below
            if value.type.WhichOneof("value") != "tensor_type":
                raise GruOnnxUsageError(f"the graph {kind} {value.name!r} is not a tensor; gru-onnx reads tensors only")
            elem = value.type.tensor_type.elem_type
            dtype = known_dtype(elem)
            if dtype is None or dtype.kind == "O":
                raise GruOnnxUsageError(
                    f"the graph {kind} {value.name!r} has element type {type_name(elem)}, which gru-onnx cannot feed "
                    "or read; refusing the file"
                )
            for axis, dim in enumerate(value.type.tensor_type.shape.dim):
                if dim.HasField("dim_value") and dim.dim_value < 0:
                    raise GruOnnxUsageError(
                        f"the graph {kind} {value.name!r} declares axis {axis} of size {dim.dim_value}; "
                        "refusing the file"
                    )


def type_name(data_type: int) -> str:
    """An ONNX data type's name (``FLOAT``), or its number when this onnx does not know it."""
    try:
        return onnx.TensorProto.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


def _check_tensor(tensor: onnx.TensorProto) -> None:
    name = tensor.name or "(unnamed)"
    where = f"tensor {name!r}"
    if known_dtype(tensor.data_type) is None and tensor.data_type not in _FOUR_BIT | _TWO_BIT:
        raise GruOnnxUsageError(f"{where} has data type {type_name(tensor.data_type)}, which gru-onnx cannot read")
    if any(d < 0 for d in tensor.dims):
        raise GruOnnxUsageError(f"{where} has negative dims {list(tensor.dims)}; refusing the file")
    count = math.prod(tensor.dims)
    nbytes = tensor_nbytes(tensor)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        entries = {e.key: e.value for e in tensor.external_data}
        if nbytes is None:
            raise GruOnnxUsageError(f"{where} holds strings in external data, which ONNX does not store there")
        if "length" in entries:
            try:
                length = int(entries["length"])
            except ValueError:
                raise GruOnnxUsageError(f"{where} has malformed external data (length {entries['length']!r})") from None
            if length != nbytes:
                raise _mismatch(tensor, f"its external data is {length} bytes long")
        return  # a missing length runs to the end of the data file: gru_onnx.saving checks its size
    if tensor.HasField("raw_data"):
        if nbytes is None:
            raise GruOnnxUsageError(f"{where} holds strings as raw data, which ONNX does not allow")
        if len(tensor.raw_data) != nbytes:
            raise _mismatch(tensor, f"it holds {len(tensor.raw_data)} bytes")
        return
    field = _typed_field(tensor.data_type)
    found = len(getattr(tensor, field))
    want = count * 2 if tensor.data_type in _COMPLEX else count
    if tensor.data_type in _FOUR_BIT:
        want = (count + 1) // 2
    elif tensor.data_type in _TWO_BIT:
        want = (count + 3) // 4
    others = [f for f in _FIELDS if f != field and len(getattr(tensor, f))]
    if found != want or others:
        held = f"{found} values in {field}" + (f" and values in {', '.join(others)}" if others else "")
        raise _mismatch(tensor, f"it holds {held}")


_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def _typed_field(data_type: int) -> str:
    try:
        return onnx.helper.tensor_dtype_to_field(data_type)
    except (KeyError, TypeError, ValueError):
        return "int32_data"


def _mismatch(tensor: onnx.TensorProto, held: str) -> GruOnnxUsageError:
    nbytes = tensor_nbytes(tensor)
    need = f"{nbytes} bytes" if nbytes is not None else f"{math.prod(tensor.dims)} strings"
    return GruOnnxUsageError(
        f"tensor {tensor.name or '(unnamed)'!r} is {type_name(tensor.data_type)} {list(tensor.dims)}, which needs "
        f"{need}; {held}: its data does not match its dims"
    )


def _defined(graph: onnx.GraphProto) -> Iterator[str]:
    """Every name ``graph`` itself defines: its inputs, initializers (sparse ones too) and node outputs."""
    for value in graph.input:
        yield value.name
    for tensor in graph.initializer:
        yield tensor.name
    for sparse in graph.sparse_initializer:
        yield sparse.values.name
    for node in graph.node:
        yield from node.output


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH or attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _check_scopes(graph: onnx.GraphProto, outer: frozenset[str], where: str) -> None:
    """No name ``graph`` defines is one an enclosing graph defines (``outer``); then its own subgraphs."""
    own = {name for name in _defined(graph) if name}
    shadowed = sorted(own & outer)
    if shadowed:
        raise GruOnnxUsageError(
            f"{where} defines {few(shadowed)}, already defined outside it: a runtime uses the inner one, a reader "
            "the outer; refusing an ambiguous file"
        )
    visible = outer | own
    for node in graph.node:
        for sub in _subgraphs(node):
            _check_scopes(sub, visible, f"the subgraph of node {node.name or node.op_type!r}")
