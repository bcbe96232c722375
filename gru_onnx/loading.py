"""Loading what users point gru-onnx at: a checkpoint (a ``torch.save``-d state_dict) into a module,
strictly, and their own Python modules (model factories, custom Keras classes); one-line errors."""

from __future__ import annotations

import importlib
import os
import pickle
import re
import sys
from typing import Any

import torch
from torch import nn

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import regular_file


def load_checkpoint(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a ``torch.save``-d state_dict into ``module`` strictly, with one-line errors.

    Read with ``weights_only=True``; a dict with a ``state_dict`` entry is unwrapped. A
    missing, unexpected or mis-shaped parameter is named in the error with both shapes.
    """
    if not os.path.lexists(path):
        raise GruOnnxUsageError(f"checkpoint not found: {path}")
    regular_file(path, "checkpoint")
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GruOnnxUsageError(f"checkpoint not found: {path}") from None
    except pickle.UnpicklingError as exc:
        blocked = re.search(r"unsupported GLOBAL (\S+) whose module (\S+) is blocked", str(exc), re.IGNORECASE)
        if blocked:  # torch refused a call the pickle would make: code, not weights
            raise GruOnnxUsageError(
                f"checkpoint {path} holds code (a pickled call of {blocked.group(1)}) and was refused: a "
                "checkpoint must hold tensors only"
            ) from None
        if "unsupported global" in str(exc).lower():
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


def import_user_module(name: str, flag: str) -> Any:
    """Import the user's module ``name`` (the current directory first on the path); one-line errors."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, SyntaxError, or anything the module raises
        raise GruOnnxUsageError(f"{flag}: cannot import {name!r}: {type(exc).__name__}: {exc}") from None
