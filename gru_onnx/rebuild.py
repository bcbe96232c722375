"""Rebuild the PyTorch reference of an exported file from the file alone.

The metadata holds each GRU stack's full spec and where its weights are; the rule of each
weight layout (:mod:`gru_onnx.weights`) maps them back to ``nn.GRU``'s parameters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.loading import load_checkpoint
from gru_onnx.metadata import stack_spec
from gru_onnx.module import CustomGRU
from gru_onnx.quantization import dequantized_initializers
from gru_onnx.spec import float_type
from gru_onnx.weights import read_state_dict, stored_names


def state_dict_from_file(model: onnx.ModelProto, stack: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The ``nn.GRU`` state_dict of one stack, read from the file's initializers by the rule of
    its weight layout (:mod:`gru_onnx.weights`)."""
    wanted = set(stored_names(stack["weights"]))
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name in wanted}
    arrays.update(dequantized_initializers(model, wanted))  # int8 files: weights as the file computes them

    def get(name: str) -> np.ndarray:
        if name not in arrays:
            raise GruOnnxUsageError(f"the metadata names initializer {name!r}, which the file does not have")
        return arrays[name]

    state = read_state_dict(stack_spec(stack), stack["weights"], get)
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
    stacks = metadata.get("stacks", [])
    if len(stacks) != 1 or stacks[0]["path"] != "":
        where = ", ".join(repr(s["path"]) for s in stacks) or "none"
        raise GruOnnxUsageError(
            f"the file holds a whole model (CustomGRU at {where}); pass --model (or the model) to check it"
        )
    (stack,) = stacks
    module = CustomGRU.from_spec(stack_spec(stack))
    if checkpoint is not None:
        load_checkpoint(module, checkpoint)
    else:
        module.load_state_dict(state_dict_from_file(model, stack), strict=True)
    return module.to(float_type(metadata.get("dtype", "float32")).torch).eval()
