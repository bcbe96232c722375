"""Walking the nested structures models take and return (tuples, lists, dicts, NamedTuples of tensors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def flatten_tensors(value: Any) -> list[torch.Tensor]:
    """Tensors of a (nested) tuple/list/dict of outputs or inputs, in order; None is dropped."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in flatten_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten_tensors(v)]
    return []


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``value`` with every tensor replaced by ``fn(tensor)``, in :func:`flatten_tensors` order."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(map_tensors(v, fn) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU copy of ``t`` as NumPy."""
    return t.detach().cpu().numpy()


def as_args(args: Any) -> tuple[Any, ...]:
    """Example arguments as a tuple: a lone tensor (or anything not a list/tuple) becomes ``(args,)``."""
    return tuple(args) if isinstance(args, list | tuple) else (args,)
