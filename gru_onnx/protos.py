"""Walking ONNX protobuf models: every graph (loop bodies included) and node attributes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import onnx
from onnx import helper


def all_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph inside it (Scan and Loop bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from all_graphs(attr.g)
            for g in attr.graphs:
                yield from all_graphs(g)


def attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    """The value of ``node``'s attribute ``name``, or ``default``."""
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _attribute_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        sparse = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
        for s in [*sparse, *attr.sparse_tensors]:
            yield s.values
            yield s.indices


def all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a model holds: initializers, sparse initializers (values and indices) and
    tensors in node attributes, in every graph and function (what an external location may hide in)."""
    for graph in all_graphs(model.graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            yield from _attribute_tensors(node)
    for function in model.functions:
        for node in function.node:
            yield from _attribute_tensors(node)


#: Ops that run subgraphs; ONNX Runtime drives them from the CPU, so a run with one of them cannot
#: be captured as a CUDA graph.
CONTROL_FLOW_OPS = frozenset({"Loop", "Scan", "If"})


def control_flow_ops(model: onnx.ModelProto) -> list[str]:
    """The control-flow ops (:data:`CONTROL_FLOW_OPS`) anywhere in ``model``, sorted."""
    return sorted({n.op_type for g in all_graphs(model.graph) for n in g.node} & CONTROL_FLOW_OPS)
