"""Native strategy: the standard ONNX ``GRU`` operator, one node per layer.

Only where it is provably the same function: both activations must have an exact equivalent
in ONNX's activation list (with the right alpha/beta); anything else is refused with the
activation's name, never approximated. Weights are rewritten into ONNX's layout (gates z, r, h;
``W``, ``R``, ``B`` stacked over directions) as new initializers.

ONNX leaves open how ``activation_alpha``/``activation_beta`` line up with ``activations``:
ONNX Runtime gives values only to the activations that take them, in order; TensorRT reads
them by position. This writer picks lists both read the same way
(:func:`positional_parameters`). Which runtimes honour which activations is in
:mod:`gru_onnx.compat`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from gru_onnx.activations import NativeActivation
from gru_onnx.errors import ExportError
from gru_onnx.exporters._cell import register_constant
from gru_onnx.exporters.base import StackInputs, StackResult, register_strategy
from gru_onnx.spec import GRUSpec
from gru_onnx.weights import layout_record


def native_activations(spec: GRUSpec) -> tuple[NativeActivation, NativeActivation]:
    """``(f, g)`` as ONNX GRU activations, or ExportError naming the one that has none."""
    found = []
    for role, bound in (("recurrent_activation", spec.recurrent_activation), ("activation", spec.activation)):
        native = bound.native()
        if native is None:
            raise ExportError(
                f"the native ONNX GRU op cannot express {role} {str(bound)!r} exactly; "
                "use the loop or unrolled strategy"
            )
        found.append(native)
    return found[0], found[1]


def native_entry(spec: GRUSpec) -> dict[str, Any] | None:
    """What the metadata would say of a native stack for ``spec`` (for the compat table), or
    None when the activations have no exact native form."""
    try:
        f, g = native_activations(spec)
    except ExportError:
        return None
    attrs = _attributes(spec, f, g)
    native = {key: attrs[key] for key in ("activations", "activation_alpha", "activation_beta") if key in attrs}
    return {"strategy": "native", "native": native, "spec": spec.to_json()}


def _zrh(w: np.ndarray) -> np.ndarray:
    """PyTorch gate order (r, z, n) -> ONNX's (z, r, h), along the first axis."""
    r, z, n = np.split(w, 3)
    return np.concatenate([z, r, n])


def positional_parameters(acts: Sequence[NativeActivation], key: str) -> list[float] | None:
    """One ``activation_alpha`` (``key="alpha"``) or ``activation_beta`` list that ONNX Runtime
    and TensorRT both read as intended, or None when no list can say it to both.

    ONNX Runtime hands values out in order, only to the activations that take one; TensorRT's
    parser reads value ``i`` for activation ``i`` and fills defaults past the list's end. Entry
    ``k`` must therefore be the ``k``-th taker's value *and* activation ``k``'s own value.
    """
    values = [getattr(a, key) for a in acts]
    takers = [v for v in values if v is not None]
    if not takers:
        return []
    wanted: dict[int, float] = dict(enumerate(takers))  # ONNX Runtime's reading
    for i, v in enumerate(values):  # TensorRT's reading
        if v is not None and wanted.setdefault(i, v) != v:
            return None
    filled: list[float] = []
    for i in range(max(wanted) + 1):  # positions no reader needs repeat a needed value
        filled.append(wanted.get(i, filled[-1] if filled else takers[0]))
    return filled


def _attributes(spec: GRUSpec, f: NativeActivation, g: NativeActivation) -> dict[str, Any]:
    acts = [f, g] * spec.num_directions
    attrs: dict[str, Any] = {
        "hidden_size": spec.hidden_size,
        "direction": "bidirectional" if spec.bidirectional else "forward",
        "linear_before_reset": int(spec.reset_after),
        "activations": [a.name for a in acts],
    }
    for key in ("alpha", "beta"):
        values = positional_parameters(acts, key)
        if values is None:  # never for [f, g] repeated; fall back to ONNX Runtime's reading
            values = [getattr(a, key) for a in acts if getattr(a, key) is not None]
        if values:
            attrs[f"activation_{key}"] = values
    return attrs


@register_strategy(
    "native",
    dynamic_seq=True,
    summary="the ONNX GRU operator; only for activations ONNX's list expresses exactly",
)
def build_native(op: Any, stack: StackInputs) -> StackResult:
    """One ONNX GRU node per layer (both directions in one node when bidirectional).

    Lengths outside 1..T get what the other strategies compute (the GRU op would return
    zeros for 0 and fail past T): they are clipped into 1..T for the op, and a sequence of
    length 0 or less gets zero outputs and keeps its initial state.
    """
    spec = stack.spec
    f, g = native_activations(spec)
    attrs = _attributes(spec, f, g)
    dirs = spec.num_directions
    x = op.Transpose(stack.x, perm=[1, 0, 2]) if stack.batch_first else stack.x
    seq_lens = empty = None
    if stack.lengths is not None:
        seq_len = op.Shape(x, start=0, end=1)
        seq_lens = op.Cast(op.Min(op.Max(stack.lengths, [1]), seq_len), to=ir.DataType.INT32)
        empty = op.Unsqueeze(op.LessOrEqual(stack.lengths, [0]), [0, 2])  # [1, B, 1]
    finals = []
    layout: dict[str, dict[str, str]] = {}
    for layer in range(spec.num_layers):
        arrays: dict[str, list[np.ndarray]] = {key: [] for key in "WRB"}
        for d in spec.directions(layer):
            w = {k: stack.weights[k].const_value.numpy() for k in spec.parameter_names(d)}
            arrays["W"].append(_zrh(w[d.param("weight_ih")]))
            arrays["R"].append(_zrh(w[d.param("weight_hh")]))
            if spec.bias:
                arrays["B"].append(np.concatenate([_zrh(w[d.param("bias_ih")]), _zrh(w[d.param("bias_hh")])]))
        names = {}
        tensors = {}
        for key, parts in arrays.items():
            if parts:
                name = f"{stack.name_prefix}gru_{key}_l{layer}"
                tensors[key] = register_constant(op, name, np.stack(parts))
                names[key] = name
        layout[f"l{layer}"] = names
        initial_h = None
        if stack.h0 is not None:
            initial_h = op.Slice(stack.h0, [layer * dirs], [(layer + 1) * dirs], [0])
        y, y_h = op.GRU(x, tensors["W"], tensors["R"], tensors.get("B"), seq_lens, initial_h, _outputs=2, **attrs)
        if empty is not None:  # [D, B, H] state held, [T, D, B, H] outputs zero
            y_h = op.Where(empty, initial_h if initial_h is not None else 0.0, y_h)
            y = op.Where(op.Unsqueeze(empty, [0]), 0.0, y)
        # Y is [T, D, B, H]; nn.GRU's output is [T, B, D*H].
        x = op.Reshape(op.Transpose(y, perm=[0, 2, 1, 3]), [0, 0, -1])
        finals.append(y_h)
    if stack.batch_first:
        x = op.Transpose(x, perm=[1, 0, 2])
    y_h = op.Concat(*finals, axis=0) if len(finals) > 1 else finals[0]
    native = {key: attrs[key] for key in ("activations", "activation_alpha", "activation_beta") if key in attrs}
    return StackResult(x, y_h, weights=layout_record("onnx_gru", layers=layout), native=native)
