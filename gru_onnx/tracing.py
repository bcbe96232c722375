"""Tracing a model with ``torch.onnx`` (dynamo), each CustomGRU one placeholder node.

What torch.export needs and does not say: which axes are dynamic (named ``batch`` and ``seq``
by the export's rules, or the caller's ``dynamic_shapes``), that every axis promised dynamic
came out dynamic, the names of the graph's inputs and outputs (:mod:`gru_onnx.naming`), a copy
of the model in another floating type, warnings about torch's own internals kept out of
the user's way, and torchlib's operator registry built once per process instead of once per export.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import onnx_ir as ir
import torch
from torch import nn

from gru_onnx import _export_op, naming
from gru_onnx.errors import ExportError, GruOnnxUsageError
from gru_onnx.module import CustomGRU
from gru_onnx.options import ShapeOptions
from gru_onnx.spec import float_type

TORCH_MIN_OPSET = 18  # the oldest opset torch.onnx (dynamo) writes
_GRU_ARGS = ("input", "hx", "lengths")  # CustomGRU.forward's tensor arguments


def find_grus(model: nn.Module) -> list[tuple[str, CustomGRU]]:
    """Every CustomGRU in ``model`` with its dotted path ('' for the model itself)."""
    return [(path, m) for path, m in model.named_modules() if isinstance(m, CustomGRU)]



def positional_count(model: nn.Module) -> int | None:
    """How many positional parameters ``forward`` names before a ``*args``, or None without one."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover
        return None
    if not any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def vararg_name(model: nn.Module) -> str | None:
    """The name of ``forward``'s ``*`` parameter (torch.export names its inputs after it)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover
        return None
    return next((p.name for p in params if p.kind == p.VAR_POSITIONAL), None)


def arg_names(model: nn.Module, count: int) -> list[str]:
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


def dynamic_shapes_for(model: nn.Module, args: tuple[Any, ...], *, batch: bool, seq: bool) -> tuple[Any, ...] | None:
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

    names = arg_names(model, len(args))
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
    named = positional_count(model)
    if named is not None and not isinstance(model, CustomGRU) and len(shapes) > named:
        return (*shapes[:named], tuple(shapes[named:]))  # torch.export sees *args as one input
    return tuple(shapes)


def promised_axes(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], dynamic_shapes: Any
) -> list[tuple[int, str, int, str]]:
    """``(graph input index, input name, axis, dim name)`` for every axis ``dynamic_shapes``
    declares dynamic with a named ``Dim`` (top-level tensor inputs only)."""
    if dynamic_shapes is None:
        return []
    named = list(kwargs.items()) if kwargs else list(zip(arg_names(model, len(args)), args, strict=True))
    if isinstance(dynamic_shapes, dict):
        specs = [dynamic_shapes.get(n) for n, _ in named]
    else:
        specs = list(dynamic_shapes)
        fixed = positional_count(model)
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


def verify_dynamic_axes(graph: ir.Graph, promised: list[tuple[int, str, int, str]]) -> None:
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

def name_io(
    graph: ir.Graph,
    program: Any,
    model: nn.Module,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
) -> None:
    """Name the graph's inputs and outputs by the rules of :mod:`gru_onnx.naming` (explicit
    names, which torch.onnx has applied already, win)."""
    for given, values, what in ((input_names, graph.inputs, "input"), (output_names, graph.outputs, "output")):
        if given and len(given) != len(values):
            raise GruOnnxUsageError(
                f"{what}_names gives {len(given)} name(s) ({', '.join(given)}), the exported graph has "
                f"{len(values)} {what}(s)"
            )
    inputs = list(input_names) if input_names else naming.input_names_from_graph(graph, vararg_name(model))
    outputs = list(output_names) if output_names else None
    if outputs is None:
        try:
            outputs = naming.output_names_from_spec(program.exported_program.call_spec.out_spec)
        except Exception:  # pragma: no cover - an output structure torch describes differently
            outputs = None
        if outputs is not None and len(outputs) != len(graph.outputs):  # pragma: no cover
            outputs = None
    if outputs is not None and not output_names:
        outputs = naming.unique_outputs(outputs, inputs)
    # Explicit names were applied by torch.onnx already, but one value returned twice (a Keras
    # GRU's last output and its state) got one name: give each output its own value and name.
    naming.rename_io(graph, None if input_names else inputs, outputs)


def convert_dtype(model: nn.Module, args: tuple[Any, ...], dtype: str) -> tuple[nn.Module, tuple[Any, ...]]:
    """A copy of ``model`` and floating ``args`` in ``dtype`` (the caller's objects are untouched)."""
    target = float_type(dtype).torch
    converted = copy.deepcopy(model).to(target)

    def cast(a: Any) -> Any:
        return a.to(target) if isinstance(a, torch.Tensor) and a.is_floating_point() else a

    return converted, tuple(cast(a) for a in args)


def float_dtype(model: nn.Module) -> str:
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).removeprefix("torch.")
    return "float32"



@contextlib.contextmanager
def export_mode(model: nn.Module, grus: list[tuple[str, CustomGRU]]) -> Iterator[None]:
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
        with _internal_warnings_hidden(), _torchlib_registry_reused():
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


#: ``from_torchlib``'s arguments -> (what the registry was built from, the registry)
_REGISTRIES: dict[Any, tuple[tuple[int, ...], Any]] = {}


def _built_from() -> tuple[int, ...]:
    """A cheap fingerprint of what torchlib's registry is built from: the operators torch knows
    (a library loaded later, e.g. ``quantized_decomposed``, adds some) and the functions torch's
    and onnxscript's torchlib tables hold. A change rebuilds the registry."""
    onnxscript_functions = sum(len(f.overloads) + len(f.complex) for f in _ONNXSCRIPT_TABLE.values())
    return len(torch._C._dispatch_get_all_op_names()), len(_TORCH_TABLE), onnxscript_functions


def _fresh_registry(cls: type, *args: Any, **kwargs: Any) -> Any:
    """torch's ``from_torchlib(*args, **kwargs)``, built once per arguments and fingerprint; each
    call gets a shallow copy that the export may extend (its custom translation table)."""
    key = (cls, args, tuple(sorted(kwargs.items())))
    try:
        hash(key)
    except TypeError:
        return _FROM_TORCHLIB.__func__(cls, *args, **kwargs)
    fingerprint, cached = _REGISTRIES.get(key, (None, None))
    if cached is None or fingerprint != _built_from():
        cached = _FROM_TORCHLIB.__func__(cls, *args, **kwargs)
        _REGISTRIES[key] = (_built_from(), cached)  # after the build, which fills the tables
    registry = copy.copy(cached)
    registry.functions = {target: list(decomps) for target, decomps in cached.functions.items()}
    return registry


try:  # torch.onnx's private registry; where its shape differs, exports build it each time
    from onnxscript.function_libs.torch_lib import registration as _onnxscript_registration
    from torch.onnx._internal.exporter import _registration
    from torch.onnx._internal.exporter._torchlib import _torchlib_registry

    _REGISTRY_CLASS = _registration.ONNXRegistry
    _FROM_TORCHLIB = _REGISTRY_CLASS.__dict__["from_torchlib"]
    _TORCH_TABLE = _torchlib_registry._registry
    _ONNXSCRIPT_TABLE = _onnxscript_registration.default_registry
    _REUSABLE = (
        isinstance(_FROM_TORCHLIB, classmethod)
        and isinstance(_REGISTRY_CLASS().functions, dict)
        and isinstance(_TORCH_TABLE, list)
        and isinstance(_built_from(), tuple)
    )
except (ImportError, AttributeError, KeyError, TypeError):  # pragma: no cover - other torch versions
    _REUSABLE = False


@contextlib.contextmanager
def _torchlib_registry_reused() -> Iterator[None]:
    """Within one ``torch.onnx.export`` call, hand it a copy of torchlib's registry built once per
    process (a second export of a small GRU: 0.3 s instead of 1.2 s). Left alone when torch's
    registry has another shape or someone else replaced ``from_torchlib``; restored on exit."""
    if not _REUSABLE or _REGISTRY_CLASS.__dict__.get("from_torchlib") is not _FROM_TORCHLIB:
        yield
        return
    _REGISTRY_CLASS.from_torchlib = classmethod(_fresh_registry)
    try:
        yield
    finally:
        _REGISTRY_CLASS.from_torchlib = _FROM_TORCHLIB


def first_line(exc: BaseException) -> str:
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



@dataclass(frozen=True)
class Traced:
    """A traced model: its ONNX form with placeholders, the axes the export promised dynamic
    ``(graph input index, input name, axis, dim name)``, and the arguments as traced."""

    model: ir.Model
    promised: list[tuple[int, str, int, str]]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def trace(model: nn.Module, args: tuple[Any, ...], shapes: ShapeOptions, *, opset: int, dynamic_seq: bool) -> Traced:
    """Export ``model`` on ``args`` with each CustomGRU as a placeholder, axes and names by
    ``shapes`` (``dynamic_seq`` may differ from the group's: a streaming export decides it)."""
    grus = find_grus(model)
    input_names = shapes.input_names or getattr(model, "gru_onnx_input_names", None)
    output_names = shapes.output_names or getattr(model, "gru_onnx_output_names", None)
    if isinstance(model, CustomGRU):
        names = [n for n, a in zip(("input", "h0", "lengths"), args, strict=False) if a is not None]
        input_names = input_names or names
        output_names = output_names or ["output", "h_n"]
    dynamic_shapes = shapes.dynamic_shapes
    own = getattr(model, "gru_onnx_dynamic_shapes", None)  # a model that knows its axes (from_keras's)
    if dynamic_shapes is None and (shapes.dynamic_batch or dynamic_seq) and callable(own):
        dynamic_shapes = own(batch=shapes.dynamic_batch, seq=dynamic_seq)
    elif dynamic_shapes is None and (shapes.dynamic_batch or dynamic_seq):
        dynamic_shapes = dynamic_shapes_for(model, args, batch=shapes.dynamic_batch, seq=dynamic_seq)
    call_args, call_kwargs = args, {}
    if isinstance(model, CustomGRU):
        # By keyword, so that a None h0 before lengths does not shift the inputs.
        call_args, call_kwargs = (), {n: a for n, a in zip(_GRU_ARGS, args, strict=False) if a is not None}
        if isinstance(dynamic_shapes, tuple):
            dynamic_shapes = {n: d for n, d, a in zip(_GRU_ARGS, dynamic_shapes, args, strict=False) if a is not None}
    with export_mode(model, grus):
        program = _torch_export(
            model, call_args, call_kwargs, max(opset, TORCH_MIN_OPSET), input_names, output_names, dynamic_shapes
        )
    ir_model = program.model
    name_io(ir_model.graph, program, model, input_names, output_names)
    promised = promised_axes(model, call_args, call_kwargs, dynamic_shapes)
    verify_dynamic_axes(ir_model.graph, promised)
    return Traced(ir_model, promised, call_args, call_kwargs)
