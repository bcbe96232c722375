"""The GRU in ONNX: the step math and the layer/direction driver, shared by every strategy
that writes the recurrence itself (unrolled, loop).

Names follow ``torch.nn.GRU`` (gates r, z, n; ``weight_ih``, ``weight_hh``); ``op`` is an
onnxscript op builder, so the same functions write into the main graph or a loop body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_ir as ir

from gru_onnx.exporters import StackInputs, StackResult
from gru_onnx.spec import Direction, GRUSpec
from gru_onnx.weights import layout_record

Value = Any  # an onnxscript / onnx_ir value


@dataclass(frozen=True)
class RecurrentWeights:
    """The recurrent weights of one layer and direction, split as the step needs them.

    reset_after: ``w_hh`` ``[3H, H]`` and ``b_hh`` in one Gemm. Otherwise the r/z rows and the
    n rows are separate, since ``W_hn`` multiplies ``r * h`` rather than ``h``. ``stored_as``
    maps a parameter stored in parts to the names of its parts (for the metadata).
    """

    w_hh: Value
    b_hh: Value | None
    w_hn: Value | None = None
    b_hn: Value | None = None
    stored_as: dict[str, list[str]] = field(default_factory=dict)


def _split_rows(op: Any, value: Value, rows: int) -> tuple[Value, Value]:
    """``value[:rows]``, ``value[rows:]``: new initializers when ``value`` is one (so loop
    bodies only see constants; OpenVINO rejects a Scan body reading other outer values)."""
    if value.const_value is None:
        first, rest = op.Split(value, [rows, value.shape[0] - rows], axis=0, _outputs=2)
        return first, rest
    array = value.const_value.numpy()
    first = register_constant(op, f"{value.name}.rz", array[:rows])
    rest = register_constant(op, f"{value.name}.n", array[rows:])
    return first, rest


def register_constant(op: Any, name: str, array: np.ndarray) -> Value:
    """An initializer named exactly ``name`` (the builder would add its scope); a CustomGRU
    called twice in one model finds the one its first call registered."""
    graph = op.builder.root.graph
    if name in graph.initializers:
        return graph.initializers[name]
    value = ir.val(name, const_value=ir.tensor(np.ascontiguousarray(array), name=name))
    graph.register_initializer(value)
    return value


def prepare_recurrent(op: Any, spec: GRUSpec, w_hh: Value, b_hh: Value | None) -> RecurrentWeights:
    """Split the recurrent weights once per direction (outside any loop)."""
    if spec.reset_after:
        return RecurrentWeights(w_hh, b_hh)
    hidden = spec.hidden_size
    w_hrz, w_hn = _split_rows(op, w_hh, 2 * hidden)
    b_hrz = b_hn = None
    stored = {w_hh.name: [w_hrz.name, w_hn.name]}
    if b_hh is not None:
        b_hrz, b_hn = _split_rows(op, b_hh, 2 * hidden)
        stored[b_hh.name] = [b_hrz.name, b_hn.name]
    return RecurrentWeights(w_hrz, b_hrz, w_hn, b_hn, stored_as=stored)


def _gemm(op: Any, a: Value, w: Value, b: Value | None) -> Value:
    """``a @ w.T + b`` for 2-D ``a``."""
    return op.Gemm(a, w, b, transB=1) if b is not None else op.Gemm(a, w, transB=1)


def input_projection(op: Any, x: Value, w_ih: Value, b_ih: Value | None) -> Value:
    """``W_ih x + b_ih`` for every time step at once: ``[T, B, I] -> [T, B, 3H]``."""
    gx = op.MatMul(x, op.Transpose(w_ih, perm=[1, 0]))
    return op.Add(gx, b_ih) if b_ih is not None else gx


def gru_step(op: Any, spec: GRUSpec, gx: Value, h: Value, rw: RecurrentWeights) -> Value:
    """One time step: ``gx`` ``[B, 3H]`` (input projection incl. ``b_ih``), ``h`` ``[B, H]``."""
    f, g = spec.recurrent_activation.onnx, spec.activation.onnx
    hidden = spec.hidden_size
    x_r, x_z, x_n = op.Split(gx, [hidden] * 3, axis=-1, _outputs=3)
    if spec.reset_after:
        h_r, h_z, h_n = op.Split(_gemm(op, h, rw.w_hh, rw.b_hh), [hidden] * 3, axis=-1, _outputs=3)
        r = f(op, op.Add(x_r, h_r))
        z = f(op, op.Add(x_z, h_z))
        n = g(op, op.Add(x_n, op.Mul(r, h_n)))
    else:
        h_r, h_z = op.Split(_gemm(op, h, rw.w_hh, rw.b_hh), [hidden] * 2, axis=-1, _outputs=2)
        r = f(op, op.Add(x_r, h_r))
        z = f(op, op.Add(x_z, h_z))
        n = g(op, op.Add(x_n, _gemm(op, op.Mul(r, h), rw.w_hn, rw.b_hn)))
    # (1 - z) * n + z * h, in the order ATen and cuDNN evaluate it.
    return op.Add(n, op.Mul(z, op.Sub(h, n)))


def masked_update(op: Any, mask: Value, h_new: Value, h: Value) -> tuple[Value, Value]:
    """For padded batches: ``(output, state)``; past a sequence's end the output is zero and
    the state is held."""
    return op.Where(mask, h_new, 0.0), op.Where(mask, h_new, h)


#: ``run_direction(op, spec, gx, h_init, rw, direction, mask) -> (y [T, B, H], h_last [B, H])``
RunDirection = Callable[[Any, GRUSpec, Value, Value, RecurrentWeights, Direction, Value | None], tuple[Value, Value]]


def _zeros_state(op: Any, x: Value, batch_axis: int, hidden: int) -> Value:
    """``[B, H]`` zeros in ``x``'s type."""
    shape = op.Concat(op.Shape(x, start=batch_axis, end=batch_axis + 1), [hidden], axis=0)
    return op.ConstantOfShape(shape, value=ir.tensor(np.zeros((1,), dtype=x.dtype.numpy())))


def length_mask(op: Any, x: Value, seq_axis: int, lengths: Value) -> Value:
    """``[T, B, 1]`` bool mask: step ``t`` of sequence ``b`` is valid when ``t < lengths[b]``."""
    seq_len = op.Squeeze(op.Shape(x, start=seq_axis, end=seq_axis + 1), [0])
    steps = op.Range(0, seq_len, 1)
    return op.Less(op.Unsqueeze(steps, [1, 2]), op.Unsqueeze(lengths, [0, 2]))


def run_layers(op: Any, stack: StackInputs, run_direction: RunDirection) -> StackResult:
    """Stack layers and directions around ``run_direction``, as ``torch.nn.GRU`` does.

    Inside, time runs along axis 0. A batch-first input is projected first and transposed
    after (ONNX Runtime 1.31 crashes creating a float16 session for Transpose -> MatMul).
    The ``nn.GRU`` parameters keep their names in the file; for ``reset_after=False`` the
    recurrent ones are stored as two row blocks, listed in the metadata.
    """
    spec = stack.spec
    x = stack.x
    seq_axis, batch_axis = (1, 0) if stack.batch_first else (0, 1)
    mask = None if stack.lengths is None else length_mask(op, x, seq_axis, stack.lengths)
    finals = []
    parameters: dict[str, str | list[str]] = {name: value.name for name, value in stack.weights.items()}
    for layer in range(spec.num_layers):
        outs = []
        for d in spec.directions(layer):
            w = stack.weights
            b_ih = w.get(d.param("bias_ih"))
            b_hh = w.get(d.param("bias_hh"))
            gx = input_projection(op, x, w[d.param("weight_ih")], b_ih)
            if layer == 0 and stack.batch_first:
                gx = op.Transpose(gx, perm=[1, 0, 2])
            rw = prepare_recurrent(op, spec, w[d.param("weight_hh")], b_hh)
            for name in (d.param("weight_hh"), d.param("bias_hh")):
                if name in w and w[name].name in rw.stored_as:
                    parameters[name] = rw.stored_as[w[name].name]
            if stack.h0 is not None:
                h_init = op.Gather(stack.h0, op.Constant(value_int=d.index), axis=0)
            else:
                h_init = _zeros_state(op, stack.x, batch_axis, spec.hidden_size)
            y, h_last = run_direction(op, spec, gx, h_init, rw, d, mask)
            outs.append(y)
            finals.append(op.Unsqueeze(h_last, [0]))
        x = op.Concat(*outs, axis=-1) if len(outs) > 1 else outs[0]
    if stack.batch_first:
        x = op.Transpose(x, perm=[1, 0, 2])
    y_h = op.Concat(*finals, axis=0) if len(finals) > 1 else finals[0]
    return StackResult(x, y_h, weights=layout_record("torch", parameters=parameters))
