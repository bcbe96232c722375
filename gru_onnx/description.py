"""``gru_onnx.describe``: what a file is, as data (``gru-onnx inspect`` only renders it).

Reads the model file alone (never its external data, whose files are only described), so it
works on files whose data file is missing or truncated; a data location outside the model's
folder is refused as everywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from gru_onnx.compat import Support, file_support
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.irversion import needed_ir_version
from gru_onnx.metadata import find_metadata, load_model
from gru_onnx.samples import time_axes
from gru_onnx.saving import DataFile, validate_data_files
from gru_onnx.spec import GRUSpec
from gru_onnx.streaming import StatePair, state_pairs


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: its type, its axes (sizes, or names where dynamic) and time axis."""

    kind: str  # "input" or "output"
    name: str
    dtype: str
    dims: tuple[int | str, ...]
    time_axis: int | None = None


@dataclass(frozen=True)
class StackInfo:
    """One GRU stack as the metadata describes it."""

    path: str
    description: str
    strategy: str
    reason: str
    seq_len: int | None
    has_h0: bool = False
    has_lengths: bool = False


@dataclass(frozen=True)
class FileDescription:
    """Everything ``inspect`` shows about a file. ``metadata`` is None for files gru-onnx did not write."""

    path: Path
    size: int
    ir_version: int
    ir_needed: int  # the lowest IR version the content needs
    ir_reason: str  # what sets it (the opset floor, a newer type)
    opsets: dict[str, int]
    producer: str
    data_files: list[DataFile]
    metadata: dict[str, Any] | None
    stacks: list[StackInfo] = field(default_factory=list)
    states: list[StatePair] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    node_counts: dict[str, int] = field(default_factory=dict)
    support: list[Support] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return sum(self.node_counts.values())


def describe_spec(spec: Mapping[str, Any]) -> str:
    """A stack's one-line summary; an activation this installation does not know is named as
    the file stores it, with what to do (``--model``, or registering it)."""
    try:
        return GRUSpec.from_json(spec).describe()
    except GruOnnxUsageError:
        pass
    acts = []
    for key in ("activation", "recurrent_activation"):
        entry = spec.get(key) or {}
        name = str(entry.get("name", "?"))
        params = ", ".join(f"{k}={v}" for k, v in (entry.get("params") or {}).items())
        acts.append(f"{name}({params})" if params else name)
    return (
        f"{spec.get('num_layers', '?')}-layer GRU({spec.get('input_size', '?')}->{spec.get('hidden_size', '?')}, "
        f"{'/'.join(acts)}; an activation not registered here: check with --model, or register it first)"
    )


def _stack(stack: Mapping[str, Any]) -> StackInfo:
    return StackInfo(
        path=stack["path"],
        description=describe_spec(stack["spec"]),
        strategy=stack["strategy"],
        reason=stack["reason"],
        seq_len=stack["seq_len"],
        has_h0=bool(stack.get("has_h0")),
        has_lengths=bool(stack.get("has_lengths")),
    )


def describe(path: str | os.PathLike[str]) -> FileDescription:
    """Describe the ONNX file at ``path`` (see :class:`FileDescription`)."""
    path = Path(path)
    model = load_model(path, weights="none")
    found = validate_data_files(model, path, allow=("missing", "truncated", "hard links"))  # refuses locations outside
    meta = find_metadata(model)
    needed = needed_ir_version(model)
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    initializers = {i.name for i in model.graph.initializer}
    output_time = dict(zip([o.name for o in model.graph.output], time_axes(model, meta), strict=True))
    tensors = []
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims = tuple(d.dim_param or d.dim_value for d in tensor.shape.dim)
            dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
            axis = output_time.get(value.name) if kind == "output" and meta is not None else None
            tensors.append(TensorInfo(kind, value.name, dtype, dims, axis))
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    stacks = [_stack(stack) for stack in (meta or {}).get("stacks", [])]
    return FileDescription(
        path=path,
        size=path.stat().st_size,
        ir_version=model.ir_version,
        ir_needed=needed[0],
        ir_reason=needed[1],
        opsets=opsets,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        data_files=found,
        metadata=meta,
        stacks=stacks,
        states=state_pairs(meta),
        tensors=tensors,
        node_counts=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        support=file_support(meta) if meta is not None else [],
    )
