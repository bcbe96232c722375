"""Parity: run an exported file on runtimes and compare it with its PyTorch source.

Running and comparing are separate steps: runners (:mod:`gru_onnx.runners`) produce outputs,
:func:`compare` judges one output of one sample against the reference, and
:func:`check_parity` ties them into a :class:`ParityReport`. Rendering (table, JSON, plot)
lives in :mod:`gru_onnx.report`.

An element passes when ``|onnx - torch| <= atol + rtol * |torch|``. NaN or infinity at the
same place on both sides (same sign) is equal; anywhere else it fails, with its position.
Outputs with a time axis also get their error per time step: recurrent error grows with time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.metadata import find_metadata, load_model
from gru_onnx.samples import (
    flatten_tensors,
    generate_samples,
    samples_from_args,
    samples_from_npz,
    to_numpy,
)

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
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when at least one runtime ran and every runtime that ran passed."""
        ran = [r for r in self.results if r.status != "skipped"]
        return bool(ran) and all(r.status == "passed" for r in ran)

    @property
    def max_abs(self) -> float:
        errors = [o.max_abs for r in self.results for o in r.outputs]
        return max(errors) if errors else float("nan")

    def failures(self) -> list[str]:
        """One line per runtime that failed or could not run the file (empty when passed)."""
        lines = []
        for r in self.results:
            if r.status == "error":
                lines.append(f"{r.runtime}: could not run the file: {r.reason}")
            elif r.status == "failed":
                lines.extend(f"{r.runtime}: {o.describe_failure()}" for o in r.outputs if not o.passed)
        if not lines and not self.passed:
            lines.append("no runtime could run the file")
        return lines

    def summary(self) -> str:
        """Plain lines: one per runtime and output, failures spelled out, then warnings."""
        lines = [f"warning: {w}" for w in self.warnings]
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
) -> OutputComparison:
    """Compare one output over all samples; shapes must match sample by sample."""
    errors = []
    for i, (ref, act) in enumerate(zip(references, actuals, strict=True)):
        if ref.shape != act.shape:
            raise GruOnnxUsageError(
                f"output {name!r} (sample {i}): shape {tuple(act.shape)} from ONNX, {tuple(ref.shape)} from PyTorch"
            )
        errors.append(_compare_sample(ref, act, atol, rtol, time_axis))
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


def time_axes(model: onnx.ModelProto, metadata: dict[str, Any] | None) -> list[int | None]:
    """The time axis of each output, where there is one (for the per-step error curve)."""
    outputs = list(model.graph.output)
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


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------


def check_parity(
    model: nn.Module | None,
    onnx_path: str | os.PathLike[str],
    args: Sequence[Any] | Any = None,
    *,
    providers: Iterable[str] = ("cpu",),
    atol: float | None = None,
    rtol: float | None = None,
    samples: int = 1,
    seq_len: int | None = None,
    batch: int | None = None,
    inputs: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> ParityReport:
    """Run ``onnx_path`` on each provider and compare it with its PyTorch source.

    ``model`` is the PyTorch source (eval mode is used); None rebuilds it from the file's
    metadata and initializers (lone-GRU files), or with ``checkpoint`` from the metadata and
    the checkpoint's weights. Inputs are ``args`` (example inputs of the model), else
    ``inputs`` (an ``.npz`` keyed by input name), else ``samples`` seeded random samples.
    ``providers`` are keys of :data:`gru_onnx.runners.RUNNERS` or ``"all"``; one that cannot
    run here is reported as skipped with its reason.
    """
    from gru_onnx.rebuild import reference_from_file
    from gru_onnx.runners import ALL, RUNNERS, RuntimeUnavailable

    proto = load_model(onnx_path)
    metadata = find_metadata(proto)
    stacks = (metadata or {}).get("stacks", [])
    lone_gru = len(stacks) == 1 and stacks[0]["path"] == ""
    reference_kind = "model"
    if model is None:
        if metadata is None:
            raise GruOnnxUsageError(f"{onnx_path} has no gru-onnx metadata; pass --model to check it")
        model = reference_from_file(proto, metadata, checkpoint)
        reference_kind = "checkpoint" if checkpoint is not None else "metadata"
    if args is not None:
        args = tuple(args) if isinstance(args, list | tuple) else (args,)
        sample_list = [samples_from_args(proto, args)]
    elif inputs is not None:
        sample_list = samples_from_npz(proto, inputs, lone_gru)
    elif lone_gru and metadata is not None:
        sample_list = generate_samples(proto, metadata, count=max(samples, 1), seq_len=seq_len, batch=batch, seed=seed)
    else:
        raise GruOnnxUsageError("no inputs for this file: give example args (--model) or --inputs FILE.npz")

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            references = [[to_numpy(t) for t in flatten_tensors(model(*s.args))] for s in sample_list]
    finally:
        model.train(was_training)

    dtype = str(references[0][0].dtype) if references and references[0] else "float32"
    default_atol, default_rtol = DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"])
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    out_names = [o.name for o in proto.graph.output]
    axes = time_axes(proto, metadata)
    warnings = []
    for i, name in enumerate(out_names[: len(references[0])]):
        bad = sum(int((~np.isfinite(r[i])).sum()) for r in references if np.issubdtype(r[i].dtype, np.floating))
        total = sum(r[i].size for r in references)
        if bad:
            warnings.append(
                f"the PyTorch reference has {bad} of {total} non-finite values in {name!r}: "
                "matching NaN/Inf count as equal, but the model itself produces them"
            )
    if len(out_names) != len(references[0]):
        raise GruOnnxUsageError(f"the ONNX file has {len(out_names)} outputs, the PyTorch model {len(references[0])}")

    wanted = list(providers)
    if "all" in wanted:
        wanted = list(ALL)
    results = []
    for key in wanted:
        if key not in RUNNERS:
            raise GruOnnxUsageError(f"unknown provider {key!r}; valid: {', '.join(RUNNERS)}, all")
        runner = RUNNERS[key](Path(onnx_path))
        try:
            runner.open()
        except RuntimeUnavailable as exc:
            results.append(RuntimeResult(runner.name, "skipped", reason=str(exc)))
            continue
        except Exception as exc:  # the runtime cannot load this file: a failure, not a skip
            results.append(RuntimeResult(runner.name, "error", reason=_one_line(exc)))
            continue
        try:
            actuals = [runner.run(s.feeds) for s in sample_list]
        except Exception as exc:
            results.append(RuntimeResult(runner.name, "error", reason=_one_line(exc), notes=tuple(runner.notes)))
            continue
        finally:
            runner.close()
        try:
            comparisons = tuple(
                compare(name, [r[i] for r in references], [a[i] for a in actuals], atol, rtol, axes[i])
                for i, name in enumerate(out_names)
            )
        except GruOnnxUsageError as exc:  # an output of the wrong shape: this runtime fails
            results.append(RuntimeResult(runner.name, "error", reason=str(exc), notes=tuple(runner.notes)))
            continue
        status = "passed" if all(c.passed for c in comparisons) else "failed"
        results.append(RuntimeResult(runner.name, status, comparisons, notes=tuple(runner.notes)))
    return ParityReport(
        results=results,
        atol=atol,
        rtol=rtol,
        file=str(onnx_path),
        dtype=dtype,
        reference=reference_kind,
        samples=[s.describe() for s in sample_list],
        inputs=sample_list[0].feeds,
        warnings=warnings,
    )


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
