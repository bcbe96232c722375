"""Rewrites of a written graph that route around runtime bugs, each exact and pinned by a test.

- ONNX Runtime 1.31's CPU provider segfaults while creating a default session (its
  NchwcTransformer, optimisation level ALL) for a float16 ``Transpose`` of a rank-3 tensor with
  ``perm=[1, 0, 2]`` or ``[1, 2, 0]`` feeding a ``MatMul`` with a constant weight. The pattern
  comes from our batch-first GRUs and from users' own layers alike (a GRU followed by
  ``nn.Linear``), so the whole graph is rewritten: the MatMul moves before the Transpose, which
  is exact (``MatMul`` contracts the last axis, which the moved Transpose does not touch).
"""

from __future__ import annotations

import onnx_ir as ir

_CRASHING_PERMS = {(1, 0, 2): ((1, 0, 2), None), (1, 2, 0): ((1, 0, 2), (2, 1, 0))}


def _constant(value: ir.Value | None, depth: int = 4) -> bool:
    """An initializer, or what ONNX Runtime folds into one (e.g. a Transpose of a Linear weight)."""
    if value is None:
        return False
    if value.const_value is not None or value.is_initializer():
        return True
    producer = value.producer()
    return depth > 0 and producer is not None and all(_constant(v, depth - 1) for v in producer.inputs)


def matmul_before_transpose(graph: ir.Graph) -> int:
    """Rewrite every float16 ``MatMul(Transpose(x, perm), W)`` that crashes ONNX Runtime into
    ``Transpose(MatMul(Transpose'(x), W), [1, 0, 2])``; returns the number of rewrites.

    ``perm=[1, 0, 2]`` becomes ``Transpose(MatMul(x, W), [1, 0, 2])``; ``perm=[1, 2, 0]`` is
    ``[1, 0, 2]`` after ``[2, 1, 0]`` (a transpose that does not crash). The new trailing
    Transpose may feed another MatMul; the loop runs until no pattern is left.
    """
    count = 0
    changed = True
    while changed:
        changed = False
        for node in list(graph):
            if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
                continue
            a, w = node.inputs
            producer = a.producer() if a is not None else None
            if producer is None or producer.op_type != "Transpose" or not _constant(w):
                continue
            dtype = a.dtype or producer.inputs[0].dtype or (w.const_value.dtype if w.const_value is not None else None)
            if dtype != ir.DataType.FLOAT16 or "perm" not in producer.attributes:
                continue
            perm = tuple(producer.attributes["perm"].as_ints())
            if perm not in _CRASHING_PERMS:
                continue
            after, before = _CRASHING_PERMS[perm]
            x = producer.inputs[0]
            nodes = []
            if before is not None:
                pre = ir.node("Transpose", [x], attributes={"perm": list(before)})
                nodes.append(pre)
                x = pre.outputs[0]
            matmul = ir.node("MatMul", [x, w])
            post = ir.node("Transpose", [matmul.outputs[0]], attributes={"perm": list(after)})
            nodes += [matmul, post]
            old = node.outputs[0]
            for j, new in enumerate(nodes):
                new.name = f"{node.name or 'matmul'}/fp16_workaround_{count}_{j}_{new.op_type}"
                for out in new.outputs:
                    out.name = f"{new.name}_out"
                    out.dtype = dtype
            graph.insert_before(node, nodes)
            result = post.outputs[0]
            name, old.name = old.name, None
            result.name = name
            result.type, result.shape = old.type, old.shape
            ir.convenience.replace_all_uses_with(old, result, replace_graph_outputs=True)
            graph.remove(node, safe=True)
            if not any(producer.outputs[0].uses()) and not producer.outputs[0].is_graph_output():
                graph.remove(producer, safe=True)
            count += 1
            changed = True
    return count


def apply_all(graph: ir.Graph) -> None:
    """Every workaround, in order (only ones whose pattern is present change anything)."""
    matmul_before_transpose(graph)
