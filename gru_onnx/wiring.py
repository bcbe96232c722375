"""Which nodes read each GRU stack's weights: recorded when a file is written, verified when it is checked.

A check must compare the weights the graph really uses, not the ones the metadata names. So
every file records, per stack, the nodes that read each tensor holding its weights
(``stack["consumers"] = {tensor: [[node name, input index], ...]}``, metadata format 2), and
:func:`verify` follows those records in the file being checked: each recorded node must exist
once, read that very tensor at that input, and be live (reach a graph output). A node pointed at
a copy of a weight, a copy given the original's name, or a GRU node left dead beside a
replacement is then named in the report, and the check fails.

Files written before the record (format 1) get the check that is possible without it: every
named tensor is read by the graph, and no unnamed initializer of the same shape and type feeds
a node of the same kind at the same input (a stand-in). The report says which check ran.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import onnx
import onnx_ir as ir

from gru_onnx.errors import InternalError
from gru_onnx.protos import all_graphs
from gru_onnx.registry import METADATA_KEY
from gru_onnx.weights import stored_names

RECORDED = "the graph's consumers of each weight, as recorded in the file"
LEGACY = "a file without recorded consumers: each named weight is read, and no same-shaped stand-in"


def stack_tensors(stack: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    """The tensors that hold a stack's weights: the stored names, or an int8 weight's values and scale."""
    quantized = (metadata.get("quantization") or {}).get("tensors", {})
    tensors: list[str] = []
    for name in stored_names(stack["weights"]):
        for t in ([quantized[name]["values"], quantized[name]["scale"]] if name in quantized else [name]):
            if t not in tensors:
                tensors.append(t)
    return tensors


def record_consumers(model: ir.Model) -> None:
    """Write each stack's weight consumers into ``model``'s metadata (format 2). Node names must
    be final and unique (:func:`gru_onnx.compact.compact_names` runs first)."""
    metadata = json.loads(model.metadata_props[METADATA_KEY])
    uses: dict[str, list[list[Any]]] = defaultdict(list)
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        for i, value in enumerate(node.inputs):
            if value is not None and value.name:
                uses[value.name].append([node.name, i])
    for stack in metadata["stacks"]:
        consumers = {}
        for tensor in stack_tensors(stack, metadata):
            if not uses[tensor]:
                raise InternalError(f"the written graph does not read the weight tensor {tensor!r}")
            consumers[tensor] = sorted(uses[tensor])
        stack["consumers"] = consumers
    metadata["format"] = 2
    model.metadata_props[METADATA_KEY] = json.dumps(metadata, sort_keys=True)


@dataclass(frozen=True)
class Wiring:
    """What :func:`verify` found for one stack: the method it could use, and each problem in one line."""

    stack: str
    method: str
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems


def verify(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> list[Wiring]:
    """Follow each stack's recorded consumers in ``model`` (or the legacy checks); see the module doc."""
    nodes: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    initializers: dict[str, onnx.TensorProto] = {}
    for graph in all_graphs(model.graph):
        for tensor in graph.initializer:
            initializers[tensor.name] = tensor
        for node in graph.node:
            nodes[node.name].append(node)
            for i, name in enumerate(node.input):
                if name:
                    readers[name].append((node, i))
    live = _live_nodes(model.graph)
    every = {t for stack in metadata["stacks"] for t in stack_tensors(stack, metadata)}
    found = []
    for stack in metadata["stacks"]:
        tensors = stack_tensors(stack, metadata)
        if "consumers" in stack:
            problems = _recorded(stack["consumers"], tensors, nodes, live)
            found.append(Wiring(stack["path"], RECORDED, tuple(problems)))
        else:
            problems = _legacy(tensors, every, readers, initializers)
            found.append(Wiring(stack["path"], LEGACY, tuple(problems)))
    return found


def _recorded(
    consumers: Mapping[str, Any], tensors: Iterable[str], nodes: Mapping[str, list[onnx.NodeProto]], live: set[int]
) -> list[str]:
    problems = []
    for tensor in tensors:
        if tensor not in consumers:
            problems.append(f"the metadata records no consumer of its weight tensor {tensor!r}")
    for tensor, uses in consumers.items():
        found: dict[str, list[str]] = defaultdict(list)  # problem -> nodes, one line per kind
        for node_name, slot in uses:
            matches = nodes.get(node_name, [])
            if len(matches) != 1:
                what = "no node" if not matches else f"{len(matches)} nodes"
                found[f"the file has {what} of the recorded name, reading {tensor!r}"].append(node_name)
                continue
            (node,) = matches
            actual = node.input[slot] if slot < len(node.input) else ""
            if actual != tensor:
                found[
                    f"reads {actual or 'nothing'!r} where the metadata names {tensor!r}: the graph does not use the "
                    "weights the metadata names"
                ].append(f"{node_name} ({node.op_type}, input {slot})")
            elif id(node) not in live:
                found[f"reads {tensor!r}, but no output of the graph depends on it"].append(node_name)
        for problem, where in found.items():
            more = f" and {len(where) - 1} more" if len(where) > 1 else ""
            problems.append(f"node {where[0]}{more} {problem}")
    return problems


def _legacy(
    tensors: Iterable[str],
    every: set[str],
    readers: Mapping[str, list[tuple[onnx.NodeProto, int]]],
    initializers: Mapping[str, onnx.TensorProto],
) -> list[str]:
    problems = []
    for tensor in tensors:
        uses = readers.get(tensor, [])
        if not uses:
            problems.append(f"the weight tensor {tensor!r} the metadata names is read by no node of the graph")
            continue
        if tensor not in initializers:
            continue
        kind = initializers[tensor]
        slots = {(node.op_type, slot) for node, slot in uses}
        for other, proto in initializers.items():
            if other in every or proto.data_type != kind.data_type or list(proto.dims) != list(kind.dims):
                continue
            if any((node.op_type, slot) in slots for node, slot in readers.get(other, [])):
                problems.append(
                    f"initializer {other!r}, of {tensor!r}'s shape and type, feeds the nodes that read {tensor!r} "
                    "and is no weight the metadata names: a stand-in"
                )
    return problems


def _live_nodes(graph: onnx.GraphProto, needed: Iterable[str] | None = None) -> set[int]:
    """Ids of the nodes some output of ``graph`` (or the values ``needed``) depends on, subgraphs
    included: a live loop's body nodes that reach its outputs, and what they read from outside."""
    producer = {name: node for node in graph.node for name in node.output if name}
    wanted = list(needed if needed is not None else (o.name for o in graph.output))
    live: set[int] = set()
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        node = producer.get(name)
        if node is None or id(node) in live:
            continue
        live.add(id(node))
        wanted.extend(n for n in node.input if n)
        for attr in node.attribute:
            bodies = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for body in bodies:
                live |= _live_nodes(body)
                inner = {n for b in body.node for n in b.output} | {i.name for i in body.input}
                inner |= {t.name for t in body.initializer}
                wanted.extend(n for b in body.node for n in b.input if n and n not in inner)
    return live
