"""Loading what users point the CLI at: checkpoints (state_dicts) and model factories."""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gru_onnx.errors import GruOnnxUsageError


def load_checkpoint(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a ``torch.save``-d state_dict into ``module`` strictly, with one-line errors.

    Read with ``weights_only=True``; a dict with a ``state_dict`` entry is unwrapped. A
    missing, unexpected or mis-shaped parameter is named in the error with both shapes.
    """
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GruOnnxUsageError(f"checkpoint not found: {path}") from None
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise GruOnnxUsageError(
                f"checkpoint {path} holds more than tensors (a pickled module?); "
                "save model.state_dict() with torch.save instead"
            ) from None
        raise GruOnnxUsageError(f"cannot read checkpoint {path}: not a torch.save file") from None
    except Exception as exc:
        raise GruOnnxUsageError(
            f"cannot read checkpoint {path}: not a torch.save file ({type(exc).__name__})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GruOnnxUsageError(f"checkpoint {path} is not a state_dict (a dict of tensors)")
    expected = module.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            prefixed = sorted(k for k in state if k.endswith("." + name))
            hint = f"; it has {prefixed[0]!r}: save that submodule's state_dict() instead" if prefixed else ""
            raise GruOnnxUsageError(f"checkpoint {path} has no parameter {name!r} {tuple(tensor.shape)}{hint}")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise GruOnnxUsageError(
                f"checkpoint parameter {name!r} has shape {tuple(state[name].shape)}, "
                f"the model expects {tuple(tensor.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise GruOnnxUsageError(
            f"checkpoint {path} has parameter {extra[0]!r} {tuple(state[extra[0]].shape)} that the model does not have"
        )
    module.load_state_dict(state, strict=True)


def load_factory(spec: str) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """Import ``package.module:factory`` and call it; it returns ``(module, example_args)`` or
    ``(module, example_args, options)``, ``options`` a mapping of ``gru_onnx.export`` keyword
    arguments (``input_names``, ``dynamic_shapes``, ...). Unknown option names are refused.

    The current directory is importable, so a factory in a local file works.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise GruOnnxUsageError(f"--model must look like package.module:factory, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, SyntaxError, or anything the module raises
        raise GruOnnxUsageError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
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
    model, args = result[0], result[1]
    options = dict(result[2]) if len(result) == 3 else {}
    valid = export_options()
    unknown = sorted(str(k) for k in options if k not in valid)
    if unknown:
        raise GruOnnxUsageError(
            f"{spec} returned the unknown export option {unknown[0]!r}; valid: {', '.join(sorted(valid))}"
        )
    args = tuple(args) if isinstance(args, list | tuple) else (args,)
    return model, args, options


def export_options() -> set[str]:
    """The keyword arguments ``gru_onnx.export`` takes (what a factory's options may name)."""
    from gru_onnx._export import export

    return {p.name for p in inspect.signature(export).parameters.values() if p.kind == p.KEYWORD_ONLY}
