"""Parity: run an exported file and compare it with its PyTorch source, output by output.

Running and comparing are separate steps: :func:`run_onnxruntime` produces outputs,
:func:`compare` judges one output against its reference, :func:`check_parity` ties them
together into a :class:`ParityReport` a person can read and CI can gate on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from gru_onnx.errors import GruOnnxUsageError

#: Default tolerances per dtype: |onnx - torch| <= atol + rtol * |torch| elementwise.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-5, 1e-4),
    "float64": (1e-10, 1e-8),
    "float16": (2e-3, 2e-2),
    "bfloat16": (2e-2, 5e-2),
}

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


@dataclass(frozen=True)
class OutputComparison:
    """How one output of one runtime compares with the PyTorch reference."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    max_rel: float
    worst_index: tuple[int, ...]
    mismatches: int
    passed: bool


@dataclass(frozen=True)
class RuntimeResult:
    """The comparison for one runtime: passed, failed, or skipped with a reason."""

    runtime: str
    status: str  # "passed" | "failed" | "skipped"
    outputs: tuple[OutputComparison, ...] = ()
    reason: str = ""


@dataclass
class ParityReport:
    """Per runtime and output errors of an exported file against its PyTorch source."""

    results: list[RuntimeResult]
    atol: float
    rtol: float
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when at least one runtime ran and none failed (skipped ones do not count)."""
        ran = [r for r in self.results if r.status != "skipped"]
        return bool(ran) and all(r.status == "passed" for r in ran)

    @property
    def max_abs(self) -> float:
        errors = [o.max_abs for r in self.results for o in r.outputs]
        return max(errors) if errors else float("nan")

    def summary(self) -> str:
        """A few plain lines: one per runtime and output."""
        lines = []
        for r in self.results:
            if r.status == "skipped":
                lines.append(f"{r.runtime}: skipped ({r.reason})")
                continue
            for o in r.outputs:
                verdict = "ok" if o.passed else f"FAIL ({o.mismatches} elements, worst at {o.worst_index})"
                lines.append(f"{r.runtime} {o.name}: max abs {o.max_abs:.3g}, max rel {o.max_rel:.3g} {verdict}")
        return "\n".join(lines)


def compare(name: str, reference: np.ndarray, actual: np.ndarray, atol: float, rtol: float) -> OutputComparison:
    """Compare ``actual`` with ``reference`` elementwise: ``|a - r| <= atol + rtol * |r|``.

    NaN or infinity at the same position on both sides (same sign) counts as equal; anywhere
    else it is a mismatch with infinite error.
    """
    if reference.shape != actual.shape:
        raise GruOnnxUsageError(f"output {name!r}: shape {actual.shape} from ONNX, {reference.shape} from PyTorch")
    ref = reference.astype(np.float64)
    act = actual.astype(np.float64)
    same_special = (np.isnan(ref) & np.isnan(act)) | (np.isinf(ref) & (ref == act))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same_special, 0.0, np.abs(act - ref))
    diff = np.where(np.isnan(diff), np.inf, diff)
    finite_ref = np.where(np.isfinite(ref), np.abs(ref), 0.0)
    allowed = atol + rtol * finite_ref
    bad = diff > allowed
    rel = diff / np.maximum(finite_ref, np.finfo(np.float64).tiny)
    rel = np.where(diff == 0, 0.0, rel)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    return OutputComparison(
        name=name,
        shape=tuple(reference.shape),
        max_abs=float(diff.max()) if diff.size else 0.0,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        max_rel=float(rel.max()) if rel.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        mismatches=int(bad.sum()),
        passed=not bool(bad.any()),
    )


def flatten_tensors(value: Any) -> list[torch.Tensor]:
    """Tensors of a (nested) tuple/list/dict of outputs or inputs, in order; None is dropped."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in flatten_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten_tensors(v)]
    return []


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def run_onnxruntime(
    path: str | os.PathLike[str], feeds: dict[str, np.ndarray], provider: str = "cpu"
) -> list[np.ndarray]:
    """Run the file on ONNX Runtime with one execution provider and return its outputs."""
    import onnxruntime as ort

    wanted = PROVIDERS[provider]
    if wanted not in ort.get_available_providers():
        raise RuntimeError(f"{wanted} is not available in this onnxruntime build")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(os.fspath(path), options, providers=[wanted])
    if session.get_providers()[0] != wanted:
        raise RuntimeError(f"{wanted} could not be initialised (ONNX Runtime fell back to CPU)")
    return session.run(None, feeds)


def onnx_input_names(path: str | os.PathLike[str]) -> list[str]:
    import onnx

    model = onnx.load(os.fspath(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def onnx_output_names(path: str | os.PathLike[str]) -> list[str]:
    import onnx

    return [o.name for o in onnx.load(os.fspath(path), load_external_data=False).graph.output]


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike[str],
    args: Sequence[Any] | Any,
    *,
    providers: Iterable[str] = ("cpu",),
    atol: float | None = None,
    rtol: float | None = None,
) -> ParityReport:
    """Run ``onnx_path`` on ONNX Runtime and compare with ``model`` (eval mode) on ``args``."""
    args = tuple(args) if isinstance(args, list | tuple) else (args,)
    tensors = flatten_tensors(args)
    names = onnx_input_names(onnx_path)
    if len(names) != len(tensors):
        raise GruOnnxUsageError(
            f"the ONNX file takes {len(names)} inputs ({', '.join(names)}) but {len(tensors)} tensors were given"
        )
    feeds = {n: _to_numpy(t) for n, t in zip(names, tensors, strict=True)}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reference = [_to_numpy(t) for t in flatten_tensors(model(*args))]
    finally:
        model.train(was_training)
    dtype = str(reference[0].dtype) if reference else "float32"
    default_atol, default_rtol = DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"])
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    out_names = onnx_output_names(onnx_path)
    results = []
    for provider in providers:
        if provider not in PROVIDERS:
            raise GruOnnxUsageError(f"unknown provider {provider!r}; valid: {', '.join(PROVIDERS)}")
        runtime = f"onnxruntime-{provider}"
        try:
            outputs = run_onnxruntime(onnx_path, feeds, provider)
        except RuntimeError as exc:
            results.append(RuntimeResult(runtime, "skipped", reason=str(exc)))
            continue
        if len(outputs) != len(reference):
            raise GruOnnxUsageError(f"the ONNX file has {len(outputs)} outputs, the PyTorch model {len(reference)}")
        comparisons = tuple(
            compare(name, ref, out, atol, rtol) for name, ref, out in zip(out_names, reference, outputs, strict=True)
        )
        status = "passed" if all(c.passed for c in comparisons) else "failed"
        results.append(RuntimeResult(runtime, status, comparisons))
    return ParityReport(results=results, atol=atol, rtol=rtol, inputs=feeds)
