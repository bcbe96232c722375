"""Which runtimes compute which export as intended: one table, read from the runtimes' sources.

Files written with the ``unrolled`` and ``loop`` strategies use only standard ops (``Scan``
for loop) that every runtime listed here implements. The native ``GRU`` op is honoured
unevenly:

- ONNX Runtime CPU implements every activation, both reset forms, in float and double; a
  float16 node runs through casts to float32 that ONNX Runtime inserts.
- ONNX Runtime CUDA runs only sigmoid/tanh with ``linear_before_reset=1`` on cuDNN; other
  nodes fall back to the CPU kernel (``RNNNeedFallbackToCPU``): right numbers at CPU speed
  with device copies.
- TensorRT's parser builds GRUs as loops and honours every activation but ``Affine``.
- OpenVINO's GRUSequence accepts sigmoid, tanh, relu and hardsigmoid only, and its CPU plugin
  (2026.4, checked here) fails to compile hardsigmoid: sigmoid, tanh and relu run.
- onnxruntime-web (WebAssembly) and onnxruntime-node run ONNX Runtime's CPU GRU kernel: every
  activation, both reset forms, float16 through casts; measured exact in all 92 cases of
  ``benchmarks/web.py`` (1.30.0). WebGPU is not in the table (not measured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gru_onnx.spec import GRUSpec

RUNTIMES = (
    "onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "openvino", "onnxruntime-web", "onnxruntime-node",
)  # fmt: skip
# GRUSequence's spec lists hardsigmoid too, but OpenVINO 2026.4's CPU plugin rejects it when
# compiling ("Unsupported activation function"); checked here.
_OPENVINO_GRU = {"Sigmoid", "Tanh", "Relu"}


@dataclass(frozen=True)
class Support:
    """How one runtime handles a file: ``yes``, ``fallback`` (right numbers, slow path) or ``no``."""

    runtime: str
    status: str
    note: str = ""


def native_support(activations: list[str], reset_after: bool, dtype: str) -> list[Support]:
    """Support of an ONNX GRU node with activations ``[f, g]`` by each runtime."""
    half = dtype in ("float16", "bfloat16")
    default = activations == ["Sigmoid", "Tanh"] and reset_after
    rows = []
    if half:
        rows.append(Support("onnxruntime-cpu", "yes", "no float16 GRU kernel: ONNX Runtime inserts casts to float32"))
    else:
        rows.append(Support("onnxruntime-cpu", "yes", "CPU GRU kernel"))
    if default:
        rows.append(Support("onnxruntime-cuda", "yes", "cuDNN"))
    elif half:
        rows.append(Support("onnxruntime-cuda", "fallback", "runs on the CPU kernel, cast to float32"))
    else:
        rows.append(
            Support("onnxruntime-cuda", "fallback", "non-default GRU runs on the CPU kernel (RNNNeedFallbackToCPU)")
        )
    if "Affine" in activations:
        rows.append(Support("onnxruntime-tensorrt", "no", "TensorRT's parser has no Affine activation"))
    else:
        rows.append(Support("onnxruntime-tensorrt", "yes", "parser builds the GRU as a loop"))
    missing = sorted(set(activations) - _OPENVINO_GRU)
    if missing:
        rows.append(Support("openvino", "no", f"its CPU plugin does not compile a GRU with {', '.join(missing)}"))
    else:
        rows.append(Support("openvino", "yes", "GRUSequence"))
    kernel = "ONNX Runtime's CPU GRU kernel" + (", cast to float32" if half else "")
    rows.append(Support("onnxruntime-web", "yes", f"WebAssembly build of {kernel}"))
    rows.append(Support("onnxruntime-node", "yes", kernel))
    return rows


def stack_support(stack: Mapping[str, Any], dtype: str) -> list[Support]:
    """Support of one exported GRU stack (its metadata entry) by each runtime."""
    if stack.get("strategy") != "native":
        return [Support(r, "yes", "standard ops") for r in RUNTIMES]
    native = stack.get("native")
    if native is None:  # written before 0.2: names only, parameter lists as ONNX Runtime reads them
        native = {"activations": stack["notes"]["native_activations"] * (2 if stack["spec"]["bidirectional"] else 1)}
        native.update(_onnxruntime_lists(stack["spec"]))
    rows = native_support(native["activations"][:2], stack["spec"]["reset_after"], dtype)
    problem = tensorrt_reading(native)
    if problem:
        rows = [Support(r.runtime, "no", problem) if r.runtime == "onnxruntime-tensorrt" else r for r in rows]
    return rows


def _onnxruntime_lists(spec: Mapping[str, Any]) -> dict[str, list[float]]:
    """The alpha/beta lists gru-onnx 0.1 wrote: one value per activation that takes it, in order."""
    parsed = GRUSpec.from_json(spec)
    acts = [parsed.recurrent_activation.native(), parsed.activation.native()] * parsed.num_directions
    lists = {}
    for key in ("alpha", "beta"):
        values = [getattr(a, key) for a in acts if a is not None and getattr(a, key) is not None]
        if values:
            lists[f"activation_{key}"] = values
    return lists


#: What TensorRT's parser assumes for an activation past the end of activation_alpha/beta
#: (onnx-tensorrt, getActivationDefaultAlpha/Beta), and which activations read each.
_TRT_DEFAULTS = {
    "alpha": {"LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "ScaledTanh": 1.0, "HardSigmoid": 0.2, "Elu": 1.0,
              "Affine": 1.0},
    "beta": {"ScaledTanh": 1.0, "HardSigmoid": 0.5, "Affine": 0.0},
}  # fmt: skip


def tensorrt_reading(native: Mapping[str, Any]) -> str | None:
    """Why TensorRT's positional reading of a GRU node's alpha/beta lists differs from ONNX
    Runtime's in-order one (what the writer meant), or None when both agree."""
    acts = list(native["activations"])[:2]  # the parser applies the forward pair to both directions
    for key, defaults in _TRT_DEFAULTS.items():
        values = list(native.get(f"activation_{key}", []))
        ort_order = iter(values)
        for i, name in enumerate(acts):
            if name not in defaults:
                continue
            meant = next(ort_order, defaults[name])
            read = values[i] if i < len(values) else defaults[name]
            if read != meant:
                return f"TensorRT reads {key} {read:g} for {name}, not {meant:g} (its parser reads lists by position)"
    return None


def file_support(metadata: Mapping[str, Any]) -> list[Support]:
    """Support of a whole file: the weakest status of its stacks, per runtime."""
    order = {"yes": 0, "fallback": 1, "no": 2}
    worst: dict[str, Support] = {r: Support(r, "yes", "standard ops") for r in RUNTIMES}
    for stack in metadata.get("stacks", []):
        for row in stack_support(stack, metadata.get("dtype", "float32")):
            current = worst[row.runtime]
            if order[row.status] > order[current.status] or (
                row.status == current.status and current.note == "standard ops"
            ):
                worst[row.runtime] = row
    return [worst[r] for r in RUNTIMES]
