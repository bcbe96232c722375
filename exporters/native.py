"""Native strategy: the standard ONNX ``GRU`` operator, one node per layer.

Only where it is provably the same function: both activations must have an exact equivalent
in ONNX's activation list (with the right alpha/beta); anything else is refused with the
activation's name, never approximated. Weights are rewritten into ONNX's layout (gates z, r, h;
``W``, ``R``, ``B`` stacked over directions) as new initializers.

ONNX leaves open how ``activation_alpha``/``activation_beta`` line up with ``activations``;
ONNX Runtime gives values only to the activations that take them, in order, and so does this
writer. Which runtimes honour which activations is in :mod:`gru_onnx.compat`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from gru_onnx.activations import NativeActivation
from gru_onnx.errors import ExportError
from gru_onnx.exporters import StackInputs, StackResult, register_strategy
from gru_onnx.exporters._cell import register_constant
from gru_onnx.spec import GRUSpec


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


def _zrh(w: np.ndarray) -> np.ndarray:
    """PyTorch gate order (r, z, n) -> ONNX's (z, r, h), along the first axis."""
    r, z, n = np.split(w, 3)
    return np.concatenate([z, r, n])


def _attributes(spec: GRUSpec, f: NativeActivation, g: NativeActivation) -> dict[str, Any]:
    acts = [f, g] * spec.num_directions
    attrs: dict[str, Any] = {
        "hidden_size": spec.hidden_size,
        "direction": "bidirectional" if spec.bidirectional else "forward",
        "linear_before_reset": int(spec.reset_after),
        "activations": [a.name for a in acts],
    }
    alphas = [a.alpha for a in acts if a.alpha is not None]
    betas = [a.beta for a in acts if a.beta is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


@register_strategy(
    "native",
    dynamic_seq=True,
    summary="the ONNX GRU operator; only for activations ONNX's list expresses exactly",
)
def build_native(op: Any, stack: StackInputs) -> StackResult:
    """One ONNX GRU node per layer (both directions in one node when bidirectional)."""
    spec = stack.spec
    f, g = native_activations(spec)
    attrs = _attributes(spec, f, g)
    dirs = spec.num_directions
    x = op.Transpose(stack.x, perm=[1, 0, 2]) if stack.batch_first else stack.x
    seq_lens = op.Cast(stack.lengths, to=ir.DataType.INT32) if stack.lengths is not None else None
    finals = []
    layout: dict[str, dict[str, str]] = {}
    for layer in range(spec.num_layers):
        suffixes = [f"_l{layer}", f"_l{layer}_reverse"][:dirs]
        arrays = {key: [] for key in "WRB"}
        for sfx in suffixes:
            w = {k: stack.weights[k].const_value.numpy() for k in spec.parameter_names(layer, sfx)}
            arrays["W"].append(_zrh(w[f"weight_ih{sfx}"]))
            arrays["R"].append(_zrh(w[f"weight_hh{sfx}"]))
            if spec.bias:
                arrays["B"].append(np.concatenate([_zrh(w[f"bias_ih{sfx}"]), _zrh(w[f"bias_hh{sfx}"])]))
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
        # Y is [T, D, B, H]; nn.GRU's output is [T, B, D*H].
        x = op.Reshape(op.Transpose(y, perm=[0, 2, 1, 3]), [0, 0, -1])
        finals.append(y_h)
    if stack.batch_first:
        x = op.Transpose(x, perm=[1, 0, 2])
    y_h = op.Concat(*finals, axis=0) if len(finals) > 1 else finals[0]
    weights = {"layout": "onnx_gru", "layers": layout}
    return StackResult(x, y_h, weights=weights, notes={"native_activations": attrs["activations"][:2]})
