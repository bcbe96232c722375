"""Names of an exported model's graph inputs and outputs, as its users name them.

Rules (documented in docs/guides/export-and-strategies.md, "Axes and names"):

- Inputs keep ``forward``'s argument names; ``forward(*args)`` gives ``input``, ``input_1``, ...
- Outputs take their names from the structure ``forward`` returns: a dict's keys, a
  NamedTuple's fields, dotted paths for nested structures (``state.h``, ``pair.0``). Outputs
  with no name in the structure are ``output``, ``output_1``, ... in order.
- Explicit ``input_names``/``output_names`` win. An output whose name an input already has
  gets ``_out``; repeated names get ``_1``, ``_2``.
- Characters other than letters, digits, ``_`` and ``.`` become ``_`` (names must be valid
  tensor names for Triton and for the runtimes' C APIs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import onnx_ir as ir

_INVALID = re.compile(r"[^A-Za-z0-9_.]")


def sanitize(name: str) -> str:
    """A name valid for Triton and the runtimes: letters, digits, ``_`` and ``.``."""
    return _INVALID.sub("_", str(name)) or "_"


def output_names_from_spec(spec: Any) -> list[str]:
    """One name per output leaf of torch's output TreeSpec, by the rules above."""
    names: list[str | None] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if node.is_leaf():
            names.append(".".join(path) if path else None)
            return
        kind, context = node.type, node.context
        if kind is dict or (isinstance(context, list) and kind is not list and kind is not tuple):
            keys = [str(k) for k in context]
        elif isinstance(context, type) and hasattr(context, "_fields"):  # a NamedTuple
            keys = list(context._fields)
        elif hasattr(kind, "_fields"):
            keys = list(kind._fields)
        else:  # tuple, list: positions carry no name at the top level
            keys = [str(i) for i in range(node.num_children)] if path else [None] * node.num_children
        # torch 2.13 deprecates children_specs for children(); older releases have only the former.
        children = list(node.children()) if callable(getattr(node, "children", None)) else node.children_specs
        for key, child in zip(keys, children, strict=True):
            walk(child, (*path, key) if key is not None else path)

    walk(spec, ())
    unnamed = 0
    result = []
    for name in names:
        if name is None:
            name = "output" if unnamed == 0 else f"output_{unnamed}"
            unnamed += 1
        result.append(sanitize(name))
    return result


def input_names_from_graph(graph: ir.Graph, vararg: str | None = "args") -> list[str]:
    """torch's input names, with ``forward(*args)``'s ``args_0``, ``args_1`` as ``input``,
    ``input_1`` (``vararg`` is the name of ``forward``'s ``*`` parameter)."""
    pattern = re.compile(rf"^{re.escape(vararg)}_(\d+)$") if vararg else None
    names = []
    for value in graph.inputs:
        match = pattern.match(value.name or "") if pattern else None
        if match:
            index = int(match.group(1))
            names.append("input" if index == 0 else f"input_{index}")
        else:
            names.append(sanitize(value.name or "input"))
    return names


def unique_outputs(names: Sequence[str], inputs: Sequence[str]) -> list[str]:
    """Output names that clash with an input (``_out``) or with each other (``_1``, ...) made unique."""
    taken = set(inputs)
    result = []
    for name in names:
        candidate = f"{name}_out" if name in taken else name
        base, n = candidate, 0
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        result.append(candidate)
    return result


def rename_io(graph: ir.Graph, input_names: Sequence[str] | None, output_names: Sequence[str] | None) -> None:
    """Give the graph's inputs and outputs these names, moving aside any other value that has
    one already. An output that is also an input, or listed twice, gets an Identity of its own."""
    wanted = [*(input_names or []), *(output_names or [])]
    holders = {v.name: v for v in _all_values(graph) if v.name}
    mine = {id(v) for v in graph.inputs} | {id(v) for v in graph.outputs}
    for name in wanted:
        other = holders.get(name)
        if other is not None and id(other) not in mine:
            other.name = f"{name}__{len(holders)}"
            holders[other.name] = other
    if input_names:
        for value, name in zip(graph.inputs, input_names, strict=True):
            value.name = name
    if output_names:
        seen: set[int] = set()
        for i, (value, name) in enumerate(zip(list(graph.outputs), output_names, strict=True)):
            if id(value) in seen or value.is_graph_input() or value.is_initializer():
                identity = ir.node("Identity", [value], name=f"output_identity_{i}")
                graph.append(identity)
                new = identity.outputs[0]
                new.type, new.shape = value.type, value.shape
                graph.outputs[i] = new
                value = new
            seen.add(id(value))
            value.name = name


def claim(graph: ir.Graph, value: ir.Value, name: str) -> None:
    """Give ``value`` the name ``name``, moving aside any other value of the graph that has it."""
    for other in _all_values(graph):
        if other is not value and other.name == name:
            other.name = f"{name}__moved"
    value.name = name


def _all_values(graph: ir.Graph) -> list[ir.Value]:
    values = list(graph.inputs) + list(graph.initializers.values())
    for node in graph:
        values.extend(node.outputs)
    return values
