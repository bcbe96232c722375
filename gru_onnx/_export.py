"""``gru_onnx.export``: a model holding CustomGRU layers -> a checked, self-describing ONNX file.

``torch.onnx`` exports the model with each CustomGRU as one placeholder node; the chosen
strategy (``gru_onnx.exporters``) then writes that placeholder as plain ONNX. The file carries
a JSON description of its GRU stacks in ``metadata_props["gru_onnx"]``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx
import onnx_ir as ir
import onnxscript
import torch
from torch import nn

from gru_onnx import _export_op, compact, naming, saving, workarounds
from gru_onnx import streaming as streaming_export
from gru_onnx._version import __version__
from gru_onnx.axes import probe_time_axes
from gru_onnx.errors import ExportError, GruOnnxUsageError, InternalError
from gru_onnx.exporters import TARGETS, StackInputs, Strategy, get_strategy, strategy_names
from gru_onnx.metadata import METADATA_KEY, find_metadata
from gru_onnx.module import CustomGRU
from gru_onnx.spec import GRUSpec

if TYPE_CHECKING:
    from gru_onnx.parity import ParityReport

MIN_OPSET = 17
MAX_OPSET = 25  # newest opset torch.onnx writes and ONNX Runtime 1.31 runs
DEFAULT_OPSET = 18
TORCH_MIN_OPSET = 18  # the oldest opset torch.onnx (dynamo) writes
# bfloat16 is left out: ONNX Runtime 1.31's CPU provider has no bfloat16 MatMul or Gemm.
DTYPES = {"float32": torch.float32, "float16": torch.float16}
_GRU_ARGS = ("input", "hx", "lengths")  # CustomGRU.forward's tensor arguments


@dataclass
class ExportResult:
    """What an export produced: the file, its shape, and the parity report if one was run."""

    path: Path
    strategy: str
    opset: int
    num_nodes: int
    file_size: int
    seconds: float
    metadata: dict[str, Any]
    parity: ParityReport | None = None
    node_counts: dict[str, int] = field(default_factory=dict)
    data_path: Path | None = None  # the external data file beside ``path``, if any
    data_size: int = 0

    @property
    def passed(self) -> bool:
        """True unless a parity check ran and failed."""
        return self.parity is None or self.parity.passed


def find_grus(model: nn.Module) -> list[tuple[str, CustomGRU]]:
    """Every CustomGRU in ``model`` with its dotted path ('' for the model itself)."""
    return [(path, m) for path, m in model.named_modules() if isinstance(m, CustomGRU)]


def export(
    model: nn.Module,
    args: Sequence[Any] | Any,
    f: str | os.PathLike[str],
    *,
    strategy: str = "auto",
    opset: int = DEFAULT_OPSET,
    dtype: torch.dtype | str | None = None,
    dynamic_batch: bool = True,
    dynamic_seq: bool = False,
    check: bool = True,
    providers: Sequence[str] = ("cpu",),
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_shapes: Any = None,
    atol: float | None = None,
    rtol: float | None = None,
    streaming: bool = False,
    chunk: int | None = None,
    streaming_exclude: Sequence[str] = (),
    quantize: str | None = None,
    external_data: bool | None = None,
    target: str = "any",
) -> ExportResult:
    """Export ``model`` (a CustomGRU or any module containing some) to the ONNX file ``f``.

    ``args`` are example inputs (for a CustomGRU: ``input``, then optionally ``h0`` and
    ``lengths``). ``strategy`` is a name from ``gru_onnx.exporters`` (``auto`` chooses per GRU
    stack and records why). ``dtype`` (``float32`` or ``float16``) converts a copy
    of the model and the floating inputs first. With ``dynamic_batch`` the batch axis is named
    ``batch`` and left free, with ``dynamic_seq`` the sequence axis too (``seq``): for a
    CustomGRU the axes follow ``batch_first``; for other models they are axes 0 and 1 of every
    tensor input (pass ``dynamic_shapes`` as for ``torch.export`` to say otherwise).
    With ``check`` the file is run on ``providers`` (ONNX Runtime CPU by default; see
    ``gru_onnx.check_parity``) and compared with the model in eval mode; the report is in
    ``result.parity``. ``quantize`` (``"weights"`` or ``"dynamic"``) writes an int8 file
    (see :func:`gru_onnx.quantize`), checked against the float model with int8 tolerances.

    With ``streaming`` every CustomGRU call takes its initial state from a new graph input and
    gives its final state as a new graph output (batch-first ``[batch, L*D, H]``, named and
    listed as :mod:`gru_onnx.streaming` says), so the file runs chunk by chunk; the sequence
    axis is dynamic, or ``chunk`` steps long. ``streaming_exclude`` names modules (and what
    lies under them) whose calls keep their state inside the model. The check then runs the
    file chunk by chunk against the model on the whole sequence.

    ``external_data`` writes the tensors to a data file beside the model (``None``: when the
    model reaches protobuf's 2 GiB limit; see :mod:`gru_onnx.saving`), named in
    ``result.data_path``.

    ``target`` (``any``, ``cpu``, ``cuda``, ``tensorrt``, ``openvino``) names the runtime the
    file is for: auto then picks the fastest form that is exact there (``any``: exact and as
    intended everywhere). The file is written only once complete.
    """
    started = time.perf_counter()
    input_names = input_names or getattr(model, "gru_onnx_input_names", None)
    output_names = output_names or getattr(model, "gru_onnx_output_names", None)
    path = _check_output_path(f)
    chosen = get_strategy(strategy)
    if target not in TARGETS:
        raise GruOnnxUsageError(f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    if quantize is not None:
        from gru_onnx.quantize import MODES

        if quantize not in MODES:
            raise GruOnnxUsageError(f"unknown quantization mode {quantize!r}; valid modes: {', '.join(MODES)}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise GruOnnxUsageError(f"opset {opset} is not supported (use {MIN_OPSET} to {MAX_OPSET})")
    if dynamic_seq and not chosen.dynamic_seq:
        raise GruOnnxUsageError(
            f"the {chosen.name} strategy fixes the sequence length; use a strategy with a dynamic length "
            f"({', '.join(n for n in strategy_names() if get_strategy(n).dynamic_seq)}) with dynamic_seq"
        )
    args = tuple(args) if isinstance(args, list | tuple) else (args,)
    if dtype is not None:
        model, args = _convert_dtype(model, args, dtype)
    grus = find_grus(model)
    if not grus:
        raise GruOnnxUsageError(f"{type(model).__name__} contains no CustomGRU layer to export")
    check_args = args
    stream = _plan_streaming(model, args, grus, chosen, streaming, chunk, tuple(streaming_exclude), dynamic_shapes)
    if stream is not None:
        args, dynamic_seq = stream.args, stream.chunk is None
    if chosen.name == "native":  # refuse before the export's work, naming the activation
        from gru_onnx.exporters.native import native_activations

        for _, gru in grus:
            native_activations(gru.spec)
    if isinstance(model, CustomGRU):
        names = [n for n, a in zip(("input", "h0", "lengths"), args, strict=False) if a is not None]
        input_names = input_names or names
        output_names = output_names or ["output", "h_n"]
    if dynamic_shapes is None and (dynamic_batch or dynamic_seq):
        dynamic_shapes = _dynamic_shapes(model, args, batch=dynamic_batch, seq=dynamic_seq)

    # torch.onnx writes opset 18 and newer; older targets are relabelled afterwards.
    torch_opset = max(opset, TORCH_MIN_OPSET)
    call_args, call_kwargs = args, {}
    if isinstance(model, CustomGRU):
        # By keyword, so that a None h0 before lengths does not shift the inputs.
        call_args, call_kwargs = (), {n: a for n, a in zip(_GRU_ARGS, args, strict=False) if a is not None}
        if isinstance(dynamic_shapes, tuple):
            dynamic_shapes = {n: d for n, d, a in zip(_GRU_ARGS, dynamic_shapes, args, strict=False) if a is not None}
    lifter = streaming_export.StateLifter(tuple(streaming_exclude)) if stream is not None else None
    with _export_mode(model, grus):
        program = _torch_export(model, call_args, call_kwargs, torch_opset, input_names, output_names, dynamic_shapes)
    ir_model = program.model
    _name_io(ir_model.graph, program, model, input_names, output_names)
    promised = _promised_axes(model, call_args, call_kwargs, dynamic_shapes)
    _verify_dynamic_axes(ir_model.graph, promised)
    output_time_axes = _output_time_axes(model, args, promised, [v.name for v in ir_model.graph.outputs])
    if lifter is not None:
        lifter.taken.update(v.name for v in (*ir_model.graph.inputs, *ir_model.graph.outputs) if v.name)
    stacks = _replace_placeholders(ir_model, chosen, opset, lifter, target)
    if lifter is not None and not lifter.pairs:
        raise GruOnnxUsageError(
            f"streaming_exclude {list(streaming_exclude)} leaves no CustomGRU call to stream; export without streaming"
        )
    workarounds.apply_all(ir_model.graph)
    float_dtype = _float_dtype(model)
    used = sorted({stack["strategy"] for stack in stacks})
    metadata = {
        "producer": "gru-onnx",
        "version": __version__,
        "strategy": used[0] if len(used) == 1 else "mixed",
        "requested_strategy": chosen.name,
        "target": target,
        "opset": opset,
        "dtype": float_dtype,
        "dynamic_seq": any(stack["seq_len"] is None for stack in stacks),
        "dynamic_batch": any(not dim.startswith("seq") for *_, dim in promised),
        "stacks": stacks,
    }
    if output_time_axes is not None:
        metadata["time_axes"] = output_time_axes
    if stream is not None and lifter is not None:
        metadata["streaming"] = lifter.metadata()
        metadata["chunk"] = stream.chunk
        metadata["input_time_axes"] = stream.input_axes_by_name(ir_model.graph, lifter)
    ir_model.metadata_props[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    if opset != torch_opset:
        _relabel_opset(ir_model, opset)
    if quantize is not None:  # quantization works on the protobuf form (a copy of the weights)
        from gru_onnx.quantize import quantize_model

        proto = ir.to_proto(ir_model)
        quantize_model(proto, quantize)
        metadata = find_metadata(proto)
        ir_model = ir.from_proto(proto)
    produced = [v.name for node in ir_model.graph for v in node.outputs if v.name]
    if len(produced) != len(set(produced)):  # pragma: no cover - the checker does not catch this
        raise InternalError("the exported graph assigns a value name twice")
    compact.compact_names(ir_model)  # short node and value names (gru_onnx.compact)
    counts: dict[str, int] = {}
    for node in ir_model.graph:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    try:
        data_path = saving.save_model(ir_model, path, external_data=external_data)
    except onnx.shape_inference.InferenceError as exc:  # e.g. an op given a type it does not take
        raise ExportError(f"the exported graph does not type-check: {_first_line(exc)}") from exc
    except onnx.checker.ValidationError as exc:  # pragma: no cover - a bug in a strategy
        raise InternalError(f"the exported graph is not valid ONNX: {_first_line(exc)}") from exc

    result = ExportResult(
        path=path,
        strategy=metadata["strategy"],
        opset=opset,
        num_nodes=len(ir_model.graph),
        file_size=path.stat().st_size,
        seconds=time.perf_counter() - started,
        metadata=metadata,
        node_counts=counts,
        data_path=data_path,
        data_size=data_path.stat().st_size if data_path is not None else 0,
    )
    if check:
        from gru_onnx.parity import check_parity

        tolerances = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
        result.parity = check_parity(
            model, path, check_args, providers=providers, streaming=stream is not None, **tolerances
        )
    return result


@dataclass(frozen=True)
class _StreamPlan:
    """A streaming export's decisions: the example it traces (``chunk`` steps long when fixed)
    and which axis of each input is time (the outputs' are probed as for every export)."""

    args: tuple[Any, ...]
    chunk: int | None
    input_axes: list[int | None]

    def input_axes_by_name(self, graph: ir.Graph, lifter: streaming_export.StateLifter) -> dict[str, int | None]:
        """The time axis of each graph input by name (state inputs left out)."""
        states = {p.input for p in lifter.pairs}
        inputs = [v.name for v in graph.inputs if not v.is_initializer() and v.name not in states]
        tensor_axes = [a for a, arg in zip(self.input_axes, self.args, strict=True) if isinstance(arg, torch.Tensor)]
        return dict(zip(inputs, tensor_axes, strict=True))


def _plan_streaming(
    model: nn.Module,
    args: tuple[Any, ...],
    grus: list[tuple[str, CustomGRU]],
    strategy: Strategy,
    streaming: bool,
    chunk: int | None,
    exclude: tuple[str, ...],
    dynamic_shapes: Any,
) -> _StreamPlan | None:
    """Check a streaming request before the export's work, and fit the example to it."""
    if not streaming:
        if chunk is not None:
            raise GruOnnxUsageError(
                "chunk is the fixed chunk length of a streaming file: pass streaming=True (--streaming) too"
            )
        if exclude:
            raise GruOnnxUsageError(
                "streaming_exclude applies to streaming exports: pass streaming=True (--streaming) too"
            )
        return None
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise GruOnnxUsageError(f"chunk must be a positive number of time steps, got {chunk!r}")
    if chunk is None and not strategy.dynamic_seq:
        raise GruOnnxUsageError(
            f"the {strategy.name} strategy fixes the sequence length: a streaming file with it needs a fixed "
            "chunk length (chunk=N, --chunk N)"
        )
    if dynamic_shapes is not None:
        raise GruOnnxUsageError(
            "streaming exports name their axes themselves (batch: axis 0, time: axis 1 of every input, a lone "
            "CustomGRU by its layout); dynamic_shapes cannot be combined with streaming"
        )
    bad = [type(a).__name__ for a in args if a is not None and not isinstance(a, torch.Tensor)]
    if bad:
        raise GruOnnxUsageError(f"streaming exports take tensor arguments only, got a {bad[0]}")
    if isinstance(model, CustomGRU) and isinstance(args[0], torch.Tensor) and args[0].dim() == 2:
        raise GruOnnxUsageError(
            "streaming needs batched input (3-D, batch as the states' axis 0); add a batch axis of size 1"
        )
    streaming_export.check_modules(grus, exclude)
    axes = streaming_export.input_sequence_axes(model, args)
    length = streaming_export.sequence_length(args, axes)
    # A dynamic time axis needs an example of at least 2 steps; a fixed one exactly ``chunk``.
    wanted = chunk if chunk is not None else max(length, 2)
    return _StreamPlan(streaming_export.resize_sequence(args, axes, wanted), chunk, axes)


def _output_time_axes(
    model: nn.Module, args: tuple[Any, ...], promised: list[tuple[int, str, int, str]], outputs: list[str]
) -> dict[str, int | None] | None:
    """Each output's time axis for a whole model (see :mod:`gru_onnx.axes`); a lone CustomGRU's
    layout already says it. The sequence axes the export declared are grown first."""
    if isinstance(model, CustomGRU):
        return None
    names = _arg_names(model, len(args))
    hints = [(names.index(name), axis) for _, name, axis, dim in promised if dim.startswith("seq") and name in names]
    axes = probe_time_axes(model, args, hints)
    if axes is None or len(axes) != len(outputs):
        return None
    return dict(zip(outputs, axes, strict=True))


def _positional_count(model: nn.Module) -> int | None:
    """How many positional parameters ``forward`` names before a ``*args``, or None without one."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover
        return None
    if not any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _vararg_name(model: nn.Module) -> str | None:
    """The name of ``forward``'s ``*`` parameter (torch.export names its inputs after it)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover
        return None
    return next((p.name for p in params if p.kind == p.VAR_POSITIONAL), None)


def _arg_names(model: nn.Module, count: int) -> list[str]:
    """Names of ``model``'s first ``count`` positional arguments, as torch.export names inputs."""
    if isinstance(model, CustomGRU):
        return list(_GRU_ARGS[:count])
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(names) < count:  # forward(*args): input, input_1, ...
        names += [f"input_{i}" if i else "input" for i in range(len(names), count)]
    return names[:count]


def _dynamic_shapes(model: nn.Module, args: tuple[Any, ...], *, batch: bool, seq: bool) -> tuple[Any, ...] | None:
    """Name the batch axis ``batch`` and, with ``seq``, the sequence axis ``seq`` on every input.

    For a CustomGRU the axes follow its layout; for other models they are axes 0 and 1 of
    every tensor input. Inputs whose example lengths differ get their own sequence axes
    (``seq``, ``seq_1``, ...): a shared encoder may read sequences of different lengths.
    """
    batch_dim = torch.export.Dim("batch") if batch else None
    seq_dims: dict[int, Any] = {}

    def seq_dim(length: int) -> Any:
        if not seq:
            return None
        if length not in seq_dims:
            seq_dims[length] = torch.export.Dim("seq" if not seq_dims else f"seq_{len(seq_dims)}")
        return seq_dims[length]

    names = _arg_names(model, len(args))
    if isinstance(model, CustomGRU):
        x = args[0]
        if not isinstance(x, torch.Tensor):
            return None
        if x.dim() == 2:  # unbatched: [seq, feature]
            return ({0: seq_dim(x.shape[0])} if seq else None,) + (None,) * (len(args) - 1)
        b_axis, s_axis = (0, 1) if model.spec.batch_first else (1, 0)
        axes = [(b_axis, s_axis), (1, None), (0, None)]  # input, h0, lengths
    else:
        axes = [(0, 1)] * len(args)
    shapes = []
    for name, arg, (b_axis, s_axis) in zip(names, args, axes, strict=False):
        if not isinstance(arg, torch.Tensor):
            shapes.append(None)
            continue
        spec = {}
        if batch_dim is not None and b_axis < arg.dim():
            spec[b_axis] = batch_dim
        if s_axis is not None and s_axis < arg.dim() and (dim := seq_dim(arg.shape[s_axis])) is not None:
            spec[s_axis] = dim
        for axis, dim in spec.items():
            if arg.shape[axis] < 2:
                kind = "batch" if dim is batch_dim else "sequence"
                raise GruOnnxUsageError(
                    f"input {name!r}: axis {axis} has size {arg.shape[axis]} in the example, and torch.export "
                    f"needs at least 2 to keep it dynamic as the {kind} axis. If axis {axis} of {name!r} is not "
                    f"its {kind} axis, pass dynamic_shapes naming each input's axes, as for torch.export; else "
                    f"give a larger example, or dynamic_{'batch' if kind == 'batch' else 'seq'}=False"
                )
        shapes.append(spec or None)
    named = _positional_count(model)
    if named is not None and not isinstance(model, CustomGRU) and len(shapes) > named:
        return (*shapes[:named], tuple(shapes[named:]))  # torch.export sees *args as one input
    return tuple(shapes)


def _promised_axes(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], dynamic_shapes: Any
) -> list[tuple[int, str, int, str]]:
    """``(graph input index, input name, axis, dim name)`` for every axis ``dynamic_shapes``
    declares dynamic with a named ``Dim`` (top-level tensor inputs only)."""
    if dynamic_shapes is None:
        return []
    if kwargs:
        named = [(n, a) for n, a in kwargs.items()]
    else:
        named = list(zip(_arg_names(model, len(args)), args, strict=True))
    if isinstance(dynamic_shapes, dict):
        specs = [dynamic_shapes.get(n) for n, _ in named]
    else:
        specs = list(dynamic_shapes)
        fixed = _positional_count(model)
        if fixed is not None and len(specs) == fixed + 1 and isinstance(specs[-1], tuple | list):
            specs = specs[:fixed] + list(specs[-1])  # *args: one entry holding a spec per argument
        specs += [None] * (len(named) - len(specs))
    promised = []
    index = 0
    for (name, arg), spec in zip(named, specs, strict=False):
        if not isinstance(arg, torch.Tensor):
            if arg is not None:
                return promised  # nested inputs: their flattened order is torch.export's business
            continue
        if isinstance(spec, dict):
            for axis, dim in spec.items():
                if hasattr(dim, "__name__"):
                    promised.append((index, name, int(axis), dim.__name__))
        index += 1
    return promised


def _verify_dynamic_axes(graph: ir.Graph, promised: list[tuple[int, str, int, str]]) -> None:
    """Refuse a file whose axes came out static although the export promised them dynamic
    (torch.export specialises an axis silently when the model ties it to a constant)."""
    inputs = [v for v in graph.inputs if not v.is_initializer()]
    fixed = []
    for index, name, axis, dim in promised:
        if index >= len(inputs) or inputs[index].shape is None or axis >= len(inputs[index].shape):
            continue
        size = inputs[index].shape[axis]
        if isinstance(size, int):
            fixed.append(f"{name!r} axis {axis} ({dim}) = {size}")
    if fixed:
        raise ExportError(
            f"torch.export fixed axes that were to be dynamic: {', '.join(fixed)}; the model ties them to a "
            "constant. Where such an axis is not the input's batch or sequence axis (an h0 [layers, batch, "
            "hidden] has batch on axis 1), pass dynamic_shapes naming each input's axes, as for torch.export; "
            "else export with dynamic_batch=False for a static file"
        )

def _name_io(
    graph: ir.Graph,
    program: Any,
    model: nn.Module,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
) -> None:
    """Name the graph's inputs and outputs by the rules of :mod:`gru_onnx.naming` (explicit
    names, which torch.onnx has applied already, win)."""
    inputs = list(input_names) if input_names else naming.input_names_from_graph(graph, _vararg_name(model))
    outputs = list(output_names) if output_names else None
    if outputs is None:
        try:
            outputs = naming.output_names_from_spec(program.exported_program.call_spec.out_spec)
        except Exception:  # pragma: no cover - an output structure torch describes differently
            outputs = None
        if outputs is not None and len(outputs) != len(graph.outputs):  # pragma: no cover
            outputs = None
    if outputs is not None:
        outputs = naming.unique_outputs(outputs, inputs)
    naming.rename_io(graph, None if input_names else inputs, None if output_names else outputs)


def _convert_dtype(
    model: nn.Module, args: tuple[Any, ...], dtype: torch.dtype | str
) -> tuple[nn.Module, tuple[Any, ...]]:
    """A copy of ``model`` and floating ``args`` in ``dtype`` (the caller's objects are untouched)."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise GruOnnxUsageError(f"unknown dtype {dtype!r}; valid dtypes: {', '.join(DTYPES)}")
        dtype = DTYPES[dtype]
    if dtype not in DTYPES.values():
        raise GruOnnxUsageError(f"dtype {dtype} is not supported; valid dtypes: {', '.join(DTYPES)}")
    converted = copy.deepcopy(model).to(dtype)

    def cast(a: Any) -> Any:
        return a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a

    return converted, tuple(cast(a) for a in args)


def _float_dtype(model: nn.Module) -> str:
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).removeprefix("torch.")
    return "float32"


@contextlib.contextmanager
def _export_mode(model: nn.Module, grus: list[tuple[str, CustomGRU]]) -> Iterator[None]:
    """Route each CustomGRU through the export op, in eval mode; restore both afterwards."""
    was_training = model.training
    model.eval()
    try:
        for path, gru in grus:
            gru._export_path = path
        yield
    finally:
        for _, gru in grus:
            gru._export_path = None
        model.train(was_training)


class _DropTorchvisionNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "torchvision is not installed" not in record.getMessage()


def _torch_export(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    opset: int,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    dynamic_shapes: Any,
) -> Any:
    """Run ``torch.onnx.export`` (dynamo) with the placeholder translation; errors -> ExportError."""
    noise = _DropTorchvisionNotice()
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    logger.addFilter(noise)
    try:
        with _internal_warnings_hidden():
            return torch.onnx.export(
                model,
                args,
                kwargs=kwargs,
                dynamo=True,
                optimize=False,
                verbose=False,
                opset_version=opset,
                input_names=list(input_names) if input_names else None,
                output_names=list(output_names) if output_names else None,
                dynamic_shapes=dynamic_shapes,
                custom_translation_table=_export_op.TRANSLATION_TABLE,
            )
    except GruOnnxUsageError:
        raise
    except Exception as exc:
        cause = _root_cause(exc)
        if isinstance(cause, GruOnnxUsageError):
            raise cause from exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ExportError(f"torch.onnx could not export the model: {first}") from exc
    finally:
        logger.removeFilter(noise)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


#: Warnings torch.export / torch.onnx raise about their own internals, not about the model.
_INTERNAL_WARNINGS = (
    r".*LeafSpec.*",
    r"# The axis name: .* will not be used",
    r".*_check_is_size will be removed.*",
    r".*tensor attributes .* were assigned during export.*",
)


@contextlib.contextmanager
def _internal_warnings_hidden() -> Iterator[None]:
    """Hide the warnings torch.export/torch.onnx raise about their own internals (matched by
    message); every other warning, from the user's code or about the model, passes through.
    ``GRU_ONNX_DEBUG=1`` shows everything."""
    if os.environ.get("GRU_ONNX_DEBUG"):
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    internal = [re.compile(p, re.DOTALL) for p in _INTERNAL_WARNINGS]
    for w in caught:
        if any(p.match(str(w.message)) for p in internal):
            continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _replace_placeholders(
    model: ir.Model,
    strategy: Strategy,
    opset: int,
    lifter: streaming_export.StateLifter | None = None,
    target: str = "any",
) -> list[dict[str, Any]]:
    """Write every placeholder node with ``strategy``; return the stacks' metadata. With a
    ``lifter`` (streaming) each call's state comes from and goes to graph inputs/outputs."""
    graph = model.graph
    stacks = []
    builder = onnxscript.GraphBuilder(graph)  # one builder: its constants are shared by all stacks
    calls: dict[str, int] = {}
    for node in [n for n in graph if n.domain == _export_op.STUB_DOMAIN]:
        cfg = json.loads(node.attributes["config"].value)
        spec = GRUSpec.from_json(cfg["spec"])
        inputs = list(node.inputs)
        x = inputs.pop(0)
        h0 = inputs.pop(0) if cfg["has_h0"] else None
        lengths = inputs.pop(0) if cfg["has_lengths"] else None
        weights = dict(zip(spec.all_parameter_names(), inputs, strict=True))
        batch_first = cfg["batch_first"]
        seq_dim = x.shape[1 if batch_first else 0] if x.shape is not None else None
        seq_len = seq_dim if isinstance(seq_dim, int) else None
        where = repr(cfg["path"]) if cfg["path"] else "the model"
        if seq_len is None and str(seq_dim) == "batch":
            raise ExportError(
                f"the CustomGRU at {where} gets the batch axis as its time axis: the model's inputs are not "
                "batch-first (axis 0 batch, axis 1 sequence); pass dynamic_shapes as for torch.export, or "
                "dynamic_batch=False"
            )
        if seq_len is None and not strategy.dynamic_seq:
            raise ExportError(
                f"the CustomGRU at {where} gets a dynamic time axis ({seq_dim}, from dynamic_shapes), which the "
                f"{strategy.name} strategy cannot write; make that axis static or use a strategy with a dynamic "
                "length (loop, native, auto)"
            )
        # A scope per call keeps node and value names unique when a CustomGRU runs twice.
        scope = f"gru_onnx.{cfg['path'] or 'gru'}"
        calls[scope] = calls.get(scope, -1) + 1
        scope += f"#{calls[scope]}" if calls[scope] else ""
        builder.push_module(scope, "CustomGRU")
        op = builder.opset("", opset)
        finish = None
        if lifter is not None:
            lifted, finish = lifter.initial_state(op, graph, spec, cfg, x)
            h0 = lifted if lifted is not None else h0
        prefix = f"{cfg['path']}." if cfg["path"] else ""
        stack = StackInputs(
            spec, x, h0, lengths, weights, seq_len, opset, batch_first=batch_first, name_prefix=prefix, scope=scope,
            target=target,
        )  # fmt: skip
        result = strategy.build(op, stack)
        if finish is not None:
            finish(op, result.y_h)
        builder.pop_module()
        new_outputs = (result.y, result.y_h)
        for old, new in zip(node.outputs, new_outputs, strict=True):
            name, old.name = old.name, None
            new.name = name
            new.type, new.shape = old.type, old.shape
        ir.convenience.replace_all_uses_with(node.outputs, new_outputs, replace_graph_outputs=True)
        graph.remove(node, safe=True)
        entry = {
            "path": cfg["path"],
            "spec": spec.to_json(),
            "strategy": result.strategy or strategy.name,
            "reason": result.reason or f"{strategy.name} requested",
            "seq_len": seq_len,
            "has_h0": cfg["has_h0"],
            "has_lengths": cfg["has_lengths"],
            "weights": dict(result.weights),
        }
        if result.native is not None:
            entry["native"] = dict(result.native)
        stacks.append(entry)
    if lifter is not None:
        lifter.name_outputs(graph)
    graph.sort()
    model.opset_imports.pop(_export_op.STUB_DOMAIN, None)
    # A strategy that rewrote the weights (native) leaves the originals unused.
    for name, value in list(graph.initializers.items()):
        if not value.uses() and not value.is_graph_output() and not value.is_graph_input():
            del graph.initializers[name]
    # Per-node debug metadata (Python stack traces with local paths, scope names) would make
    # up most of the file; keep the graph lean.
    for node in ir.traversal.RecursiveGraphIterator(graph):
        node.metadata_props.clear()
    return stacks


def _relabel_opset(model: ir.Model, opset: int) -> None:
    """Declare an older default-domain opset, after checking every node means the same there.

    torch.onnx writes opset 18 at the oldest; ONNX's version converter has no 18 -> 17
    adapter for Split. A node is kept when its operator's schema is the same in both
    opsets, or when it is a Split given its sizes as an input (valid since opset 13).
    """
    current = model.opset_imports[""]
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.domain not in ("", "ai.onnx"):
            continue
        new = onnx.defs.get_schema(node.op_type, current, node.domain).since_version
        try:
            old = onnx.defs.get_schema(node.op_type, opset, node.domain).since_version
        except onnx.defs.SchemaError:
            raise ExportError(
                f"cannot write opset {opset}: the model uses {node.op_type}, which ONNX defines from opset {new}; "
                f"export with --opset {new} or newer"
            ) from None
        split_with_sizes = node.op_type == "Split" and "num_outputs" not in node.attributes
        if new != old and not split_with_sizes:
            raise ExportError(
                f"cannot write opset {opset}: the model uses {node.op_type} as defined in opset "
                f"{new}; export with --opset {new} or newer"
            )
    model.opset_imports[""] = opset
    model.graph.opset_imports[""] = opset


def _check_output_path(f: str | os.PathLike[str]) -> Path:
    """Fail early (before the export's work) when ``f`` cannot be written; create nothing."""
    if not os.fspath(f):
        raise GruOnnxUsageError("the output path is empty")
    path = Path(f)
    if path.is_dir():
        raise GruOnnxUsageError(f"the output path {path} is a directory")
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise GruOnnxUsageError(f"cannot create {path.parent}: {existing} is not a directory")
    if existing == path.absolute().parent:
        try:  # the same kind of temporary file the final write uses
            with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".probe", dir=existing):
                pass
        except OSError as exc:
            raise GruOnnxUsageError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    elif not os.access(existing, os.W_OK):
        raise GruOnnxUsageError(f"cannot create {path.parent}: {existing} is not writable")
    return path
