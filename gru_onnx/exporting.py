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

from gru_onnx import irversion, lowering, saving, tracing, workarounds
from gru_onnx._version import __version__
from gru_onnx.axes import probe_time_axes
from gru_onnx.check.runs import runtimes
from gru_onnx.compact import compact_names
from gru_onnx.errors import ExportError, GruOnnxUsageError, InternalError
from gru_onnx.exporters import Strategy, get_strategy
from gru_onnx.exporters.native import native_activations
from gru_onnx.metadata import METADATA_KEY, read_metadata
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
from gru_onnx.wiring import record_consumers

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
    run on the written file (None: no check); ``saving`` external data and the IR version;
    ``quantize`` an int8 file.

    A file at ``f`` has always passed its check: the file is written beside ``f`` and checked
    there; it replaces ``f`` only when it passes, else it is written as ``NAME.failed.onnx``
    (``result.path``; ``result.passed`` is False) and ``f`` is left as it was.
    """
    staged = stage_export(
        model, args, f, graph=graph, shapes=shapes, streaming=streaming, check=check, saving=saving, quantize=quantize
    )
    if staged.check is None:
        return staged.finish(passed=True)
    try:
        report = staged.run_check()
    except BaseException:
        staged.discard()
        raise
    return staged.finish(passed=report.passed)


@dataclass
class StagedExport:
    """An export written beside its target and not yet visible there: its candidate file can be
    checked (:meth:`run_check`, or any other check), then :meth:`finish` publishes it over the
    target when it passed, or sets it aside as ``NAME.failed.onnx``."""

    model: nn.Module  # what the check compares with (the model as exported: dtype converted)
    args: tuple[Any, ...]  # the example the check runs
    check: CheckOptions | None  # the check it gets (a streaming file's runs chunk by chunk)
    staged: saving.StagedModel
    result: ExportResult

    @property
    def candidate(self) -> Path:
        """The written file, under a temporary name beside the target."""
        return self.staged.candidate

    def run_check(self) -> ParityReport:
        """The export's parity check on the candidate (``result.parity``)."""
        if self.check is None:
            raise GruOnnxUsageError("this export has no check (check=None)")
        report = check_parity(self.model, self.candidate, self.args, check=self.check)
        report.file = str(self.result.path)
        self.result.parity = report
        return report

    def finish(self, *, passed: bool) -> ExportResult:
        """Publish the file over the target, or set it aside (``result.path``) when it failed."""
        if passed:
            self.staged.publish()
        else:  # a file at the requested path has always passed its check
            self.result.path, self.result.data_path = self.staged.set_aside(failed_path(self.result.path))
        return self.result

    def discard(self) -> None:
        """Remove the candidate: nothing was written."""
        self.staged.discard()


def stage_export(
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
) -> StagedExport:
    """Everything :func:`export` does but the check: the file is written beside ``f``, waiting."""
    ExportOptions(graph, shapes, streaming, check, saving, quantize)  # the rules across groups
    irversion.check_request(saving.ir_version, graph.opset)
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
    plan = plan_streaming(model, args, grus, streaming) if streaming.enabled else None
    int8 = quantize.mode is not None
    ir_model = _lower(model, plan.args if plan else args, plan, strategy, graph, shapes, streaming, int8)
    if quantize.mode is not None:  # quantization works on the protobuf form (a copy of the weights)
        proto = ir.to_proto(ir_model)
        quantize_model(proto, quantize.mode, quantize.per_channel)
        ir_model = ir.from_proto(proto)
    staged, result = _stage(ir_model, path, saving, started)
    return StagedExport(model, args, _streaming_check(check, plan) if check is not None else None, staged, result)


def _lower(
    model: nn.Module,
    args: tuple[Any, ...],
    plan: StreamPlan | None,
    strategy: Strategy,
    graph: GraphOptions,
    shapes: ShapeOptions,
    streaming: StreamingOptions,
    int8: bool = False,
) -> ir.Model:
    """Trace, write every GRU stack with the strategy (states lifted for streaming), describe it;
    ``int8``: quantization follows."""
    dynamic_seq = plan.chunk is None if plan is not None else shapes.dynamic_seq
    traced = tracing.trace(model, args, shapes, opset=graph.opset, dynamic_seq=dynamic_seq)
    ir_model = traced.model
    output_time_axes = _output_time_axes(model, args, traced.promised, [v.name for v in ir_model.graph.outputs])
    lifter = StateLifter(streaming.exclude, plan.batch(shapes.dynamic_batch)) if plan is not None else None
    if lifter is not None:
        lifter.taken.update(v.name for v in (*ir_model.graph.inputs, *ir_model.graph.outputs) if v.name)
    stacks = lowering.replace_placeholders(ir_model, strategy, graph.opset, lifter, graph.target, int8)
    if lifter is not None and not lifter.pairs:
        raise GruOnnxUsageError(
            f"streaming_exclude {list(streaming.exclude)} leaves no CustomGRU call to stream; export without streaming"
        )
    workarounds.apply_all(ir_model.graph)
    metadata: dict[str, Any] = {
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
    return ir_model


def failed_path(path: Path) -> Path:
    """Where a file that failed its check is written: ``NAME.failed.onnx`` beside ``NAME.onnx``."""
    return path.with_name(path.stem + ".failed" + (path.suffix or ".onnx"))


def _streaming_check(check: CheckOptions, plan: StreamPlan | None) -> CheckOptions:
    """A streaming file is checked chunk by chunk."""
    return dataclasses.replace(check, streaming=True) if plan is not None and not check.streaming else check


def _overall_strategy(stacks: list[dict[str, Any]]) -> str:
    used = sorted({stack["strategy"] for stack in stacks})
    return used[0] if len(used) == 1 else "mixed"


def _stage(
    ir_model: ir.Model, path: Path, options: SavingOptions, started: float
) -> tuple[saving.StagedModel, ExportResult]:
    """Write the file beside ``path`` (checked by ONNX's full checker), not yet over it, and
    describe what was written."""
    produced = [v.name for node in ir_model.graph for v in node.outputs if v.name]
    if len(produced) != len(set(produced)):  # pragma: no cover - the checker does not catch this
        raise InternalError("the exported graph assigns a value name twice")
    compact_names(ir_model)  # short node and value names (gru_onnx.compact)
    record_consumers(ir_model)  # which nodes read each weight (gru_onnx.wiring)
    counts: dict[str, int] = {}
    for node in ir_model.graph:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    try:
        staged = saving.stage_model(
            ir_model, path, external_data=options.external_data, ir_version=options.ir_version
        )
    except onnx.shape_inference.InferenceError as exc:  # e.g. an op given a type it does not take
        raise ExportError(f"the exported graph does not type-check: {tracing.first_line(exc)}") from exc
    except onnx.checker.ValidationError as exc:  # pragma: no cover - a bug in a strategy
        raise InternalError(f"the exported graph is not valid ONNX: {tracing.first_line(exc)}") from exc
    metadata = read_metadata(staged.candidate)  # as written: saving stamps the IR version into it
    data_path = staged.data_path
    return staged, ExportResult(
        path=path,
        strategy=metadata["strategy"],
        opset=metadata["opset"],
        num_nodes=len(ir_model.graph),
        file_size=staged.candidate.stat().st_size,
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
