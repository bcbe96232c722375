"""The plain check: every sample through every runtime in one call, compared with the reference.

Both checks (this one and the streaming one, :mod:`gru_onnx.check.streaming`) prepare the
reference side the same way (:func:`prepare`) and build their report with :func:`report`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from torch import nn

from gru_onnx.check.compare import tolerances
from gru_onnx.check.reference import drop_overflowing, reference_outputs, reference_warnings
from gru_onnx.check.results import ParityReport, RuntimeResult, WeightCheck
from gru_onnx.check.runs import judge, run_each, run_samples, runtimes
from gru_onnx.check.weights import check_weights
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.options import CheckOptions
from gru_onnx.samples import Sample, plan_samples, time_axes


@dataclass(frozen=True)
class Prepared:
    """The reference side of a check: the samples kept, the reference outputs, the weight
    comparison, the tolerances and what the reference is."""

    samples: list[Sample]
    references: list[list[np.ndarray]]
    warnings: list[str]
    weights: list[WeightCheck]
    atol: float
    rtol: float
    reference: str
    dtype: str

    @property
    def magnitudes(self) -> list[float]:
        return [s.magnitude for s in self.samples]


def prepare(
    source: nn.Module,
    kind: str,
    proto: onnx.ModelProto,
    metadata: Mapping[str, Any] | None,
    samples: list[Sample],
    out_names: Sequence[str],
    options: CheckOptions,
    *,
    what: str = "outputs",
) -> Prepared:
    """Run the reference on ``samples``, compare the stored weights (when the source is not the
    file itself) and settle the tolerances."""
    references = reference_outputs(source, samples)
    samples, references, dropped = drop_overflowing(samples, references)
    if len(out_names) != len(references[0]):
        raise GruOnnxUsageError(
            f"the ONNX file has {len(out_names)} {what}, the PyTorch model {len(references[0])}"
        )
    dtype = str(references[0][0].dtype) if references[0] else "float32"
    weights = check_weights(source if kind != "metadata" else None, proto, metadata)
    atol, rtol, kind = tolerances(metadata, dtype, kind, options.atol, options.rtol)
    warnings = dropped + reference_warnings(out_names, references)
    return Prepared(samples, references, warnings, weights, atol, rtol, kind, dtype)


def report(path: str | os.PathLike[str], prepared: Prepared, results: list[RuntimeResult]) -> ParityReport:
    """The report of a check from its reference side and its verdicts."""
    return ParityReport(
        results=results,
        atol=prepared.atol,
        rtol=prepared.rtol,
        file=str(path),
        dtype=prepared.dtype,
        reference=prepared.reference,
        samples=[s.describe() for s in prepared.samples],
        warnings=prepared.warnings,
        weights=prepared.weights,
    )


def check_plain(
    source: nn.Module,
    kind: str,
    proto: onnx.ModelProto,
    metadata: Mapping[str, Any] | None,
    path: str | os.PathLike[str],
    args: tuple[Any, ...] | None,
    options: CheckOptions,
) -> ParityReport:
    """Run ``path`` on the runtimes ``options`` names and compare it with ``source``."""
    keys, required = runtimes(options.providers, skip_unavailable=options.skip_unavailable)
    samples = plan_samples(
        proto, metadata, args=args, inputs=options.inputs, count=options.samples, seq_len=options.seq_len,
        batch=options.batch, seed=options.seed, scales=options.scales, allow_nonfinite=options.allow_nonfinite,
        budget=options.memory_budget,
    )  # fmt: skip
    out_names = [o.name for o in proto.graph.output]
    prepared = prepare(source, kind, proto, metadata, samples, out_names, options)
    axes = time_axes(proto, metadata)
    runs = run_each(path, keys, lambda runner: run_samples(runner, prepared.samples), required=required)
    results = [
        judge(run, prepared.references, out_names, axes, prepared.atol, prepared.rtol, prepared.magnitudes)
        for run in runs
    ]
    return report(path, prepared, results)
