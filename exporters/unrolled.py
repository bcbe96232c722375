"""Unrolled strategy: one copy of the step per time step, for a sequence length fixed at export.

Plain ops only (no control flow), so every runtime and graph optimiser handles it; the file
grows with the length. Weights are stored once and shared by all steps, and the input
projection of all steps is one MatMul per layer and direction.
"""

from __future__ import annotations

from typing import Any

from gru_onnx.errors import ExportError
from gru_onnx.exporters import StackInputs, StackResult, register_strategy
from gru_onnx.exporters._cell import RecurrentWeights, Value, gru_step, masked_update, run_layers
from gru_onnx.spec import Direction, GRUSpec


@register_strategy(
    "unrolled",
    dynamic_seq=False,
    summary="one step per time step; static length, plain ops, every runtime",
)
def build_unrolled(op: Any, stack: StackInputs) -> StackResult:
    """Write the stack with a Python loop over the static sequence length."""
    seq_len = stack.seq_len
    if seq_len is None:
        raise ExportError(
            "the unrolled strategy needs a static sequence length, but the sequence axis is "
            "dynamic; export with a fixed length or use a strategy with a dynamic length"
        )

    def run_direction(
        op: Any, spec: GRUSpec, gx: Value, h: Value, rw: RecurrentWeights, direction: Direction, mask: Value | None
    ) -> tuple[Value, Value]:
        outputs: list[Value] = [None] * seq_len
        for t in reversed(range(seq_len)) if direction.reverse else range(seq_len):
            step = op.Constant(value_int=t)
            h_new = gru_step(op, spec, op.Gather(gx, step, axis=0), h, rw)
            if mask is None:
                y_t = h = h_new
            else:
                y_t, h = masked_update(op, op.Gather(mask, step, axis=0), h_new, h)
            outputs[t] = op.Unsqueeze(y_t, [0])
        y = op.Concat(*outputs, axis=0) if seq_len > 1 else outputs[0]
        return y, h

    return run_layers(op, stack, run_direction)
