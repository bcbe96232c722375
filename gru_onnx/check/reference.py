"""The reference side of a check: the PyTorch source (given, or rebuilt from the file) and its outputs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.rebuild import reference_from_file
from gru_onnx.samples import Sample
from gru_onnx.trees import flatten_tensors, to_numpy


def source(
    model: nn.Module | None,
    proto: onnx.ModelProto,
    metadata: Mapping[str, Any] | None,
    checkpoint: str | os.PathLike[str] | None,
) -> tuple[nn.Module, str]:
    """The PyTorch source and what it is: the given model, or one rebuilt from the file."""
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


def drop_overflowing(
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

