"""Which axis of each output of a whole model is its time axis, found by running the model.

A lone CustomGRU's layout says where time is; a whole model's does not (its outputs may be
pooled, transposed or framed). The parity report needs the time axis for its per-step error
and first failing step, also when the file's sequence length is static. So, at export, the
eager model runs once more with the inputs' time axis one step longer: an output axis that
grows by one is that output's time axis; an output that does not grow has none (a pooled
output, a final state). The result is stored in the file's metadata (``time_axes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gru_onnx.trees import flatten_tensors


def _longer(t: torch.Tensor, axis: int) -> torch.Tensor:
    """``t`` with its last frame along ``axis`` repeated once (a valid input one step longer)."""
    return torch.cat([t, t.narrow(axis, t.shape[axis] - 1, 1)], dim=axis)


def _candidates(args: Sequence[Any], hints: Sequence[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Groups of ``(argument index, axis)`` to grow together, most likely first.

    ``hints`` (sequence axes the export was told about) come first; otherwise axis 1 of every
    tensor input of rank 2 or more, grouped by its length (inputs of one sequence share it),
    largest group first.
    """
    groups: list[list[tuple[int, int]]] = []
    if hints:
        groups.append(list(hints))
    by_length: dict[int, list[tuple[int, int]]] = {}
    for i, arg in enumerate(args):
        if isinstance(arg, torch.Tensor) and arg.dim() >= 2 and arg.shape[1] >= 1:
            by_length.setdefault(int(arg.shape[1]), []).append((i, 1))
    groups.extend(sorted(by_length.values(), key=len, reverse=True))
    return groups


def probe_time_axes(
    model: nn.Module, args: Sequence[Any], hints: Sequence[tuple[int, int]] = ()
) -> list[int | None] | None:
    """The time axis of each flattened output of ``model(*args)``, or None when no input axis
    could be grown (the report then falls back to axes named ``seq`` in the file)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            base = [t.shape for t in flatten_tensors(model(*args))]
            for group in _candidates(args, hints):
                grown = list(args)
                for index, axis in group:
                    grown[index] = _longer(grown[index], axis)
                try:
                    shapes = [t.shape for t in flatten_tensors(model(*grown))]
                except Exception:  # this group was not the time axis (shapes clash)
                    continue
                if len(shapes) != len(base):
                    continue
                axes = [_grown_axis(b, s) for b, s in zip(base, shapes, strict=True)]
                if any(a is not None for a in axes):
                    return axes
    finally:
        model.train(was_training)
    return None


def _grown_axis(before: torch.Size, after: torch.Size) -> int | None:
    """The one axis that grew by one step, else None."""
    if len(before) != len(after):
        return None
    grown = [a for a, (b, c) in enumerate(zip(before, after, strict=True)) if c == b + 1]
    same = all(b == c for a, (b, c) in enumerate(zip(before, after, strict=True)) if a not in grown)
    return grown[0] if len(grown) == 1 and same else None
