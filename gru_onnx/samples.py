"""Inputs for a parity check: samples from example args, from an ``.npz``, or generated.

A :class:`Sample` holds the same inputs twice: positional args for the PyTorch model and
named feeds for the ONNX file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx.errors import GruOnnxUsageError


@dataclass(frozen=True)
class Sample:
    """One set of inputs: positional args for PyTorch and named feeds for ONNX."""

    args: tuple[Any, ...]
    feeds: dict[str, np.ndarray]

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {name: list(a.shape) for name, a in self.feeds.items()}
        if "lengths" in self.feeds:
            info["lengths_values"] = [int(v) for v in self.feeds["lengths"]]
        return info


def flatten_tensors(value: Any) -> list[torch.Tensor]:
    """Tensors of a (nested) tuple/list/dict of outputs or inputs, in order; None is dropped."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in flatten_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten_tensors(v)]
    return []


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _dim(value: onnx.ValueInfoProto, axis: int) -> int | None:
    dim = value.type.tensor_type.shape.dim[axis]
    return dim.dim_value if dim.HasField("dim_value") else None


def samples_from_args(model: onnx.ModelProto, args: Sequence[Any]) -> Sample:
    """A sample from example args: their tensors feed the ONNX inputs in order."""
    tensors = flatten_tensors(args)
    names = [i.name for i in graph_inputs(model)]
    if len(names) != len(tensors):
        raise GruOnnxUsageError(
            f"the ONNX file takes {len(names)} inputs ({', '.join(names)}) but {len(tensors)} tensors were given"
        )
    return Sample(tuple(args), {n: to_numpy(t) for n, t in zip(names, tensors, strict=True)})


def generate_samples(
    model: onnx.ModelProto,
    metadata: dict[str, Any],
    *,
    count: int,
    seq_len: int | None,
    batch: int | None,
    seed: int,
) -> list[Sample]:
    """Seeded random inputs for a lone-GRU file, shaped from its metadata and input shapes.

    Inputs are standard normal (unit-scale features, like normalised activations), ``h0`` half
    that. A file with a dynamic sequence axis gets lengths from 1 to the maximum across the
    samples (the maximum first); a ``lengths`` input gets values from 1 to the sequence length.
    """
    (stack,) = metadata["stacks"]
    spec = stack["spec"]
    inputs = {i.name: i for i in graph_inputs(model)}
    x_info = inputs["input"]
    rank = len(x_info.type.tensor_type.shape.dim)
    bf = spec["batch_first"] and rank == 3
    seq_axis, batch_axis = (1, 0) if bf else (0, 1)
    static_seq = _dim(x_info, seq_axis)
    static_batch = _dim(x_info, batch_axis) if rank == 3 else 1
    if seq_len is not None and static_seq is not None and seq_len != static_seq:
        raise GruOnnxUsageError(f"the file's sequence length is fixed at {static_seq}; --seq-len {seq_len} cannot run")
    if batch is not None and static_batch is not None and rank == 3 and batch != static_batch:
        raise GruOnnxUsageError(f"the file's batch size is fixed at {static_batch}; --batch {batch} cannot run")
    max_seq = static_seq or seq_len or 16
    batch = static_batch or batch or 3
    if static_seq is not None:
        lengths_of = [static_seq] * count
    else:
        rng_len = np.random.default_rng(seed + 1)
        lengths_of = [max_seq, 1, *rng_len.integers(1, max_seq + 1, size=max(count - 2, 0))][:count]
    from gru_onnx.rebuild import torch_dtype

    dtype = torch_dtype(metadata.get("dtype", "float32"))
    gen = torch.Generator().manual_seed(seed)
    dirs = 2 if spec["bidirectional"] else 1
    samples = []
    for seq in lengths_of:
        shape = (batch, seq, spec["input_size"]) if bf else (seq, batch, spec["input_size"])
        if rank == 2:
            shape = (seq, spec["input_size"])
        x = torch.randn(*shape, generator=gen).to(dtype)
        h0 = None
        if "h0" in inputs:
            h_shape = (spec["num_layers"] * dirs, batch, spec["hidden_size"])
            h0 = (0.5 * torch.randn(*(h_shape if rank == 3 else (h_shape[0], h_shape[2])), generator=gen)).to(dtype)
        lengths = None
        if "lengths" in inputs:
            lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
            lengths[0] = seq
            if batch > 1:
                lengths[-1] = 1
        args = (x, h0, lengths)
        feeds = {n: to_numpy(a) for n, a in zip(("input", "h0", "lengths"), args, strict=True) if a is not None}
        samples.append(Sample(args, feeds))
    return samples


def samples_from_npz(model: onnx.ModelProto, path: str | os.PathLike[str], lone_gru: bool) -> list[Sample]:
    """User inputs: an ``.npz`` whose keys are the ONNX input names.

    Floating arrays are cast to the file's input type (NumPy writes float64 by default);
    shapes must fit the file's fixed dimensions and lengths must lie in 1..sequence length.
    """
    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        raise GruOnnxUsageError(f"cannot read inputs {path}: {exc}") from None
    infos = {i.name: i for i in graph_inputs(model)}
    missing = [n for n in infos if n not in data.files]
    if missing:
        raise GruOnnxUsageError(f"{path} has no array {missing[0]!r} (the file's inputs: {', '.join(infos)})")
    feeds = {}
    for name, info in infos.items():
        array = np.asarray(data[name])
        want = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        if array.dtype != want:
            if np.issubdtype(array.dtype, np.floating) and np.issubdtype(want, np.floating):
                array = array.astype(want)  # NumPy writes float64 by default
            elif np.issubdtype(array.dtype, np.integer) and np.issubdtype(want, np.integer):
                array = array.astype(want)
            else:
                raise GruOnnxUsageError(f"{path}: {name!r} is {array.dtype}, the file takes {np.dtype(want)}")
        dims = info.type.tensor_type.shape.dim
        fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if array.ndim != len(fixed) or any(f is not None and f != n for f, n in zip(fixed, array.shape, strict=False)):
            shown = ", ".join(
                str(f) if f is not None else (d.dim_param or "?") for f, d in zip(fixed, dims, strict=True)
            )
            raise GruOnnxUsageError(f"{path}: {name!r} has shape {list(array.shape)}, the file takes [{shown}]")
        feeds[name] = array
    if "lengths" in feeds and "input" in feeds and lone_gru:
        from gru_onnx.metadata import find_metadata
        from gru_onnx.parity import time_axes

        seq_axis = 0 if feeds["input"].ndim == 2 else time_axes(model, find_metadata(model))[0]
        seq = feeds["input"].shape[seq_axis]
        lengths = feeds["lengths"]
        if lengths.size and (lengths.min() < 1 or lengths.max() > seq):
            raise GruOnnxUsageError(
                f"{path}: lengths must lie in 1..{seq} (the sequence length), got {lengths.tolist()}"
            )
    tensors = {n: torch.from_numpy(np.array(a)) for n, a in feeds.items()}
    # A lone GRU takes (input, h0, lengths) positionally; any other model its inputs in order.
    order = ("input", "h0", "lengths") if lone_gru else list(infos)
    args = tuple(tensors.get(n) for n in order)
    return [Sample(args, feeds)]
