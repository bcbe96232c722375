"""The weight side of a check: each GRU stack's stored weights against its source's parameters.

A change too small to move the outputs is still caught, because the weights are compared
directly, read back through the layout rule of :mod:`gru_onnx.weights`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import onnx
from torch import nn

from gru_onnx.check.results import WeightCheck
from gru_onnx.quantization import quantization_step
from gru_onnx.rebuild import state_dict_from_file
from gru_onnx.spec import GRUSpec
from gru_onnx.weights import compare_weights, get_layout, stored_names


def check_weights(
    source: nn.Module, proto: onnx.ModelProto, metadata: Mapping[str, Any] | None
) -> list[WeightCheck]:
    """Compare each GRU stack's stored weights (read by its layout's rule) with the source's
    parameters, so a change too small to move the outputs is still caught."""
    checks = []
    for stack in (metadata or {}).get("stacks", []):
        try:
            module = source.get_submodule(stack["path"]) if stack["path"] else source
        except AttributeError:
            continue  # the source is shaped differently (a wrapper): outputs still decide
        state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
        spec = GRUSpec.from_json(stack["spec"])
        if set(spec.all_parameter_names()) - set(state):
            continue
        stored = {k: v.numpy() for k, v in state_dict_from_file(proto, stack).items()}
        dtype = next(iter(stored.values())).dtype
        layout = get_layout(stack["weights"])
        step = quantization_step(proto, set(stored_names(stack["weights"])))  # int8: within half a step
        exact = layout.exact and step == 0.0
        found = compare_weights(spec, stored, state, exact=exact, dtype=dtype, atol=step / 2 * 1.001)
        name = layout.name + (f", int8 {metadata['quantization']['mode']}" if step else "")
        checks.append(WeightCheck(stack["path"], name, tuple(found)))
    return checks

