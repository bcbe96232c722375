"""Compact names: short, deterministic node and value names in written graphs.

torch.onnx and the strategies name every node and value after its scope
(``gru_onnx.gru/scan_l0/gru_onnx.gru/Gemm_node_0``, ``v_gru_onnx.gru.Gemm_0``): about 100 bytes
per node, which an unrolled file repeats at every time step (210 KB of a 2.9 MB two-layer H=256
T=100 file, more in an int8 file, whose weights shrink 4x and whose nodes do not).

:func:`compact_names` numbers the nodes of the whole model depth first, a subgraph's nodes right
after the node that holds it: node ``k`` is named ``n<k>`` and its outputs ``v<k>`` (``v<k>_<i>``
when it has several), so an edge names the node it comes from. A subgraph's own inputs become
``n<k>_<attribute>_<i>`` after the node ``k`` holding it. Numbers run over the whole model, so no
subgraph name shadows an outer one. Names that users or the metadata refer to stay as they are:
the main graph's inputs and outputs, every initializer (weight records name them) and empty
names (an omitted optional output). The result depends only on the graph, so equal exports
stay byte-identical, and Netron still shows each node's op type beside its number.
"""

from __future__ import annotations

import onnx_ir as ir


def compact_names(model: ir.Model) -> ir.Model:
    """Rename ``model``'s nodes and intermediate values (in place) as the module docstring
    says; returns ``model``."""
    graph = model.graph
    kept = {v.name for v in (*graph.inputs, *graph.outputs) if v.name}
    for g in model.graphs():
        kept.update(name for name in g.initializers if name)
    keep = {id(v) for v in (*graph.inputs, *graph.outputs)}
    for g in model.graphs():
        keep.update(id(v) for v in g.initializers.values())
    namer = _Namer(kept, keep)
    namer.graph(graph)
    return model


class _Namer:
    """Hands out ``n<k>``/``v<k>`` names in visiting order, skipping names kept elsewhere."""

    def __init__(self, kept: set[str], keep: set[int]) -> None:
        self.kept = kept  # names that stay, so no new name may take them
        self.keep = keep  # ids of the values that keep their names
        self.count = 0

    def fresh(self, name: str) -> str:
        while name in self.kept:  # a kept name looks like ours: step aside, deterministically
            name += "_"
        return name

    def rename(self, value: ir.Value, name: str) -> None:
        if value.name and id(value) not in self.keep:
            value.name = self.fresh(name)
            self.keep.add(id(value))  # a value met again (an outer value in a body) keeps its name

    def graph(self, graph: ir.Graph) -> None:
        for node in graph:
            number = self.count
            self.count += 1
            node.name = self.fresh(f"n{number}")
            outputs = node.outputs
            for i, value in enumerate(outputs):
                self.rename(value, f"v{number}" if len(outputs) == 1 else f"v{number}_{i}")
            for attr in node.attributes.values():
                if attr.type == ir.AttributeType.GRAPH:
                    self.subgraph(attr.as_graph(), f"n{number}_{attr.name}")
                elif attr.type == ir.AttributeType.GRAPHS:
                    for j, sub in enumerate(attr.as_graphs()):
                        self.subgraph(sub, f"n{number}_{attr.name}{j}")

    def subgraph(self, graph: ir.Graph, prefix: str) -> None:
        for i, value in enumerate(graph.inputs):
            self.rename(value, f"{prefix}_{i}")
        self.graph(graph)
