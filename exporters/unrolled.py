"""Unrolled strategy: one copy of the step per time step, for a sequence length fixed at export.

Plain ops only (no control flow), so every runtime and graph optimiser handles it; the file
grows with the length. Weights are stored once and shared by all steps; the input projection
of all steps is one MatMul + Add per layer and direction, cut into steps by one Split, and
the outputs are joined by one Concat.
"""

from __future__ import annotations

from typing import Any

from gru_onnx.errors import ExportError
from gru_onnx.exporters._cell import StepWeights, Value, gru_step, run_layers
from gru_onnx.exporters.base import StackInputs, StackResult, register_strategy
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
        op: Any, spec: GRUSpec, gx: Value, h: Value, sw: StepWeights, direction: Direction, mask: Value | None
    ) -> tuple[Value, Value]:
        # gx is [B, T, 3H]: one Split along the flattened last axis cuts out every step's
        # [B, 2H] and [B, H] parts, with no per-step Gather/Squeeze.
        hidden = spec.hidden_size
        flat = op.Reshape(gx, [0, seq_len * 3 * hidden])
        parts = op.Split(flat, [2 * hidden, hidden] * seq_len, axis=1, _outputs=2 * seq_len)
        masks: list[Value] = []
        if mask is not None:
            masks = [mask] if seq_len == 1 else list(op.Split(mask, [1] * seq_len, axis=1, _outputs=seq_len))
        outputs: list[Value] = [None] * seq_len
        for t in reversed(range(seq_len)) if direction.reverse else range(seq_len):
            _, _, h_new = gru_step(op, spec, parts[2 * t], parts[2 * t + 1], h, sw)
            outputs[t] = h_new
            h = h_new if mask is None else op.Where(masks[t], h_new, h)
        joined = op.Concat(*outputs, axis=1) if seq_len > 1 else outputs[0]
        y = op.Reshape(joined, [0, seq_len, hidden])
        if mask is not None:  # past a sequence's end the output is zero
            y = op.Where(op.Unsqueeze(mask, [2]), y, 0.0)
        return y, h

    return run_layers(op, stack, run_direction, time_major=False)
