"""Parity: run an exported file on runtimes and compare it with its PyTorch source.

Running and comparing are separate steps: runners (:mod:`gru_onnx.runners`) produce outputs,
:func:`compare` judges one output of one sample against the reference, and
:func:`check_parity` ties them into a :class:`ParityReport`. Rendering (table, JSON, plot)
lives in :mod:`gru_onnx.report`.

An element passes when ``|onnx - torch| <= atol * s + rtol * |torch|`` where ``s`` is the
sample's input magnitude (RMS of its floating inputs, at least 1). NaN or infinity at the
same place on both sides (same sign) is equal; anywhere else it fails, with its position.
Outputs with a time axis also get their error per time step: recurrent error grows with time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.metadata import find_metadata, load_model
from gru_onnx.samples import Sample, flatten_tensors, plan_samples, time_axes, to_numpy
from gru_onnx.weights import WeightMismatch

#: Default (atol, rtol) per dtype.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-5, 1e-4),
    "float64": (1e-10, 1e-8),
    "float16": (2e-3, 2e-2),
}


@dataclass(frozen=True)
class OutputComparison:
    """How one output of one runtime compares with the PyTorch reference, over all samples."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    max_rel: float
    worst_index: tuple[int, ...]
    worst_sample: int
    mismatches: int
    passed: bool
    time_axis: int | None = None
    per_step_max_abs: tuple[float, ...] | None = None
    first_failing_step: int | None = None
    nan_mismatch: tuple[int, ...] | None = None

    def describe_failure(self) -> str:
        """One line naming the output, the worst element and the time step where it goes wrong."""
        if self.passed:
            return f"{self.name}: ok"
        parts = [f"output {self.name!r}: {self.mismatches} element(s) out of tolerance"]
        if self.nan_mismatch is not None:
            parts.append(f"NaN/Inf mismatch at {list(self.nan_mismatch)}")
        parts.append(f"worst {self.max_abs:.3g} at {list(self.worst_index)} (sample {self.worst_sample})")
        if self.first_failing_step is not None:
            parts.append(f"first failing time step {self.first_failing_step}")
        return ", ".join(parts)


@dataclass(frozen=True)
class RuntimeResult:
    """One runtime's verdict: passed, failed, error (could not run the file) or skipped."""

    runtime: str
    status: str
    outputs: tuple[OutputComparison, ...] = ()
    reason: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class ParityReport:
    """Per runtime and output errors of an exported file against its PyTorch source."""

    results: list[RuntimeResult]
    atol: float
    rtol: float
    file: str = ""
    dtype: str = "float32"
    reference: str = "model"
    samples: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    weights: list[WeightCheck] = field(default_factory=list)
    #: A line that explains the failure's likely cause (given with the failures, only then).
    hint: str = ""

    @property
    def passed(self) -> bool:
        """True when at least one runtime ran, every runtime that ran passed, and the stored
        weights match the source's (when there was a source to compare with)."""
        ran = [r for r in self.results if r.status != "skipped"]
        return bool(ran) and all(r.status == "passed" for r in ran) and all(w.passed for w in self.weights)

    @property
    def max_abs(self) -> float:
        errors = [o.max_abs for r in self.results for o in r.outputs]
        return max(errors) if errors else float("nan")

    def failures(self) -> list[str]:
        """One line per runtime that failed or could not run the file (empty when passed)."""
        lines = [w.describe_failure() for w in self.weights if not w.passed]
        for r in self.results:
            if r.status == "error":
                lines.append(f"{r.runtime}: could not run the file: {r.reason}")
            elif r.status == "failed":
                lines.extend(f"{r.runtime}: {o.describe_failure()}" for o in r.outputs if not o.passed)
        if not lines and not self.passed:
            lines.append("no runtime could run the file")
        if lines and self.hint:
            lines.append(self.hint)
        return lines

    def summary(self) -> str:
        """Plain lines: one per runtime and output, failures spelled out, then warnings."""
        lines = [f"warning: {w}" for w in self.warnings]
        lines += [w.describe_failure() if not w.passed else f"weights of {w.stack or 'the GRU'}: match the source"
                  for w in self.weights]  # fmt: skip
        for r in self.results:
            if r.status in ("skipped", "error"):
                lines.append(f"{r.runtime}: {r.status} ({r.reason})")
                continue
            for o in r.outputs:
                verdict = "ok" if o.passed else "FAIL: " + o.describe_failure()
                lines.append(f"{r.runtime} {o.name}: max abs {o.max_abs:.3g}, max rel {o.max_rel:.3g} {verdict}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _SampleError:
    max_abs: float
    sum_abs: float
    size: int
    max_rel: float
    worst_index: tuple[int, ...]
    mismatches: int
    per_step: np.ndarray | None
    first_failing_step: int | None
    nan_mismatch: tuple[int, ...] | None


def _compare_sample(
    reference: np.ndarray, actual: np.ndarray, atol: float, rtol: float, time_axis: int | None
) -> _SampleError:
    ref = reference.astype(np.float64)
    act = actual.astype(np.float64)
    special_equal = (np.isnan(ref) & np.isnan(act)) | (np.isinf(ref) & (ref == act))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(special_equal, 0.0, np.abs(act - ref))
    nan_like = np.isnan(diff)
    diff = np.where(nan_like, np.inf, diff)
    finite_ref = np.where(np.isfinite(ref), np.abs(ref), 0.0)
    bad = diff > atol + rtol * finite_ref
    # Relative to |ref|, floored at atol so that near-zero references do not give 1e300.
    floor = atol if atol > 0 else np.finfo(np.float64).tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.maximum(finite_ref, floor))
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    nan_mismatch = None
    unequal_special = (~special_equal) & (np.isnan(ref) | np.isnan(act) | np.isinf(ref) | np.isinf(act))
    if unequal_special.any():
        nan_mismatch = tuple(int(i) for i in np.argwhere(unequal_special)[0])
    per_step = first_failing = None
    if time_axis is not None and diff.ndim > time_axis and diff.size:
        other = tuple(a for a in range(diff.ndim) if a != time_axis)
        per_step = diff.max(axis=other) if other else diff
        failing_steps = np.flatnonzero(bad.any(axis=other) if other else bad)
        first_failing = int(failing_steps[0]) if failing_steps.size else None
    return _SampleError(
        max_abs=float(diff.max()) if diff.size else 0.0,
        sum_abs=float(np.where(np.isinf(diff), 0.0, diff).sum()),
        size=int(diff.size),
        max_rel=float(rel.max()) if rel.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        mismatches=int(bad.sum()),
        per_step=per_step,
        first_failing_step=first_failing,
        nan_mismatch=nan_mismatch,
    )


def compare(
    name: str,
    references: Sequence[np.ndarray],
    actuals: Sequence[np.ndarray],
    atol: float,
    rtol: float,
    time_axis: int | None = None,
    scales: Sequence[float] | None = None,
) -> OutputComparison:
    """Compare one output over all samples; shapes must match sample by sample.

    ``scales`` are the samples' input magnitudes (RMS of their floating inputs, at least 1): a
    sample of magnitude ``s`` is allowed ``atol * s`` (rounding grows with the magnitudes
    computed; ``rtol`` covers large output values already).
    """
    errors = []
    for i, (ref, act) in enumerate(zip(references, actuals, strict=True)):
        if ref.shape != act.shape:
            raise GruOnnxUsageError(
                f"output {name!r} (sample {i}): shape {tuple(act.shape)} from ONNX, {tuple(ref.shape)} from PyTorch"
            )
        scale = max(scales[i], 1.0) if scales else 1.0
        errors.append(_compare_sample(ref, act, atol * scale, rtol, time_axis))
    worst_sample = max(range(len(errors)), key=lambda i: errors[i].max_abs)
    per_step = None
    curves = [e.per_step for e in errors if e.per_step is not None]
    if curves:
        longest = max(len(c) for c in curves)
        padded = np.full((len(curves), longest), -np.inf)
        for i, curve in enumerate(curves):
            padded[i, : len(curve)] = curve
        per_step = tuple(float(v) for v in padded.max(axis=0))
    failing = [e.first_failing_step for e in errors if e.first_failing_step is not None]
    nans = [e.nan_mismatch for e in errors if e.nan_mismatch is not None]
    total = sum(e.size for e in errors)
    return OutputComparison(
        name=name,
        shape=tuple(references[0].shape),
        max_abs=errors[worst_sample].max_abs,
        mean_abs=sum(e.sum_abs for e in errors) / total if total else 0.0,
        max_rel=max(e.max_rel for e in errors),
        worst_index=errors[worst_sample].worst_index,
        worst_sample=worst_sample,
        mismatches=sum(e.mismatches for e in errors),
        passed=all(e.mismatches == 0 for e in errors),
        time_axis=time_axis,
        per_step_max_abs=per_step,
        first_failing_step=min(failing) if failing else None,
        nan_mismatch=nans[0] if nans else None,
    )


# --------------------------------------------------------------------------------------------
# The check, in stages: source, samples, reference outputs, weights, runtimes, comparison
# --------------------------------------------------------------------------------------------


def check_parity(
    model: nn.Module | None,
    onnx_path: str | os.PathLike[str],
    args: Sequence[Any] | Any = None,
    *,
    providers: Iterable[str] = ("cpu",),
    atol: float | None = None,
    rtol: float | None = None,
    samples: int = 3,
    seq_len: int | None = None,
    batch: int | None = None,
    inputs: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int = 0,
    scales: Sequence[float] | None = None,
    streaming: bool | Sequence[int] = False,
) -> ParityReport:
    """Run ``onnx_path`` on each provider and compare it with its PyTorch source.

    ``model`` is the PyTorch source (eval mode is used); None rebuilds it from the file's
    metadata and initializers (lone-GRU files), or with ``checkpoint`` from the metadata and
    the checkpoint's weights. Inputs are ``inputs`` (an ``.npz`` keyed by input name), else
    ``args`` (example inputs) and ``samples - 1`` variations of them (dynamic axes grown,
    floating inputs scaled), else ``samples`` seeded random samples. ``scales`` are the input
    magnitudes cycled through (default per dtype, see :data:`gru_onnx.samples.DEFAULT_SCALES`).
    With a source (``model`` or ``checkpoint``) the file's GRU weights are compared with it too.
    ``providers`` are keys of :data:`gru_onnx.runners.RUNNERS` or ``"all"``; one that cannot
    run here is reported as skipped with its reason.

    ``streaming`` (a streaming file): run the file chunk by chunk, carrying its states, and
    compare with PyTorch on the whole sequence; True for the default chunk plans (whole, 1, an
    uneven split; a fixed-chunk file: its chunks), or the chunk sizes to try
    (:mod:`gru_onnx.streaming_parity`). A streaming file is always checked this way.
    """
    proto = load_model(onnx_path)
    metadata = find_metadata(proto)
    if streaming is False and (metadata or {}).get("streaming"):
        streaming = True
    if streaming is not False:
        from gru_onnx.streaming_parity import check_streaming

        return check_streaming(
            model, onnx_path, None if args is None else (tuple(args) if isinstance(args, list | tuple) else (args,)),
            chunks=None if streaming is True else [int(c) for c in streaming], providers=providers, atol=atol,
            rtol=rtol, samples=samples, seq_len=seq_len, batch=batch, inputs=inputs, checkpoint=checkpoint,
            seed=seed, scales=scales,
        )  # fmt: skip
    source, reference_kind = _source(model, proto, metadata, checkpoint)
    if args is not None:
        args = tuple(args) if isinstance(args, list | tuple) else (args,)
    sample_list = plan_samples(
        proto, metadata, args=args, inputs=inputs, count=samples, seq_len=seq_len, batch=batch, seed=seed,
        scales=scales,
    )  # fmt: skip
    references = reference_outputs(source, sample_list)
    sample_list, references, dropped = _drop_overflowing(sample_list, references)
    out_names = [o.name for o in proto.graph.output]
    if len(out_names) != len(references[0]):
        raise GruOnnxUsageError(f"the ONNX file has {len(out_names)} outputs, the PyTorch model {len(references[0])}")
    dtype = str(references[0][0].dtype) if references[0] else "float32"
    weights = check_weights(source, proto, metadata) if reference_kind != "metadata" else []
    atol, rtol, reference_kind = tolerances(metadata, dtype, reference_kind, atol, rtol)
    axes = time_axes(proto, metadata)
    results = [
        judge(run, references, out_names, axes, atol, rtol, [s.magnitude for s in sample_list])
        for run in run_on_runtimes(Path(onnx_path), providers, sample_list)
    ]
    return ParityReport(
        results=results,
        atol=atol,
        rtol=rtol,
        file=str(onnx_path),
        dtype=dtype,
        reference=reference_kind,
        samples=[s.describe() for s in sample_list],
        warnings=dropped + reference_warnings(out_names, references),
        weights=weights,
    )


def tolerances(
    metadata: dict[str, Any] | None, dtype: str, reference_kind: str, atol: float | None, rtol: float | None
) -> tuple[float, float, str]:
    """``(atol, rtol, reference description)``: the given tolerances, else the defaults for the
    dtype, or for an int8 file those measured for int8 (:mod:`gru_onnx.quantize`)."""
    default_atol, default_rtol = DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"])
    quantization = (metadata or {}).get("quantization")
    if quantization:  # int8 against float: tolerances measured for int8 (gru_onnx.quantize)
        from gru_onnx.quantize import INT8_TOLERANCES

        default_atol, default_rtol = INT8_TOLERANCES[quantization["mode"]]
        weights_read = "dequantized int8 weights" if reference_kind == "metadata" else "float32 source"
        reference_kind += f"; int8 {quantization['mode']} file vs {weights_read}, int8 tolerances"
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol), reference_kind


def _source(
    model: nn.Module | None,
    proto: onnx.ModelProto,
    metadata: dict[str, Any] | None,
    checkpoint: str | os.PathLike[str] | None,
) -> tuple[nn.Module, str]:
    """The PyTorch source and what it is: the given model, or one rebuilt from the file."""
    from gru_onnx.rebuild import reference_from_file

    if model is not None:
        return model, "model"
    if metadata is None:
        raise GruOnnxUsageError("the file has no gru-onnx metadata; pass --model to check it")
    return reference_from_file(proto, metadata, checkpoint), "checkpoint" if checkpoint is not None else "metadata"


def reference_outputs(model: nn.Module, samples: Sequence[Sample]) -> list[list[np.ndarray]]:
    """The PyTorch model's outputs (flattened, as NumPy) for every sample, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [[to_numpy(t) for t in flatten_tensors(model(*s.args))] for s in samples]
    finally:
        model.train(was_training)


def _finite(outputs: Sequence[np.ndarray]) -> bool:
    return all(np.isfinite(o).all() for o in outputs if np.issubdtype(o.dtype, np.floating))


def _drop_overflowing(
    samples: list[Sample], references: list[list[np.ndarray]]
) -> tuple[list[Sample], list[list[np.ndarray]], list[str]]:
    """Leave out scaled samples at which the PyTorch model itself overflows (inf/NaN): a model
    whose state explodes at that magnitude says nothing there about the file. Unit-scale
    samples are always compared (matching NaN/Inf count as equal, with a warning)."""
    keep = [i for i, (s, r) in enumerate(zip(samples, references, strict=True)) if s.scale <= 1.0 or _finite(r)]
    dropped = sorted({samples[i].scale for i in range(len(samples)) if i not in keep})
    if not keep:
        keep = [0]
    warnings = []
    if dropped:
        scales = ", ".join(f"x{v:g}" for v in dropped)
        warnings.append(f"the PyTorch model itself overflows (inf/NaN) at input scale {scales}: not compared there")
    return [samples[i] for i in keep], [references[i] for i in keep], warnings


def reference_warnings(names: Sequence[str], references: Sequence[Sequence[np.ndarray]]) -> list[str]:
    """A reference that itself produces NaN/Inf is worth a warning: matching them proves little."""
    warnings = []
    for i, name in enumerate(names[: len(references[0])]):
        bad = sum(int((~np.isfinite(r[i])).sum()) for r in references if np.issubdtype(r[i].dtype, np.floating))
        if bad:
            total = sum(r[i].size for r in references)
            warnings.append(
                f"the PyTorch reference has {bad} of {total} non-finite values in {name!r}: "
                "matching NaN/Inf count as equal, but the model itself produces them"
            )
    return warnings


@dataclass(frozen=True)
class WeightCheck:
    """The stored weights of one GRU stack against its source's parameters."""

    stack: str
    layout: str
    mismatches: tuple[WeightMismatch, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def describe_failure(self) -> str:
        where = repr(self.stack) if self.stack else "the GRU"
        return f"weights of {where} differ from the source: " + "; ".join(m.describe() for m in self.mismatches)


def check_weights(source: nn.Module, proto: onnx.ModelProto, metadata: dict[str, Any] | None) -> list[WeightCheck]:
    """Compare each GRU stack's stored weights (read by its layout's rule) with the source's
    parameters, so a change too small to move the outputs is still caught."""
    from gru_onnx.quantize import quantization_step
    from gru_onnx.rebuild import state_dict_from_file, stored_names
    from gru_onnx.spec import GRUSpec
    from gru_onnx.weights import compare_weights, get_layout

    checks = []
    for stack in (metadata or {}).get("stacks", []):
        try:
            module = source.get_submodule(stack["path"]) if stack["path"] else source
        except AttributeError:
            continue  # the source is shaped differently (a wrapper): outputs still decide
        state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
        spec = GRUSpec.from_json(stack["spec"])
        if set(spec.all_parameter_names()) - set(state):
            continue
        stored = {k: v.numpy() for k, v in state_dict_from_file(proto, stack).items()}
        dtype = next(iter(stored.values())).dtype
        layout = get_layout(stack["weights"])
        step = quantization_step(proto, set(stored_names(stack["weights"])))  # int8: within half a step
        exact = layout.exact and step == 0.0
        found = compare_weights(spec, stored, state, exact=exact, dtype=dtype, atol=step / 2 * 1.001)
        name = layout.name + (f", int8 {metadata['quantization']['mode']}" if step else "")
        checks.append(WeightCheck(stack["path"], name, tuple(found)))
    return checks


@dataclass(frozen=True)
class RuntimeRun:
    """What one runtime produced for every sample, or why it produced nothing."""

    runtime: str
    status: str  # "ran", "error" or "skipped"
    outputs: list[list[np.ndarray]] = field(default_factory=list)
    reason: str = ""
    notes: tuple[str, ...] = ()


def run_on_runtimes(path: Path, providers: Iterable[str], samples: Sequence[Sample]) -> Iterator[RuntimeRun]:
    """Run every sample on every runtime (``"all"`` expands); no comparison happens here."""
    from gru_onnx.runners import ALL, RUNNERS, RuntimeUnavailable

    wanted = list(providers)
    if "all" in wanted:
        wanted = list(ALL)
    for key in wanted:
        if key not in RUNNERS:
            raise GruOnnxUsageError(f"unknown provider {key!r}; valid: {', '.join(RUNNERS)}, all")
    for key in wanted:
        runner = RUNNERS[key](path)
        try:
            runner.open()
        except RuntimeUnavailable as exc:
            yield RuntimeRun(runner.name, "skipped", reason=str(exc))
            continue
        except Exception as exc:  # the runtime cannot load this file: a failure, not a skip
            yield RuntimeRun(runner.name, "error", reason=_one_line(exc), notes=tuple(runner.notes))
            continue
        try:
            outputs = [runner.run(s.feeds) for s in samples]
        except Exception as exc:
            yield RuntimeRun(runner.name, "error", reason=_one_line(exc), notes=tuple(runner.notes))
            continue
        finally:
            runner.close()
        yield RuntimeRun(runner.name, "ran", outputs, notes=tuple(runner.notes))


def judge(
    run: RuntimeRun,
    references: Sequence[Sequence[np.ndarray]],
    names: Sequence[str],
    axes: Sequence[int | None],
    atol: float,
    rtol: float,
    scales: Sequence[float] | None = None,
) -> RuntimeResult:
    """One runtime's verdict: its outputs compared with the references, output by output."""
    if run.status != "ran":
        return RuntimeResult(run.runtime, run.status, reason=run.reason, notes=run.notes)
    try:
        comparisons = tuple(
            compare(name, [r[i] for r in references], [a[i] for a in run.outputs], atol, rtol, axes[i], scales)
            for i, name in enumerate(names)
        )
    except GruOnnxUsageError as exc:  # an output of the wrong shape: this runtime fails
        return RuntimeResult(run.runtime, "error", reason=str(exc), notes=run.notes)
    status = "passed" if all(c.passed for c in comparisons) else "failed"
    return RuntimeResult(run.runtime, status, comparisons, notes=run.notes)


def _one_line(exc: BaseException) -> str:
    """A runtime's error as one line: its informative lines joined, location banners dropped."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    banner = re.compile(r"^(Exception from |Check '.*' failed at |FrontEnd API failed with)")
    useful = [line for line in lines if not banner.match(line)] or lines or [type(exc).__name__]
    # A runtime's own verdict ("Unsupported ...", "Unknown ...") goes first: the context can be long.
    verdicts = [line for line in useful if re.match(r"^(Unsupported|Unknown|Not supported)", line)]
    useful = verdicts + [line for line in useful if line not in verdicts]
    text = " | ".join(useful)
    return text if len(text) <= 400 else text[:397] + "..."
