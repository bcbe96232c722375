"""``gru_onnx.export``: a model holding CustomGRU layers -> a checked, self-describing ONNX file.

The steps, each in its own module: trace with ``torch.onnx``, each CustomGRU one placeholder
(:mod:`gru_onnx.tracing`); write each placeholder with the chosen strategy, states lifted for a
streaming file (:mod:`gru_onnx.lowering`); describe the stacks in ``metadata_props["gru_onnx"]``
(:mod:`gru_onnx.metadata`); quantize (:mod:`gru_onnx.quantization`); write atomically
(:mod:`gru_onnx.saving`); check against the model (:func:`gru_onnx.check_parity`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnx_ir as ir
from torch import nn

from gru_onnx import lowering, saving, tracing, workarounds
from gru_onnx._version import __version__
from gru_onnx.axes import probe_time_axes
from gru_onnx.check.runs import runtimes
from gru_onnx.compact import compact_names
from gru_onnx.errors import ExportError, GruOnnxUsageError, InternalError
from gru_onnx.exporters import get_strategy
from gru_onnx.exporters.native import native_activations
from gru_onnx.metadata import METADATA_KEY, find_metadata, read_metadata
from gru_onnx.module import CustomGRU
from gru_onnx.options import (
    CheckOptions,
    ExportOptions,
    GraphOptions,
    QuantizeOptions,
    SavingOptions,
    ShapeOptions,
    StreamingOptions,
)
from gru_onnx.parity import ParityReport, check_parity
from gru_onnx.quantization import quantize_model
from gru_onnx.saving import writable_target
from gru_onnx.streaming import StateLifter, StreamPlan
from gru_onnx.streaming import plan as plan_streaming
from gru_onnx.trees import as_args

_GRAPH = GraphOptions()
_SHAPES = ShapeOptions()
_STREAMING = StreamingOptions()
_CHECK = CheckOptions()
_SAVING = SavingOptions()
_QUANTIZE = QuantizeOptions()


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


def export(
    model: nn.Module,
    args: Any,
    f: str | os.PathLike[str],
    *,
    graph: GraphOptions = _GRAPH,
    shapes: ShapeOptions = _SHAPES,
    streaming: StreamingOptions = _STREAMING,
    check: CheckOptions | None = _CHECK,
    saving: SavingOptions = _SAVING,
    quantize: QuantizeOptions = _QUANTIZE,
) -> ExportResult:
    """Export ``model`` (a CustomGRU or any module containing some) to the ONNX file ``f``.

    ``args`` are example inputs (for a CustomGRU: ``input``, then optionally ``h0`` and
    ``lengths``). The option groups (:mod:`gru_onnx.options`) say how: ``graph`` the strategy,
    opset, dtype and target; ``shapes`` the dynamic axes and names; ``streaming`` a file that
    runs chunk by chunk with its states lifted to inputs and outputs; ``check`` the parity check
    run on the written file (None: no check); ``saving`` external data; ``quantize`` an int8
    file. The file is written only once complete.
    """
    ExportOptions(graph, shapes, streaming, check, saving, quantize)  # the rules across groups
    if check is not None:  # a runtime asked for by name must be usable here, before the work
        runtimes(check.providers, skip_unavailable=check.skip_unavailable)
    started = time.perf_counter()
    path = writable_target(f)
    strategy = get_strategy(graph.strategy)
    args = as_args(args)
    if graph.dtype is not None:
        model, args = tracing.convert_dtype(model, args, graph.dtype)
    grus = tracing.find_grus(model)
    if not grus:
        raise GruOnnxUsageError(f"{type(model).__name__} contains no CustomGRU layer to export")
    if strategy.name == "native":  # refuse before the export's work, naming the activation
        for _, gru in grus:
            native_activations(gru.spec)
    check_args = args
    plan = plan_streaming(model, args, grus, streaming) if streaming.enabled else None
    dynamic_seq = shapes.dynamic_seq
    if plan is not None:
        args, dynamic_seq = plan.args, plan.chunk is None
    traced = tracing.trace(model, args, shapes, opset=graph.opset, dynamic_seq=dynamic_seq)
    ir_model = traced.model
    output_time_axes = _output_time_axes(model, args, traced.promised, [v.name for v in ir_model.graph.outputs])
    lifter = StateLifter(streaming.exclude) if plan is not None else None
    if lifter is not None:
        lifter.taken.update(v.name for v in (*ir_model.graph.inputs, *ir_model.graph.outputs) if v.name)
    stacks = lowering.replace_placeholders(ir_model, strategy, graph.opset, lifter, graph.target)
    if lifter is not None and not lifter.pairs:
        raise GruOnnxUsageError(
            f"streaming_exclude {list(streaming.exclude)} leaves no CustomGRU call to stream; export without streaming"
        )
    workarounds.apply_all(ir_model.graph)
    metadata = {
        "producer": "gru-onnx",
        "version": __version__,
        "strategy": _overall_strategy(stacks),
        "requested_strategy": strategy.name,
        "target": graph.target,
        "opset": graph.opset,
        "dtype": tracing.float_dtype(model),
        "dynamic_seq": any(stack["seq_len"] is None for stack in stacks),
        "dynamic_batch": any(not dim.startswith("seq") for *_, dim in traced.promised),
        "stacks": stacks,
    }
    if output_time_axes is not None:
        metadata["time_axes"] = output_time_axes
    if plan is not None and lifter is not None:
        metadata["streaming"] = lifter.metadata()
        metadata["chunk"] = plan.chunk
        metadata["input_time_axes"] = plan.input_axes_by_name(ir_model.graph, lifter)
    ir_model.metadata_props[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    if graph.opset != ir_model.opset_imports[""]:
        lowering.relabel_opset(ir_model, graph.opset)
    if quantize.mode is not None:  # quantization works on the protobuf form (a copy of the weights)
        proto = ir.to_proto(ir_model)
        quantize_model(proto, quantize.mode, quantize.per_channel)
        metadata = find_metadata(proto) or metadata
        ir_model = ir.from_proto(proto)
    result = _save(ir_model, path, saving, metadata, started)
    if check is not None:
        result.parity = check_parity(model, path, check_args, check=_streaming_check(check, plan))
    return result


def _streaming_check(check: CheckOptions, plan: StreamPlan | None) -> CheckOptions:
    """A streaming file is checked chunk by chunk."""
    return dataclasses.replace(check, streaming=True) if plan is not None and not check.streaming else check


def _overall_strategy(stacks: list[dict[str, Any]]) -> str:
    used = sorted({stack["strategy"] for stack in stacks})
    return used[0] if len(used) == 1 else "mixed"


def _save(
    ir_model: ir.Model, path: Path, options: SavingOptions, metadata: dict[str, Any], started: float
) -> ExportResult:
    """Write the file (checked by ONNX's full checker) and describe what was written."""
    produced = [v.name for node in ir_model.graph for v in node.outputs if v.name]
    if len(produced) != len(set(produced)):  # pragma: no cover - the checker does not catch this
        raise InternalError("the exported graph assigns a value name twice")
    compact_names(ir_model)  # short node and value names (gru_onnx.compact)
    counts: dict[str, int] = {}
    for node in ir_model.graph:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    try:
        data_path = saving.save_model(
            ir_model, path, external_data=options.external_data, ir_version=options.ir_version
        )
    except onnx.shape_inference.InferenceError as exc:  # e.g. an op given a type it does not take
        raise ExportError(f"the exported graph does not type-check: {tracing.first_line(exc)}") from exc
    except onnx.checker.ValidationError as exc:  # pragma: no cover - a bug in a strategy
        raise InternalError(f"the exported graph is not valid ONNX: {tracing.first_line(exc)}") from exc
    metadata = read_metadata(path)  # as written: saving stamps the IR version into it
    return ExportResult(
        path=path,
        strategy=metadata["strategy"],
        opset=metadata["opset"],
        num_nodes=len(ir_model.graph),
        file_size=path.stat().st_size,
        seconds=time.perf_counter() - started,
        metadata=metadata,
        node_counts=counts,
        data_path=data_path,
        data_size=data_path.stat().st_size if data_path is not None else 0,
    )


def _output_time_axes(
    model: nn.Module, args: tuple[Any, ...], promised: list[tuple[int, str, int, str]], outputs: list[str]
) -> dict[str, int | None] | None:
    """Each output's time axis for a whole model (see :mod:`gru_onnx.axes`); a lone CustomGRU's
    layout already says it. The sequence axes the export declared are grown first."""
    if isinstance(model, CustomGRU):
        return None
    names = tracing.arg_names(model, len(args))
    hints = [(names.index(name), axis) for _, name, axis, dim in promised if dim.startswith("seq") and name in names]
    axes = probe_time_axes(model, args, hints)
    if axes is None or len(axes) != len(outputs):
        return None
    return dict(zip(outputs, axes, strict=True))
