"""Inputs for a parity check: example args, an ``.npz``, or seeded random samples.

A :class:`Sample` holds the same inputs twice: positional args for the PyTorch model and named
feeds for the ONNX file. The check looks beyond unit-scale inputs: floating inputs are also
run at larger magnitudes (:data:`DEFAULT_SCALES`, per dtype), and files with dynamic axes are
also run at sizes other than the example's, so a range bug or an axis that came out static
fails the check instead of production.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import regular_file
from gru_onnx.metadata import input_time_axes, lone_roles, lone_stack, state_inputs
from gru_onnx.options import DEFAULT_MEMORY_BUDGET
from gru_onnx.spec import float_type
from gru_onnx.trees import flatten_tensors, map_tensors, to_numpy

#: Input magnitudes the default check cycles through, per dtype. float32 goes to x100, where
#: pre-activations reach the ranges in which activations saturate, switch branch or overflow
#: (ONNX Runtime's GRU-op softplus overflows past ~88). float16 stops at x4: larger inputs
#: push its 65504 range and 3 significant digits into overflow and rounding the model would
#: not meet in use (its GRU states are bounded by the inputs' scale).
DEFAULT_SCALES: dict[str, tuple[float, ...]] = {
    "float32": (1.0, 10.0, 100.0),
    "float64": (1.0, 10.0, 100.0),
    "float16": (1.0, 4.0),
    # int8 files (gru_onnx.quantize): quantization error is relative to each tensor's range and
    # compounds through the recurrence; x100 says nothing about int8 beyond what x10 says.
    "int8": (1.0, 10.0),
}


#: The most GRU steps (samples x their lengths x layers x directions) a check generates inputs
#: for, and bench runs in one timed run: a default check takes a few hundred, a file fixed at
#: 10,000 steps with 3 bidirectional layers about 300,000; a tiny file forged to 2,000,000 steps
#: ran for minutes. Longer checks run on the caller's own data (``--inputs FILE.npz``), not bounded.
MAX_CHECK_STEPS = 1_000_000

#: Sequence length of timing inputs when the file does not fix one.
DEFAULT_TIMING_SEQ_LEN = 200


def default_scales(dtype: str) -> tuple[float, ...]:
    return DEFAULT_SCALES.get(dtype, DEFAULT_SCALES["float32"])


def file_scales(metadata: dict[str, Any] | None) -> tuple[float, ...]:
    """The default input scales for a file: by its dtype, or int8's for a quantized file."""
    meta = metadata or {}
    return default_scales("int8" if meta.get("quantization") else meta.get("dtype", "float32"))


@dataclass(frozen=True)
class Sample:
    """One set of inputs: positional args for PyTorch and named feeds for ONNX."""

    args: tuple[Any, ...]
    feeds: dict[str, np.ndarray]
    scale: float = 1.0

    @property
    def magnitude(self) -> float:
        """RMS of the floating inputs, at least 1: rounding grows with the magnitudes computed,
        so the check's absolute tolerance is multiplied by it."""
        floats = [a.astype(np.float64).ravel() for a in self.feeds.values() if np.issubdtype(a.dtype, np.floating)]
        values = np.concatenate(floats) if floats else np.zeros(0)
        rms = float(np.sqrt(np.mean(values**2))) if values.size else 0.0
        return max(rms, 1.0) if np.isfinite(rms) else 1.0

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {name: list(a.shape) for name, a in self.feeds.items()}
        if "lengths" in self.feeds:
            info["lengths_values"] = [int(v) for v in self.feeds["lengths"]]
        info["scale"] = self.scale
        info["magnitude"] = self.magnitude
        return info


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """Each axis as its fixed size or its symbolic name ('' when unnamed)."""
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]


def time_axes(model: onnx.ModelProto, metadata: dict[str, Any] | None) -> list[int | None]:
    """The time axis of each output, where there is one (for the per-step error curve).

    A lone GRU's layout says it; a whole model's file records it (``time_axes``, probed at
    export); older files fall back to an axis named ``seq``.
    """
    outputs = list(model.graph.output)
    recorded = (metadata or {}).get("time_axes")
    if isinstance(recorded, dict):
        return [recorded.get(out.name) for out in outputs]
    axes: list[int | None] = []
    stacks = (metadata or {}).get("stacks", [])
    lone = len(stacks) == 1 and stacks[0]["path"] == ""
    for i, out in enumerate(outputs):
        dims = out.type.tensor_type.shape.dim
        if lone:
            if i == 0:
                axes.append(1 if stacks[0]["spec"]["batch_first"] and len(dims) == 3 else 0)
            else:
                axes.append(None)
            continue
        named = [a for a, d in enumerate(dims) if d.dim_param == "seq"]
        axes.append(named[0] if named else None)
    return axes


def samples_from_args(model: onnx.ModelProto, args: Sequence[Any], scale: float = 1.0) -> Sample:
    """A sample from example args: their tensors feed the ONNX inputs in order."""
    if scale != 1.0:
        args = map_tensors(tuple(args), lambda t: t * scale if t.is_floating_point() else t)
    tensors = flatten_tensors(args)
    names = [i.name for i in graph_inputs(model)]
    if len(names) != len(tensors):
        raise GruOnnxUsageError(
            f"the ONNX file takes {len(names)} inputs ({', '.join(names)}) but {len(tensors)} tensors were given"
        )
    return Sample(tuple(args), {n: to_numpy(t) for n, t in zip(names, tensors, strict=True)}, scale)


def derived_samples(
    model: onnx.ModelProto,
    args: Sequence[Any],
    *,
    count: int,
    scales: Sequence[float],
    seq_len: int | None = None,
    batch: int | None = None,
    budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[Sample]:
    """The example, then ``count - 1`` variations of it: every dynamic axis of the file grows
    (sample ``i`` by ``i``, or to ``--batch``/``--seq-len`` for axes named batch/seq) and
    floating inputs are scaled by ``scales[i % len(scales)]``.

    Rows are taken from the example in reverse cyclic order, so integer inputs (token ids,
    lengths) keep valid values and a file that mixes up its batch rows shows it.
    """
    infos = graph_inputs(model)
    examples = flatten_tensors(tuple(args))
    if len(infos) != len(examples):
        return [samples_from_args(model, args)]  # samples_from_args names the problem
    symbolic = {d for info in infos for d in _dims(info) if isinstance(d, str) and d}
    for name, given in (("batch", batch), ("seq", seq_len)):
        if given is not None and name not in symbolic:
            flag = "--batch" if name == "batch" else "--seq-len"
            raise GruOnnxUsageError(f"{flag} {given}: the file has no dynamic {name} axis")
    samples = [samples_from_args(model, args, scales[0])]
    for i in range(1, count):
        sizes: dict[str, int] = {}
        for info, example in zip(infos, examples, strict=True):
            for axis, dim in enumerate(_dims(info)):
                if isinstance(dim, str) and dim and axis < example.dim():
                    wanted = {"batch": batch, "seq": seq_len}.get(dim)
                    sizes.setdefault(dim, wanted if wanted is not None else example.shape[axis] + i)
        check_budget(_grown_bytes(model, infos, examples, sizes), budget, f"sample {i} ({_sizes_text(sizes)})")
        flat = iter(infos)

        def resize(t: torch.Tensor, flat: Any = flat, sizes: dict[str, int] = sizes) -> torch.Tensor:
            info = next(flat)
            for axis, dim in enumerate(_dims(info)):
                if isinstance(dim, str) and dim in sizes and axis < t.dim():
                    n = t.shape[axis]
                    rows = torch.tensor([(n - 1 - j) % n for j in range(sizes[dim])])
                    t = t.index_select(axis, rows)
            return t

        resized = map_tensors(tuple(args), resize)
        samples.append(samples_from_args(model, resized, scales[i % len(scales)]))
    return samples


def _sizes_text(sizes: dict[str, int]) -> str:
    return ", ".join(f"{name} {size}" for name, size in sizes.items())


def _grown_bytes(
    model: onnx.ModelProto, infos: list[onnx.ValueInfoProto], examples: list[torch.Tensor], sizes: dict[str, int]
) -> int:
    """Bytes of one sample's inputs and outputs with the named axes at ``sizes`` (outputs' other
    dynamic axes at 1, their type's size at 4 bytes at least)."""
    total = 0
    for info, example in zip(infos, examples, strict=True):
        shape = [sizes.get(d, example.shape[a]) if isinstance(d, str) else d for a, d in enumerate(_dims(info))]
        total += math.prod(shape) * example.element_size()
    for out in model.graph.output:
        shape = [sizes.get(d, 1) if isinstance(d, str) else max(d, 1) for d in _dims(out)]
        total += math.prod(shape) * 4
    return total


def generate_samples(
    model: onnx.ModelProto,
    metadata: dict[str, Any],
    *,
    count: int,
    seq_len: int | None,
    batch: int | None,
    seed: int,
    scales: Sequence[float] = (1.0,),
    budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[Sample]:
    """Seeded random inputs for a lone-GRU file, shaped from its metadata and input shapes, fed
    by the file's own input names (the sequence, ``h0`` and ``lengths`` found by position).

    Inputs are standard normal times the sample's scale (``scales`` cycled), ``h0`` half that.
    A file with a dynamic sequence axis gets lengths from 1 to the maximum across the samples
    (the maximum first); a ``lengths`` input gets values from 1 to the sequence length.
    """
    (stack,) = metadata["stacks"]
    spec = stack["spec"]
    infos = [i for i in graph_inputs(model) if i.name not in set(state_inputs(metadata))]
    roles = lone_roles(infos)  # the file's own names: a factory may call its input "audio"
    if "input" not in roles:
        raise GruOnnxUsageError("the file takes no input; a GRU's file takes its sequence at least")
    x_info = next(i for i in infos if i.name == roles["input"])
    rank = len(x_info.type.tensor_type.shape.dim)
    bf = spec["batch_first"] and rank == 3
    seq_axis, batch_axis = (1, 0) if bf else (0, 1)
    dims = _dims(x_info)
    static_seq = dims[seq_axis] if isinstance(dims[seq_axis], int) else None
    static_batch = (dims[batch_axis] if isinstance(dims[batch_axis], int) else None) if rank == 3 else 1
    if seq_len is not None and static_seq is not None and seq_len != static_seq:
        raise GruOnnxUsageError(f"the file's sequence length is fixed at {static_seq}; --seq-len {seq_len} cannot run")
    if batch is not None and static_batch is not None and rank == 3 and batch != static_batch:
        raise GruOnnxUsageError(f"the file's batch size is fixed at {static_batch}; --batch {batch} cannot run")
    max_seq = static_seq or seq_len or 16
    batch = static_batch or batch or 3
    dirs = 2 if spec["bidirectional"] else 1
    itemsize = float_type(metadata.get("dtype", "float32")).numpy.itemsize
    per_step = spec["input_size"] + dirs * (3 + 1) * spec["hidden_size"]  # input, projection, output
    nbytes = itemsize * (max_seq * batch * per_step + 2 * spec["num_layers"] * dirs * batch * spec["hidden_size"])
    check_budget(nbytes, budget, f"a sample of batch {batch} and {max_seq} steps")
    if static_seq is not None:
        lengths_of = [static_seq] * count
    else:
        rng_len = np.random.default_rng(seed + 1)
        lengths_of = [max_seq, 1, *rng_len.integers(1, max_seq + 1, size=max(count - 2, 0))][:count]
    steps = sum(int(n) for n in lengths_of) * spec["num_layers"] * dirs
    if steps > MAX_CHECK_STEPS:
        raise GruOnnxUsageError(
            f"{len(lengths_of)} samples of up to {max_seq} steps through {spec['num_layers']} layer(s) and {dirs} "
            f"direction(s) take {steps} GRU steps, over the check's limit of {MAX_CHECK_STEPS}; give fewer "
            "--samples or a shorter --seq-len, or check the file on your own data (--inputs FILE.npz)"
        )
    dtype = float_type(metadata.get("dtype", "float32")).torch
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for i, seq in enumerate(lengths_of):
        scale = scales[i % len(scales)]
        shape = (batch, seq, spec["input_size"]) if bf else (seq, batch, spec["input_size"])
        if rank == 2:
            shape = (seq, spec["input_size"])
        x = (scale * torch.randn(*shape, generator=gen)).to(dtype)
        h0 = None
        if "h0" in roles:
            h_shape = (spec["num_layers"] * dirs, batch, spec["hidden_size"])
            h0 = torch.randn(*(h_shape if rank == 3 else (h_shape[0], h_shape[2])), generator=gen)
            h0 = (0.5 * scale * h0).to(dtype)
        lengths = None
        if "lengths" in roles:
            lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
            lengths[0] = seq
            if batch > 1:
                lengths[-1] = 1
        args = (x, h0, lengths)
        feeds = {roles[r]: to_numpy(a) for r, a in zip(("input", "h0", "lengths"), args, strict=True) if a is not None}
        samples.append(Sample(args, feeds, scale))
    return samples


def samples_from_npz(
    model: onnx.ModelProto, path: str | os.PathLike[str], metadata: dict[str, Any] | None, lone_gru: bool
) -> list[Sample]:
    """User inputs: an ``.npz`` whose keys are the ONNX input names.

    Floating arrays are cast to the file's input type (NumPy writes float64 by default);
    shapes must fit the file's fixed dimensions and lengths must lie in 1..sequence length.
    """
    regular_file(path, "inputs file")
    with open(path, "rb") as f:  # NumPy reads anything else as a pickle and says so: misleading
        magic = f.read(6)
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise GruOnnxUsageError(f"{path} is not an .npz archive (np.savez writes one, keyed by the file's input names)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise GruOnnxUsageError(f"cannot read inputs {path}: {_first(exc)}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise GruOnnxUsageError(f"{path} is a single .npy array; give an .npz keyed by the file's input names")
    infos = {i.name: i for i in graph_inputs(model)}
    missing = [n for n in infos if n not in data.files]
    if missing:
        raise GruOnnxUsageError(f"{path} has no array {missing[0]!r} (the file's inputs: {', '.join(infos)})")
    feeds = {}
    for name, info in infos.items():
        try:
            array = np.asarray(data[name])
        except (OSError, ValueError, EOFError) as exc:  # object arrays (pickles) are refused here
            raise GruOnnxUsageError(f"cannot read {name!r} from {path}: {_first(exc)}") from None
        want = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        if array.dtype != want:
            array = _cast(array, np.dtype(want), f"{path}: {name!r}")
        dims = _dims(info)
        fits = array.ndim == len(dims) and all(
            not isinstance(d, int) or d == n for d, n in zip(dims, array.shape, strict=False)
        )
        if not fits:
            shown = ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in dims)
            raise GruOnnxUsageError(f"{path}: {name!r} has shape {list(array.shape)}, the file takes [{shown}]")
        feeds[name] = array
    roles = lone_roles(list(infos.values())) if lone_gru else {}
    if "lengths" in roles and "input" in roles:
        x = feeds[roles["input"]]
        seq_axis = 0 if x.ndim == 2 else time_axes(model, metadata)[0]
        seq = x.shape[seq_axis]
        lengths = feeds[roles["lengths"]]
        if lengths.size and (lengths.min() < 1 or lengths.max() > seq):
            raise GruOnnxUsageError(
                f"{path}: lengths must lie in 1..{seq} (the sequence length), got {lengths.tolist()}"
            )
    tensors = {n: torch.from_numpy(np.array(a)) for n, a in feeds.items()}
    # A lone GRU takes (input, h0, lengths) positionally; any other model its inputs in order.
    order = [roles.get(r) for r in ("input", "h0", "lengths")] if lone_gru else list(infos)
    args = tuple(tensors.get(n) if n is not None else None for n in order)
    return [Sample(args, feeds)]


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _cast(array: np.ndarray, want: np.dtype, where: str) -> np.ndarray:
    """``array`` as ``want``: floats to floats (NumPy writes float64; rounding is fine), integers
    to integers; a value the cast would turn into infinity or wrap around is refused."""
    floats = np.issubdtype(array.dtype, np.floating) and np.issubdtype(want, np.floating)
    ints = np.issubdtype(array.dtype, np.integer) and np.issubdtype(want, np.integer)
    if not (floats or ints):
        raise GruOnnxUsageError(f"{where} is {array.dtype}, the file takes {want}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(want)
    if floats:
        overflow = np.isfinite(array) & ~np.isfinite(cast)
        if overflow.any():
            worst = float(np.abs(array[overflow]).max())
            raise GruOnnxUsageError(
                f"{where}: {int(overflow.sum())} value(s) (up to {worst:.3g}) overflow {want} to inf"
            )
    elif array.size and (int(array.min()) < np.iinfo(want).min or int(array.max()) > np.iinfo(want).max):
        raise GruOnnxUsageError(f"{where}: values outside {want}'s range would wrap around")
    return cast


def refuse_nonfinite(samples: Sequence[Sample]) -> None:
    """Inputs holding NaN or infinity make a comparison mean nothing: refused, naming the input."""
    for i, sample in enumerate(samples):
        for name, array in sample.feeds.items():
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                bad = int((~np.isfinite(array)).sum())
                where = f" (input scale x{sample.scale:g})" if sample.scale != 1.0 else ""
                raise GruOnnxUsageError(
                    f"input {name!r} of sample {i}{where} holds {bad} NaN/inf value(s): a comparison on them means "
                    "nothing; allow them with --allow-nonfinite (CheckOptions(allow_nonfinite=True))"
                )


def check_budget(nbytes: int, budget: int, what: str) -> None:
    """Refuse, before allocating, a sample larger than the memory budget."""
    if nbytes > budget:
        raise GruOnnxUsageError(
            f"{what} needs about {nbytes / 2**30:.3g} GiB, over the memory budget of {budget / 2**30:.3g} GiB; "
            "use smaller sizes, or raise the budget (--memory-budget BYTES)"
        )


def plan_samples(
    model: onnx.ModelProto,
    metadata: dict[str, Any] | None,
    *,
    args: Sequence[Any] | None,
    inputs: str | os.PathLike[str] | None,
    count: int,
    seq_len: int | None,
    batch: int | None,
    seed: int,
    scales: Sequence[float] | None,
    allow_nonfinite: bool = False,
    budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[Sample]:
    """The samples of one check: the ``.npz`` when given, else variations of the example args,
    else seeded random samples (lone-GRU files, from the metadata). Sizes over ``budget`` are
    refused before anything is allocated; non-finite inputs unless ``allow_nonfinite``."""
    stacks = (metadata or {}).get("stacks", [])
    lone_gru = len(stacks) == 1 and stacks[0]["path"] == ""
    scales = tuple(scales) if scales else file_scales(metadata)
    if inputs is not None:
        found = samples_from_npz(model, inputs, metadata, lone_gru)
    elif args is not None:
        found = derived_samples(
            model, tuple(args), count=max(count, 1), scales=scales, seq_len=seq_len, batch=batch, budget=budget
        )
    elif lone_gru and metadata is not None:
        found = generate_samples(
            model, metadata, count=max(count, 1), seq_len=seq_len, batch=batch, seed=seed, scales=scales,
            budget=budget,
        )  # fmt: skip
    else:
        raise GruOnnxUsageError("no inputs for this file: give example args (--model) or --inputs FILE.npz")
    if not allow_nonfinite:
        refuse_nonfinite(found)
    return found


# ---------------------------------------------------------------- timing inputs


def timing_feeds(
    model: Any,
    metadata: Mapping[str, Any] | None,
    batch: int,
    seq_len: int | None,
    seed: int = 0,
    budget: int = DEFAULT_MEMORY_BUDGET,
) -> tuple[dict[str, np.ndarray], int]:
    """Random feeds for any file's inputs at ``batch`` and ``seq_len`` (its static length, or
    :data:`DEFAULT_TIMING_SEQ_LEN`, when None), for timing: floating inputs standard normal,
    ``lengths`` full, other integers zero (valid ids for any vocabulary), a streaming file's
    states zero (a stream's start). Batch and sequence axes are found by name, or by a lone GRU's
    layout (its inputs by position, whatever their names) and a state's (batch first); a static
    axis that disagrees is refused."""
    stacks = (metadata or {}).get("stacks", [])
    static = {s["seq_len"] for s in stacks if s.get("seq_len") is not None}
    if seq_len is None:
        seq_len = min(static) if static else DEFAULT_TIMING_SEQ_LEN
    elif static and seq_len not in static:
        raise GruOnnxUsageError(
            f"the file's sequence length is fixed at {min(static)}; use --seq-len {min(static)} or export with another"
        )
    layers = sum(st["spec"]["num_layers"] * (2 if st["spec"]["bidirectional"] else 1) for st in stacks)
    if seq_len * layers > MAX_CHECK_STEPS:  # a tiny file forged to millions of steps runs for minutes
        raise GruOnnxUsageError(
            f"one run of {seq_len} steps through {layers} GRU layer(s) and direction(s) takes {seq_len * layers} "
            f"GRU steps, over bench's limit of {MAX_CHECK_STEPS}"
            + ("; give a shorter --seq-len" if not static else "")
        )
    lone = lone_stack(metadata)
    states = set(state_inputs(metadata))
    initializers = {i.name for i in model.graph.initializer}
    infos = [v for v in model.graph.input if v.name not in initializers]
    plain = [v for v in infos if v.name not in states]
    roles = {name: role for role, name in lone_roles(plain).items()} if lone is not None else {}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in plain}
    time_axes = input_time_axes(metadata, ranks) if metadata is not None and lone is None else {}
    rng = np.random.default_rng(seed)
    feeds = {}
    planned = 0
    placed: set[str] = set()  # the roles some axis took: a size no axis takes is not what runs
    for value in infos:
        tensor = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        dims = list(tensor.shape.dim)
        if value.name in states:  # a streaming state [batch, L*D, H]: zeros, as a stream starts
            axis_roles: tuple[str | None, ...] | None = ("batch",) + (None,) * (len(dims) - 1)
        elif lone is not None:
            axis_roles = _lone_axis_roles(roles.get(value.name), len(dims), lone["spec"]["batch_first"])
        elif metadata is not None:  # a whole model: batch on axis 0 (as exported), time where recorded
            time = time_axes.get(value.name)
            axis_roles = tuple("seq" if a == time else "batch" if a == 0 else None for a in range(len(dims)))
        else:
            axis_roles = None  # by the axes' names
        shape = [_axis_size(value.name, axis, dim, axis_roles, batch, seq_len) for axis, dim in enumerate(dims)]
        placed.update(_roles_of(dims, axis_roles))
        planned += math.prod(shape) * np.dtype(dtype).itemsize
        check_budget(planned, budget, f"inputs of batch {batch} and {seq_len} steps")
        if value.name in states:
            feeds[value.name] = np.zeros(shape, dtype=dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        elif roles.get(value.name, value.name) == "lengths":
            feeds[value.name] = np.full(shape, seq_len, dtype=dtype)
        else:  # token ids and the like: zeros are valid for any vocabulary
            feeds[value.name] = np.zeros(shape, dtype=dtype)
    if "batch" not in placed and infos:
        raise GruOnnxUsageError(
            "bench cannot tell which input axis is the batch: the file has no gru-onnx metadata and no axis "
            "named 'batch'"
        )
    if "seq" not in placed and not static and infos:
        raise GruOnnxUsageError(
            "bench cannot tell which input axis is the sequence: the file has no gru-onnx metadata and no axis "
            "named 'seq'"
        )
    return feeds, seq_len


def _role(axis: int, dim: Any, roles: tuple[str | None, ...] | None) -> str | None:
    """What one input axis is (batch, seq or None): by ``roles`` (a lone GRU's layout, a state's
    batch, a whole model's recorded axes), else by the axis's name."""
    if roles is not None:
        return roles[axis] if axis < len(roles) else None
    return "batch" if dim.dim_param == "batch" else "seq" if dim.dim_param.startswith("seq") else None


def _roles_of(dims: Sequence[Any], roles: tuple[str | None, ...] | None) -> set[str]:
    """The roles (batch, seq) the axes ``dims`` take."""
    return {r for axis, dim in enumerate(dims) if (r := _role(axis, dim, roles)) is not None}


def _lone_axis_roles(role: str | None, rank: int, batch_first: bool) -> tuple[str | None, ...]:
    """What each axis of a lone GRU's input is: the sequence ``[T, B, I]``/``[B, T, I]`` (``[T, I]``
    unbatched), ``h0`` ``[L*D, B, H]`` (``[L*D, H]``), ``lengths`` ``[B]``."""
    if role == "input":
        return ("seq", None) if rank == 2 else ("batch", "seq", None) if batch_first else ("seq", "batch", None)
    if role == "h0":
        return (None, None) if rank == 2 else (None, "batch", None)
    return ("batch",)


def _axis_size(name: str, axis: int, dim: Any, roles: tuple[str | None, ...] | None, batch: int, seq_len: int) -> int:
    """The size of one input axis: batch and sequence by ``roles`` (a lone GRU's layout, a
    state's batch), else by the axis's name."""
    role = _role(axis, dim, roles)
    want = {"batch": batch, "seq": seq_len}.get(role)  # type: ignore[arg-type]
    if dim.dim_param:
        if want is None:
            raise GruOnnxUsageError(
                f"input {name!r} axis {axis} is dynamic ({dim.dim_param}) and not batch or sequence"
            )
        return want
    if want is not None and want != dim.dim_value:
        option = "--batch" if role == "batch" else "--seq-len"
        raise GruOnnxUsageError(
            f"input {name!r} has a static {role} axis of {dim.dim_value}; use {option} {dim.dim_value}"
        )
    return dim.dim_value
