"""Checking a file against the Keras model itself, run by Keras with ``training=False``.

The reference is the Keras model (not only the converted module), at the example's length
and, for a free time axis, shorter ones, so a conversion mistake cannot hide behind a
file that matches the module it was exported from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gru_onnx.check.results import ParityReport
from gru_onnx.keras.backend import import_keras, variable_array
from gru_onnx.metadata import find_metadata, load_model
from gru_onnx.options import CheckOptions
from gru_onnx.parity import check_parity
from gru_onnx.spec import float_type


class KerasReference(nn.Module):
    """A Keras model as a parity reference: called with torch tensors, returns torch tensors.

    The Keras model is held outside the module tree (``eval()`` does not reach it); it is
    always called with ``training=False``.
    """

    def __init__(self, model: Any, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self._keras_model = [model]
        self._dtype = dtype  # the file's: Keras runs in float32, its outputs rounded to this

    def forward(self, *inputs: torch.Tensor) -> Any:
        model = self._keras_model[0]
        inputs = tuple(i.float() if i.is_floating_point() else i for i in inputs)
        out = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        if isinstance(out, dict):
            out = [out[k] for k in model.output_names] if hasattr(model, "output_names") else list(out.values())
        if isinstance(out, list | tuple):
            return tuple(self._cast(torch.as_tensor(np.asarray(variable_array(o)))) for o in out)
        return self._cast(torch.as_tensor(variable_array(out)))

    def _cast(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self._dtype) if tensor.is_floating_point() else tensor


def keras_lengths(first: int, count: int, dynamic: bool) -> list[int]:
    """Sequence lengths to compare at: the example's, then (dynamic files) 1 and ones between."""
    if not dynamic:
        return [first] * count
    return list(dict.fromkeys([first, 1, max(1, first // 2), max(1, first // 3)]))[: max(count, 2 if first > 1 else 1)]


def keras_parity(
    keras_model: Any,
    module: Any,
    path: str | os.PathLike[str],
    lengths: Sequence[int],
    *,
    batch: int,
    seed: int,
    check: CheckOptions,
) -> list[tuple[int, ParityReport]]:
    """Run ``path`` and the Keras model on the same seeded inputs, one report per length; ``check``
    says how (runtimes, tolerances, scales, streaming plans) as for any check."""
    # a float16 file takes float16 inputs: the same values, rounded, go to Keras (in float32)
    dtype = float_type((find_metadata(load_model(path, weights="none")) or {}).get("dtype", "float32")).torch
    reference = KerasReference(keras_model, dtype)
    reports = []
    for i, length in enumerate(lengths):
        args = module.example_inputs(batch=batch, seq_len=length, seed=seed + i)
        args = tuple(a.to(dtype) if a.is_floating_point() else a for a in args)
        options = dataclasses.replace(check, seq_len=None, batch=None, inputs=None)
        report = check_parity(reference, path, args, check=options)
        report.reference = "keras"
        reports.append((int(args[0].shape[1]) if args[0].dim() > 1 else length, report))
    return reports


def print_keras_reports(
    echo: Callable[[str], Any], path: str | os.PathLike[str], reports: list[tuple[int, ParityReport]]
) -> bool:
    """Print the comparison with Keras; return whether every length passed."""
    keras = import_keras()
    first = reports[0][1]
    echo(
        f"{Path(path).name} vs Keras (the Keras model itself, keras {keras.__version__}, torch backend), "
        f"{first.rule().replace('torch', 'keras')}"
    )
    passed = True
    for length, report in reports:
        for line in report.summary().splitlines():
            echo(f"keras T={length:<4} {line}")
        passed = passed and report.passed
    echo(f"result    {'PASS' if passed else 'FAIL'} against Keras")
    return passed
