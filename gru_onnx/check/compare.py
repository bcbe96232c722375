"""Comparing outputs: one output of one runtime against the reference, over all samples.

An element passes when ``|onnx - torch| <= atol * s + rtol * |torch|`` where ``s`` is the
sample's input magnitude (RMS of its floating inputs, at least 1). NaN or infinity at the
same place on both sides (same sign) is equal; anywhere else it fails, with its position.
Outputs with a time axis also get their error per time step: recurrent error grows with time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.quantization import INT8_TOLERANCES

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



def tolerances(
    metadata: Mapping[str, Any] | None, dtype: str, reference_kind: str, atol: float | None, rtol: float | None
) -> tuple[float, float, str]:
    """``(atol, rtol, reference description)``: the given tolerances, else the defaults for the
    dtype, or for an int8 file those measured for int8 (:mod:`gru_onnx.quantization`)."""
    default_atol, default_rtol = DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"])
    quantization = (metadata or {}).get("quantization")
    if quantization:  # int8 against float: tolerances measured for int8
        default_atol, default_rtol = INT8_TOLERANCES[quantization["mode"]]
        weights_read = "dequantized int8 weights" if reference_kind == "metadata" else "float32 source"
        reference_kind += f"; int8 {quantization['mode']} file vs {weights_read}, int8 tolerances"
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol), reference_kind
