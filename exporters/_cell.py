"""The GRU in ONNX: the step math and the layer/direction driver, shared by every strategy
that writes the recurrence itself (unrolled, loop).

Names follow ``torch.nn.GRU`` (gates r, z, n; ``weight_ih``, ``weight_hh``); ``op`` is an
onnxscript op builder, so the same functions write into the main graph or a loop body.

The step is written at the floor of what standard ops allow, since at small batches the
cost is one dispatch per node, not arithmetic. Outside the recurrence, one MatMul + Add
projects every step's input with the biases that only ever appear summed folded in
(``b_ir + b_hr``, ``b_iz + b_hz``, and ``b_in + b_hn`` in the reset-before form). Per step
(reset after, 10 nodes; ONNX Runtime fuses the first two into one FusedGemm)::

    s = f(Gemm(h, W_hrz, C=x_rz))      r, z = Split(s)
    n = g(x_n + r * Gemm(h, W_hn, C=b_hn))
    zd = z * (h - n)                   h' = n + zd

Reset before (9 nodes): ``n = g(Gemm(r * h, W_hn, C=x_n))``. The weights are stored in the
``folded`` layout of :mod:`gru_onnx.weights`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from gru_onnx.activations import ScaledForm
from gru_onnx.exporters.base import StackInputs, StackResult
from gru_onnx.spec import Direction, GRUSpec
from gru_onnx.weights import layout_record

Value = Any  # an onnxscript / onnx_ir value


@dataclass(frozen=True)
class StepWeights:
    """One layer and direction's weights as the folded step reads them.

    ``w_ih`` ``[3H, I]`` as ``nn.GRU`` stores it; ``b_x`` ``[3H]`` the folded input bias
    (r and z: ``b_i + b_h``; n: ``b_in``, plus ``b_hn`` in the reset-before form); ``w_hrz``
    ``[2H, H]`` and ``w_hn`` ``[H, H]`` the recurrent row blocks; ``b_hn`` ``[H]`` only in the
    reset-after form, where it sits inside ``r * (W_hn h + b_hn)``. ``candidate`` emits the
    candidate activation (the registry's scaled form when the weights carry its scales).
    ``record`` names the stored initializers for the metadata.
    """

    w_ih: Value
    b_x: Value | None
    w_hrz: Value
    w_hn: Value
    b_hn: Value | None
    candidate: Callable[[Any, Value], Value]
    record: dict[str, Any]


def scaled_form(stack: StackInputs) -> ScaledForm | None:
    """The candidate's scaled form (:class:`gru_onnx.activations.ScaledForm`) where the step can
    use it: the registry has one at this opset, float32/float64, constant weights."""
    form = stack.spec.activation.scaled_form(stack.opset)
    if form is None or stack.x.dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE):
        return None
    if any(w.const_value is None for w in stack.weights.values()):
        return None
    return form


def register_constant(op: Any, name: str, array: np.ndarray) -> Value:
    """An initializer named exactly ``name`` (the builder would add its scope); a CustomGRU
    called twice in one model finds the one its first call registered."""
    graph = op.builder.root.graph
    if name in graph.initializers:
        return graph.initializers[name]
    value = ir.val(name, const_value=ir.tensor(np.ascontiguousarray(array), name=name))
    graph.register_initializer(value)
    return value


def _rows(op: Any, value: Value, start: int, stop: int, name: str) -> Value:
    """``value[start:stop]``: a new initializer when ``value`` is one (so loop bodies only see
    constants; OpenVINO rejects a Scan body reading other outer values), else a Slice."""
    if value.const_value is None:
        return op.Slice(value, [start], [stop], [0])
    return register_constant(op, name, value.const_value.numpy()[start:stop])


def _folded_bias(op: Any, spec: GRUSpec, b_ih: Value, b_hh: Value) -> Value:
    """``[b_ir + b_hr, b_iz + b_hz, b_in (+ b_hn when reset before)]``, summed in float64 and
    rounded once to the weights' type."""
    hidden = spec.hidden_size
    keep = 2 * hidden if spec.reset_after else 3 * hidden  # how many rows of b_hh fold in
    if b_ih.const_value is None or b_hh.const_value is None:
        rest = op.Mul(op.Slice(b_hh, [keep], [3 * hidden], [0]), 0.0)  # rows that stay apart
        return op.Add(b_ih, op.Concat(op.Slice(b_hh, [0], [keep], [0]), rest, axis=0))
    ih = b_ih.const_value.numpy()
    hh = b_hh.const_value.numpy()
    folded = ih.astype(np.float64)
    folded[:keep] += hh[:keep].astype(np.float64)
    return register_constant(op, f"{b_ih.name}.folded", folded.astype(ih.dtype))


def prepare_weights(op: Any, spec: GRUSpec, weights: Any, d: Direction, form: ScaledForm | None = None) -> StepWeights:
    """Fold and split one direction's weights once, outside any loop. With a scaled form
    (input scale ``c``, state scale ``k``) the state is carried as ``k * h``: the n rows of
    the input projection and ``b_hn`` are multiplied by ``c``, ``W_hrz`` by ``1 / k`` and
    ``W_hn`` by ``c / k`` (see :func:`gru_onnx.weights._read_folded` for the way back)."""
    if form is not None:
        return _prepare_scaled(op, spec, weights, d, form)
    hidden = spec.hidden_size
    w_ih, w_hh = weights[d.param("weight_ih")], weights[d.param("weight_hh")]
    w_hrz = _rows(op, w_hh, 0, 2 * hidden, f"{w_hh.name}.rz")
    w_hn = _rows(op, w_hh, 2 * hidden, 3 * hidden, f"{w_hh.name}.n")
    record: dict[str, Any] = {"weight_ih": w_ih.name, "weight_hh": [w_hrz.name, w_hn.name]}
    b_x = b_hn = None
    if spec.bias:
        b_ih, b_hh = weights[d.param("bias_ih")], weights[d.param("bias_hh")]
        b_x = _folded_bias(op, spec, b_ih, b_hh)
        record["bias_x"] = b_x.name
        if spec.reset_after:
            b_hn = _rows(op, b_hh, 2 * hidden, 3 * hidden, f"{b_hh.name}.n")
            record["bias_hn"] = b_hn.name
    return StepWeights(w_ih, b_x, w_hrz, w_hn, b_hn, spec.activation.onnx, record)


def _prepare_scaled(op: Any, spec: GRUSpec, weights: Any, d: Direction, form: ScaledForm) -> StepWeights:
    """:func:`prepare_weights` for a scaled form: every array computed in float64, rounded once."""
    hidden = spec.hidden_size
    c, k = form.input_scale, form.state_scale

    def array(name: str) -> np.ndarray:
        return weights[d.param(name)].const_value.numpy()

    def store(name: str, suffix: str, values: np.ndarray) -> Value:
        """``values`` rounded once to the parameter's type, named after the parameter."""
        return register_constant(op, f"{weights[d.param(name)].name}{suffix}", values.astype(array(name).dtype))

    w_ih = array("weight_ih").astype(np.float64)
    w_hh = array("weight_hh").astype(np.float64)
    w_ih[2 * hidden :] *= c
    values = {
        "weight_ih": store("weight_ih", ".scaled", w_ih),
        "w_hrz": store("weight_hh", ".rz.scaled", w_hh[: 2 * hidden] / k),
        "w_hn": store("weight_hh", ".n.scaled", w_hh[2 * hidden :] * (c / k)),
    }
    record: dict[str, Any] = {
        "weight_ih": values["weight_ih"].name,
        "weight_hh": [values["w_hrz"].name, values["w_hn"].name],
    }
    b_x = b_hn = None
    if spec.bias:
        b_ih, b_hh = array("bias_ih").astype(np.float64), array("bias_hh").astype(np.float64)
        keep = 2 * hidden if spec.reset_after else 3 * hidden
        folded = b_ih.copy()
        folded[:keep] += b_hh[:keep]
        folded[2 * hidden :] *= c
        b_x = store("bias_ih", ".folded.scaled", folded)
        record["bias_x"] = b_x.name
        if spec.reset_after:
            b_hn = store("bias_hh", ".n.scaled", b_hh[2 * hidden :] * c)
            record["bias_hn"] = b_hn.name
    return StepWeights(values["weight_ih"], b_x, values["w_hrz"], values["w_hn"], b_hn, form.onnx_fn, record)


def input_projection(op: Any, x: Value, sw: StepWeights) -> Value:
    """``W_ih x + b_x`` for every time step at once: ``[..., I] -> [..., 3H]``."""
    gx = op.MatMul(x, op.Transpose(sw.w_ih, perm=[1, 0]))
    return op.Add(gx, sw.b_x) if sw.b_x is not None else gx


def gru_step(op: Any, spec: GRUSpec, x_rz: Value, x_n: Value, h: Value, sw: StepWeights) -> tuple[Value, Value, Value]:
    """One time step: ``x_rz`` ``[B, 2H]`` and ``x_n`` ``[B, H]`` (projection incl. folded
    biases), ``h`` ``[B, H]``. Returns ``(n, zd, h')`` with ``h' = n + zd``: the loop adds
    ``n`` and ``zd`` of all steps at once outside its body."""
    f, g = spec.recurrent_activation.onnx, sw.candidate
    hidden = spec.hidden_size
    r, z = op.Split(f(op, op.Gemm(h, sw.w_hrz, x_rz, transB=1)), [hidden, hidden], axis=-1, _outputs=2)
    if spec.reset_after:
        h_n = op.Gemm(h, sw.w_hn, sw.b_hn, transB=1) if sw.b_hn is not None else op.Gemm(h, sw.w_hn, transB=1)
        n = g(op, op.Add(x_n, op.Mul(r, h_n)))
    else:
        n = g(op, op.Gemm(op.Mul(r, h), sw.w_hn, x_n, transB=1))
    # (1 - z) * n + z * h, in the order ATen and cuDNN evaluate it.
    zd = op.Mul(z, op.Sub(h, n))
    return n, zd, op.Add(n, zd)


#: ``run_direction(op, spec, gx, h_init, sw, direction, mask) -> (y, h_last [B, H])``; ``gx``
#: and ``y`` are time-major (``[T, B, *]``) or batch-major (``[B, T, *]``) as the strategy
#: asked :func:`run_layers`; ``mask`` is ``[T, B, 1]`` or ``[B, T]`` accordingly.
RunDirection = Callable[[Any, GRUSpec, Value, Value, StepWeights, Direction, Value | None], tuple[Value, Value]]


def _zeros_state(op: Any, x: Value, batch_axis: int, hidden: int) -> Value:
    """``[B, H]`` zeros in ``x``'s type."""
    shape = op.Concat(op.Shape(x, start=batch_axis, end=batch_axis + 1), [hidden], axis=0)
    return op.ConstantOfShape(shape, value=ir.tensor(np.zeros((1,), dtype=x.dtype.numpy())))


def length_mask(op: Any, x: Value, seq_axis: int, lengths: Value, *, time_major: bool = True) -> Value:
    """Bool mask, true where step ``t`` of sequence ``b`` is valid (``t < lengths[b]``):
    ``[T, B, 1]`` time-major, ``[B, T]`` batch-major."""
    seq_len = op.Squeeze(op.Shape(x, start=seq_axis, end=seq_axis + 1), [0])
    steps = op.Range(0, seq_len, 1)
    if time_major:
        return op.Less(op.Unsqueeze(steps, [1, 2]), op.Unsqueeze(lengths, [0, 2]))
    return op.Less(op.Unsqueeze(steps, [0]), op.Unsqueeze(lengths, [1]))


def run_layers(op: Any, stack: StackInputs, run_direction: RunDirection, *, time_major: bool = True) -> StackResult:
    """Stack layers and directions around ``run_direction``, as ``torch.nn.GRU`` does.

    ``time_major`` is the layout the strategy's recurrence wants (loop: ``[T, B, *]``, since
    Scan slices axis 0; unrolled: ``[B, T, *]``, so one Split along the last axis cuts every
    step out). The projection is computed in the input's layout and transposed after (ONNX
    Runtime 1.31 crashes creating a float16 session for Transpose -> MatMul).
    """
    spec = stack.spec
    x = stack.x
    seq_axis, batch_axis = (1, 0) if stack.batch_first else (0, 1)
    x_time_major = not stack.batch_first
    mask = None
    if stack.lengths is not None:
        mask = length_mask(op, x, seq_axis, stack.lengths, time_major=time_major)
    finals = []
    directions: dict[str, dict[str, Any]] = {}
    form = scaled_form(stack)
    for layer in range(spec.num_layers):
        outs = []
        for d in spec.directions(layer):
            sw = prepare_weights(op, spec, stack.weights, d, form)
            directions[d.suffix] = sw.record
            gx = input_projection(op, x, sw)
            if x_time_major != time_major:
                gx = op.Transpose(gx, perm=[1, 0, 2])
            if stack.h0 is not None:
                h_init = op.Gather(stack.h0, op.Constant(value_int=d.index), axis=0)
            else:
                h_init = _zeros_state(op, stack.x, batch_axis, spec.hidden_size)
            if form is not None:  # the recurrence carries state_scale * h
                h_init = op.Mul(h_init, form.state_scale)
            y, h_last = run_direction(op, spec, gx, h_init, sw, d, mask)
            if form is not None:
                y, h_last = op.Mul(y, 1.0 / form.state_scale), op.Mul(h_last, 1.0 / form.state_scale)
            outs.append(y)
            finals.append(op.Unsqueeze(h_last, [0]))
        x = op.Concat(*outs, axis=-1) if len(outs) > 1 else outs[0]
        x_time_major = time_major
    if x_time_major == stack.batch_first:
        x = op.Transpose(x, perm=[1, 0, 2])
    y_h = op.Concat(*finals, axis=0) if len(finals) > 1 else finals[0]
    scales = {} if form is None else {"input_scale": form.input_scale, "state_scale": form.state_scale}
    return StackResult(x, y_h, weights=layout_record("folded", directions=directions, **scales))
