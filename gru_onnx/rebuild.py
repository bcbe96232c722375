"""Rebuild the PyTorch reference of an exported file from the file alone.

The metadata holds each GRU stack's full spec and where its weights are: the ``nn.GRU``
tensors by name (``layout: torch``), or ONNX's ``W``/``R``/``B`` (``layout: onnx_gru``, the
native strategy), which are mapped back to ``nn.GRU``'s layout here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.module import CustomGRU
from gru_onnx.spec import GRUSpec


def _rzn(w: np.ndarray) -> np.ndarray:
    """ONNX gate order (z, r, h) -> PyTorch's (r, z, n), along the first axis."""
    z, r, n = np.split(w, 3)
    return np.concatenate([r, z, n])


def state_dict_from_file(model: onnx.ModelProto, stack: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The ``nn.GRU`` state_dict of one stack, read from the file's initializers."""
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    spec = GRUSpec.from_json(stack["spec"])
    weights = stack["weights"]

    def get(name: str) -> np.ndarray:
        if name not in arrays:
            raise GruOnnxUsageError(f"the metadata names initializer {name!r}, which the file does not have")
        return arrays[name]

    state: dict[str, np.ndarray] = {}
    if weights.get("layout") == "torch":
        # A parameter is one initializer, or a list of row blocks to stack.
        for param, stored in weights["parameters"].items():
            names = [stored] if isinstance(stored, str) else stored
            state[param] = np.concatenate([get(n) for n in names], axis=0)
    elif weights.get("layout") == "onnx_gru":
        hidden = spec.hidden_size
        for layer in range(spec.num_layers):
            names = weights["layers"][f"l{layer}"]
            for direction in range(spec.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                state[f"weight_ih{sfx}"] = _rzn(get(names["W"])[direction])
                state[f"weight_hh{sfx}"] = _rzn(get(names["R"])[direction])
                if spec.bias:
                    bias = get(names["B"])[direction]
                    state[f"bias_ih{sfx}"] = _rzn(bias[: 3 * hidden])
                    state[f"bias_hh{sfx}"] = _rzn(bias[3 * hidden :])
    else:
        raise GruOnnxUsageError(f"unknown weight layout {weights.get('layout')!r} in the metadata")
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


def reference_from_file(
    model: onnx.ModelProto,
    metadata: Mapping[str, Any],
    checkpoint: str | os.PathLike[str] | None = None,
) -> CustomGRU:
    """The CustomGRU an exported file was made from, with the file's (or a checkpoint's) weights.

    Only files holding a lone CustomGRU can be rebuilt: a whole model's other layers are not
    described by the metadata, so such files are checked with their model factory.
    """
    from gru_onnx.loading import load_checkpoint

    stacks = metadata.get("stacks", [])
    if len(stacks) != 1 or stacks[0]["path"] != "":
        where = ", ".join(repr(s["path"]) for s in stacks) or "none"
        raise GruOnnxUsageError(
            f"the file holds a whole model (CustomGRU at {where}); pass --model (or the model) to check it"
        )
    (stack,) = stacks
    module = CustomGRU.from_spec(GRUSpec.from_json(stack["spec"]))
    if checkpoint is not None:
        load_checkpoint(module, checkpoint)
    else:
        module.load_state_dict(state_dict_from_file(model, stack), strict=True)
    return module.to(torch_dtype(metadata.get("dtype", "float32"))).eval()


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a metadata ``dtype`` name (float32 when unknown)."""
    return {"float16": torch.float16, "float64": torch.float64}.get(name, torch.float32)
