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
from gru_onnx.metadata import stack_spec
from gru_onnx.quantization import quantization_step
from gru_onnx.rebuild import state_dict_from_file
from gru_onnx.weights import compare_weights, get_layout, stored_names
from gru_onnx.wiring import verify


def check_weights(
    source: nn.Module | None, proto: onnx.ModelProto, metadata: Mapping[str, Any] | None
) -> list[WeightCheck]:
    """For each GRU stack: that the graph reads the tensors the metadata names
    (:func:`gru_onnx.wiring.verify`), then, with a ``source``, the stored weights (read by the
    layout's rule) against its parameters, so a change too small to move the outputs is caught."""
    if metadata is None:
        return []
    checks = []
    for stack, wiring in zip(metadata["stacks"], verify(proto, metadata), strict=True):
        layout = get_layout(stack["weights"])
        common = {"method": wiring.method, "wiring": wiring.problems}
        module = _submodule(source, stack["path"])
        spec = stack_spec(stack)
        state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()} if module is not None else {}
        if module is None or set(spec.all_parameter_names()) - set(state):
            # No source, or one shaped differently (a wrapper): the outputs decide.
            checks.append(WeightCheck(stack["path"], layout.name, compared=False, **common))
            continue
        stored = {k: v.numpy() for k, v in state_dict_from_file(proto, stack).items()}
        dtype = next(iter(stored.values())).dtype
        step = quantization_step(proto, set(stored_names(stack["weights"])))  # int8: within half a step
        exact = layout.exact and step == 0.0
        found = compare_weights(spec, stored, state, exact=exact, dtype=dtype, atol=step / 2 * 1.001)
        name = layout.name + (f", int8 {metadata['quantization']['mode']}" if step else "")
        checks.append(WeightCheck(stack["path"], name, tuple(found), **common))
    return checks


def _submodule(source: nn.Module | None, path: str) -> nn.Module | None:
    if source is None:
        return None
    try:
        return source.get_submodule(path) if path else source
    except AttributeError:
        return None

