"""Lowering: each placeholder a traced model holds is written as ONNX by an export strategy.

The placeholders (:mod:`gru_onnx._export_op`) carry a GRU stack's spec and its graph values;
the strategy (:mod:`gru_onnx.exporters`) writes the recurrence, a streaming export's
:class:`~gru_onnx.streaming.StateLifter` lifts each call's state to the graph's inputs and
outputs, and what each stack became is returned for the metadata. Files for opset 17 are
relabelled after every node is checked to mean the same there.
"""

from __future__ import annotations

import json
from typing import Any

import onnx
import onnx_ir as ir
import onnxscript

from gru_onnx import _export_op
from gru_onnx.errors import ExportError, GruOnnxUsageError
from gru_onnx.exporters import StackInputs, Strategy
from gru_onnx.spec import GRUSpec
from gru_onnx.streaming import StateLifter


def replace_placeholders(
    model: ir.Model,
    strategy: Strategy,
    opset: int,
    lifter: StateLifter | None = None,
    target: str = "any",
    int8: bool = False,
) -> list[dict[str, Any]]:
    """Write every placeholder node with ``strategy``; return the stacks' metadata. With a
    ``lifter`` (streaming) each call's state comes from and goes to graph inputs/outputs;
    ``int8``: the weights are quantized next (strategies that choose avoid forms int8 cannot reach)."""
    graph = model.graph
    stacks = []
    builder = onnxscript.GraphBuilder(graph)  # one builder: its constants are shared by all stacks
    calls: dict[str, int] = {}
    for node in [n for n in graph if n.domain == _export_op.STUB_DOMAIN]:
        cfg = json.loads(node.attributes["config"].value)
        spec = GRUSpec.from_json(cfg["spec"])
        inputs = list(node.inputs)
        x = inputs.pop(0)
        h0 = inputs.pop(0) if cfg["has_h0"] else None
        lengths = inputs.pop(0) if cfg["has_lengths"] else None
        weights = dict(zip(spec.all_parameter_names(), inputs, strict=True))
        batch_first = cfg["batch_first"]
        seq_dim = x.shape[1 if batch_first else 0] if x.shape is not None else None
        seq_len = seq_dim if isinstance(seq_dim, int) else None
        where = repr(cfg["path"]) if cfg["path"] else "the model"
        if seq_len is None and str(seq_dim) == "batch" and lifter is not None:
            raise GruOnnxUsageError(
                f"the CustomGRU at {where} gets the batch axis as its time axis: streaming needs batch-first inputs "
                "(axis 0 batch, axis 1 time); transpose inside forward so the model takes [batch, time, ...]"
            )
        if seq_len is None and str(seq_dim) == "batch":
            raise ExportError(
                f"the CustomGRU at {where} gets the batch axis as its time axis: the model's inputs are not "
                "batch-first (axis 0 batch, axis 1 sequence); pass dynamic_shapes as for torch.export, or "
                "dynamic_batch=False"
            )
        if seq_len is None and not strategy.dynamic_seq:
            raise ExportError(
                f"the CustomGRU at {where} gets a dynamic time axis ({seq_dim}, from dynamic_shapes), which the "
                f"{strategy.name} strategy cannot write; make that axis static or use a strategy with a dynamic "
                "length (loop, native, auto)"
            )
        # A scope per call keeps node and value names unique when a CustomGRU runs twice.
        scope = f"gru_onnx.{cfg['path'] or 'gru'}"
        calls[scope] = calls.get(scope, -1) + 1
        scope += f"#{calls[scope]}" if calls[scope] else ""
        builder.push_module(scope, "CustomGRU")
        op = builder.opset("", opset)
        finish = None
        if lifter is not None:
            lifted, finish = lifter.initial_state(op, graph, spec, cfg, x)
            h0 = lifted if lifted is not None else h0
        prefix = f"{cfg['path']}." if cfg["path"] else ""
        stack = StackInputs(
            spec, x, h0, lengths, weights, seq_len, opset, batch_first=batch_first, name_prefix=prefix, scope=scope,
            target=target, int8=int8,
        )  # fmt: skip
        result = strategy.build(op, stack)
        if finish is not None:
            finish(op, result.y_h)
        builder.pop_module()
        new_outputs = (result.y, result.y_h)
        for old, new in zip(node.outputs, new_outputs, strict=True):
            name, old.name = old.name, None
            new.name = name
            new.type, new.shape = old.type, old.shape
        ir.convenience.replace_all_uses_with(node.outputs, new_outputs, replace_graph_outputs=True)
        graph.remove(node, safe=True)
        entry = {
            "path": cfg["path"],
            "spec": spec.to_json(),
            "strategy": result.strategy or strategy.name,
            "reason": result.reason or f"{strategy.name} requested",
            "seq_len": seq_len,
            "has_h0": cfg["has_h0"],
            "has_lengths": cfg["has_lengths"],
            "weights": dict(result.weights),
        }
        if result.native is not None:
            entry["native"] = dict(result.native)
        stacks.append(entry)
    if lifter is not None:
        lifter.name_outputs(graph)
    graph.sort()
    model.opset_imports.pop(_export_op.STUB_DOMAIN, None)
    # A strategy that rewrote the weights (native) leaves the originals unused.
    for name, value in list(graph.initializers.items()):
        if not value.uses() and not value.is_graph_output() and not value.is_graph_input():
            del graph.initializers[name]
    # Per-node debug metadata (Python stack traces with local paths, scope names) would make
    # up most of the file; keep the graph lean.
    for node in ir.traversal.RecursiveGraphIterator(graph):
        node.metadata_props.clear()
    return stacks


def relabel_opset(model: ir.Model, opset: int) -> None:
    """Declare an older default-domain opset, after checking every node means the same there.

    torch.onnx writes opset 18 at the oldest; ONNX's version converter has no 18 -> 17
    adapter for Split. A node is kept when its operator's schema is the same in both
    opsets, or when it is a Split given its sizes as an input (valid since opset 13).
    """
    current = model.opset_imports[""]
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.domain not in ("", "ai.onnx"):
            continue
        new = onnx.defs.get_schema(node.op_type, current, node.domain).since_version
        try:
            old = onnx.defs.get_schema(node.op_type, opset, node.domain).since_version
        except onnx.defs.SchemaError:
            raise ExportError(
                f"cannot write opset {opset}: the model uses {node.op_type}, which ONNX defines from opset {new}; "
                f"export with --opset {new} or newer"
            ) from None
        split_with_sizes = node.op_type == "Split" and "num_outputs" not in node.attributes
        if new != old and not split_with_sizes:
            raise ExportError(
                f"cannot write opset {opset}: the model uses {node.op_type} as defined in opset "
                f"{new}; export with --opset {new} or newer"
            )
    model.opset_imports[""] = opset
    model.graph.opset_imports[""] = opset

