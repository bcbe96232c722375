"""Loop strategy: an ONNX ``Scan`` whose body is the GRU step; one file serves any length.

The file size does not grow with the sequence length and the sequence axis stays dynamic.
Each layer and direction is one Scan (reverse directions scan backwards); the input
projection for all steps is still one MatMul outside the loop.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir
import onnxscript

from gru_onnx.exporters import StackInputs, StackResult, register_strategy
from gru_onnx.exporters._cell import RecurrentWeights, Value, gru_step, masked_update, run_layers
from gru_onnx.spec import Direction, GRUSpec


@register_strategy(
    "loop",
    dynamic_seq=True,
    summary="ONNX Scan with the step as its body; any sequence length, size independent of it",
)
def build_loop(op: Any, stack: StackInputs) -> StackResult:
    """Write each layer and direction as one Scan over time."""

    def run_direction(
        op: Any, spec: GRUSpec, gx: Value, h: Value, rw: RecurrentWeights, direction: Direction, mask: Value | None
    ) -> tuple[Value, Value]:
        # Named after the stack's (unique) scope and the direction: the same model gives the same file.
        prefix = f"{stack.scope}/scan{direction.suffix}"

        def body(bop: Any, h_prev: Value, gx_t: Value, mask_t: Value | None = None) -> tuple[Value, Value]:
            h_new = gru_step(bop, spec, gx_t, h_prev, rw)
            if mask_t is None:
                return h_new, bop.Identity(h_new)
            y_t, h_next = masked_update(bop, mask_t, h_new, h_prev)
            return h_next, y_t

        hidden = spec.hidden_size
        dtype = gx.dtype
        inputs = [
            ir.val(f"{prefix}_h", dtype, ir.Shape(["batch", hidden])),
            ir.val(f"{prefix}_gx", dtype, ir.Shape(["batch", 3 * hidden])),
        ]
        if mask is not None:
            inputs.append(ir.val(f"{prefix}_mask", ir.DataType.BOOL, ir.Shape(["batch", 1])))
        graph = onnxscript.build_graph(
            body,
            inputs=inputs,
            outputs=[
                ir.val(f"{prefix}_h_out", dtype, ir.Shape(["batch", hidden])),
                ir.val(f"{prefix}_y", dtype, ir.Shape(["batch", hidden])),
            ],
            opset_imports={"": stack.opset},
            name=prefix,
            parent=op.builder,
        )
        _prefix_names(graph, prefix)
        scanned = [gx] if mask is None else [gx, mask]
        directions = {}
        if direction.reverse:
            directions = {"scan_input_directions": [1] * len(scanned), "scan_output_directions": [1]}
        h_last, y = op.Scan(h, *scanned, body=graph, num_scan_inputs=len(scanned), _outputs=2, **directions)
        return y, h_last

    return run_layers(op, stack, run_direction)


def _prefix_names(graph: ir.Graph, prefix: str) -> None:
    """Give the body's intermediate values names that cannot clash with other bodies'."""
    boundary = {id(v) for v in (*graph.inputs, *graph.outputs)}
    for node in graph:
        node.name = f"{prefix}/{node.name}"
        for value in node.outputs:
            if id(value) not in boundary and value.name:
                value.name = f"{prefix}/{value.name}"
