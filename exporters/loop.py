"""Loop strategy: an ONNX ``Scan`` whose body is the GRU step; one file serves any length.

The file size does not grow with the sequence length and the sequence axis stays dynamic.
Each layer and direction is one Scan (reverse directions scan backwards); the input
projection for all steps is one MatMul + Add outside the loop, split into the r/z and n parts
the body reads as two scan inputs.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir
import onnxscript

from gru_onnx.exporters._cell import StepWeights, Value, gru_step, run_layers
from gru_onnx.exporters.base import StackInputs, StackResult, register_strategy
from gru_onnx.spec import Direction, GRUSpec


@register_strategy(
    "loop",
    dynamic_seq=True,
    summary="ONNX Scan with the step as its body; any sequence length, size independent of it",
)
def build_loop(op: Any, stack: StackInputs) -> StackResult:
    """Write each layer and direction as one Scan over time.

    The body returns the new state and, as scan outputs, ``n`` and ``z * (h - n)``, added
    once for all steps outside (a value listed twice among a Scan body's outputs makes ONNX
    Runtime return wrong results from step 2 on, so the state is never also an output). With
    ``lengths`` the body holds the state past a sequence's end and returns the unmasked
    ``h'``; outputs past the end are zeroed outside.
    """

    def run_direction(
        op: Any, spec: GRUSpec, gx: Value, h: Value, sw: StepWeights, direction: Direction, mask: Value | None
    ) -> tuple[Value, Value]:
        # Named after the stack's (unique) scope and the direction: the same model gives the same file.
        prefix = f"{stack.scope}/scan{direction.suffix}"
        hidden = spec.hidden_size

        def body(bop: Any, h_prev: Value, x_rz: Value, x_n: Value, mask_t: Value | None = None) -> tuple[Value, ...]:
            n, zd, h_new = gru_step(bop, spec, x_rz, x_n, h_prev, sw)
            if mask_t is None:
                return h_new, n, zd
            return bop.Where(mask_t, h_new, h_prev), h_new

        dtype = gx.dtype
        state = ir.Shape(["batch", hidden])
        inputs = [
            ir.val(f"{prefix}_h", dtype, state),
            ir.val(f"{prefix}_x_rz", dtype, ir.Shape(["batch", 2 * hidden])),
            ir.val(f"{prefix}_x_n", dtype, state),
        ]
        outputs = [ir.val(f"{prefix}_h_out", dtype, state)]
        if mask is None:
            outputs += [ir.val(f"{prefix}_n", dtype, state), ir.val(f"{prefix}_zd", dtype, state)]
        else:
            inputs.append(ir.val(f"{prefix}_mask", ir.DataType.BOOL, ir.Shape(["batch", 1])))
            outputs.append(ir.val(f"{prefix}_y", dtype, state))
        graph = onnxscript.build_graph(
            body, inputs=inputs, outputs=outputs, opset_imports={"": stack.opset}, name=prefix, parent=op.builder
        )
        _prefix_names(graph, prefix)
        x_rz, x_n = op.Split(gx, [2 * hidden, hidden], axis=-1, _outputs=2)
        scanned = [x_rz, x_n] if mask is None else [x_rz, x_n, mask]
        n_out = len(outputs) - 1
        directions = {}
        if direction.reverse:
            directions = {"scan_input_directions": [1] * len(scanned), "scan_output_directions": [1] * n_out}
        h_last, *ys = op.Scan(h, *scanned, body=graph, num_scan_inputs=len(scanned), _outputs=1 + n_out, **directions)
        y = op.Add(*ys) if mask is None else op.Where(mask, ys[0], 0.0)
        return y, h_last

    return run_layers(op, stack, run_direction, time_major=True)


def _prefix_names(graph: ir.Graph, prefix: str) -> None:
    """Give the body's intermediate values names that cannot clash with other bodies'."""
    boundary = {id(v) for v in (*graph.inputs, *graph.outputs)}
    for node in graph:
        node.name = f"{prefix}/{node.name}"
        for value in node.outputs:
            if id(value) not in boundary and value.name:
                value.name = f"{prefix}/{value.name}"
