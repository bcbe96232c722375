"""``--model PKG.MODULE:FACTORY``: importing the user's model factory and calling it.

The factory returns ``(module, example_args)`` or ``(module, example_args, options)``, where
``options`` is a flat mapping of option fields (``{"strategy": "loop", "input_names": [...]}``;
the names are :data:`gru_onnx.options.FLAT_FIELDS`), mapped onto the option groups in one place
(:func:`gru_onnx.options.groups_from_flat`). The current directory is importable, so a factory in
a local file works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.loading import import_user_module
from gru_onnx.options import FLAT_FIELDS
from gru_onnx.trees import as_args


def load_factory(spec: str) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """Import ``package.module:factory``, call it, and check what it returns (unknown option
    names are refused, naming the valid ones)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise GruOnnxUsageError(f"--model must look like package.module:factory, got {spec!r}")
    module = import_user_module(module_name, "--model")
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise GruOnnxUsageError(f"{module_name!r} has no callable {attr!r}")
    try:
        result = factory()
    except Exception as exc:
        raise GruOnnxUsageError(f"{spec} raised {type(exc).__name__}: {exc}") from None
    shaped = isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[0], nn.Module)
    if not shaped or (len(result) == 3 and not isinstance(result[2], Mapping)):
        raise GruOnnxUsageError(f"{spec} must return (module, example_args) or (module, example_args, options)")
    options = dict(result[2]) if len(result) == 3 else {}
    unknown = sorted(str(k) for k in options if k not in FLAT_FIELDS)
    if unknown:
        raise GruOnnxUsageError(
            f"{spec} returned the unknown export option {unknown[0]!r}; valid: {', '.join(sorted(FLAT_FIELDS))}"
        )
    return result[0], as_args(result[1]), options
