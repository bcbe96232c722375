"""Auto strategy: pick the strategy that fits each GRU stack, and say why.

Without a target (``any``), a file that is exact and as intended on every runtime:

- native: the activations are the defaults (sigmoid gates, tanh candidate) with
  ``reset_after=True``, the GRU every runtime implements (cuDNN included), in float32/float64
  (ONNX Runtime's CPU GRU kernel has no float16).
- unrolled: the sequence length is static and at most :data:`UNROLLED_MAX_LEN`, where the
  committed benchmark (``benchmarks/speed.py``, results in ``benchmarks/results/speed.md``)
  measured it at least as fast as the loop at batch 1.
- loop: everything else (dynamic or long sequences).

With a target, the fastest form that is exact *there*: ``cpu`` uses the native op for every
activation ONNX Runtime's CPU kernel computes exactly (not float16, which it runs through
casts); ``cuda`` uses it only for the cuDNN GRU (default activations; others fall back to the
CPU kernel) and prefers unrolled up to :data:`UNROLLED_MAX_LEN_CUDA` (CUDA graphs cannot
capture a Scan); ``tensorrt`` and ``openvino`` use it where :mod:`gru_onnx.compat` says that
runtime runs it as intended. ``web`` (onnxruntime-web, WebAssembly) uses it for every activation
it takes in float32 (measured at 0.97-1.00x the fused op, against 1.19x and more for the other
forms), and unrolls only up to :data:`UNROLLED_MAX_LEN_WEB`: a session run there costs a fixed
150-200 us, and unrolled falls behind the loop sooner than on ONNX Runtime CPU
(``benchmarks/web.py``, results in ``benchmarks/results/web.md``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import onnx_ir as ir

from gru_onnx.compat import stack_support
from gru_onnx.exporters.base import STRATEGIES, StackInputs, StackResult, register_strategy
from gru_onnx.exporters.native import native_entry

#: Longest static length for which unrolled beat loop on ONNX Runtime CPU at batch 1 in
#: ``benchmarks/speed.py`` with the 10-node step (0.90x at 16, 0.97x at 64, 1.03x at 128;
#: at batch 16 within 6% up to 64, 13-15% behind beyond).
UNROLLED_MAX_LEN = 64
#: Longest static length auto unrolls for CUDA: no GPU measured it yet; bounded by the export
#: (under 3 s) and file size (about 1.5 MiB per 256 steps at hidden 128) on the CPU side.
UNROLLED_MAX_LEN_CUDA = 256
#: Longest static length auto unrolls for onnxruntime-web: unrolled / loop measured 0.96 (relu)
#: and 0.97 (gelu) at 8, 1.02 and 1.00 at 16, 1.12 at 64 (``benchmarks/web.py``, WebAssembly).
UNROLLED_MAX_LEN_WEB = 8


def native_reason(stack: StackInputs) -> str | None:
    """Why the native op is exact and as intended on ``stack.target``, or None where it is not."""
    spec, target = stack.spec, stack.target
    half = stack.x.dtype == ir.DataType.FLOAT16
    if target == "any":
        if spec.is_torch_default and not half:
            return "default activations (sigmoid/tanh, reset after): the ONNX GRU op every runtime implements"
        return None
    if target == "cuda":
        return "default activations: cuDNN's GRU" if spec.is_torch_default else None
    entry = native_entry(spec)
    if entry is None or (target == "cpu" and half):
        return None
    if target == "web" and half:
        return None  # exact there through casts, but not measured faster than the standard ops
    runtime = {"cpu": "onnxruntime-cpu", "tensorrt": "onnxruntime-tensorrt", "openvino": "openvino",
               "web": "onnxruntime-web"}[target]  # fmt: skip
    dtype = "float16" if half else "float32"
    row = next(r for r in stack_support(entry, dtype) if r.runtime == runtime)
    if row.status != "yes":
        return None
    return f"target {target}: the ONNX GRU op computes these activations exactly there ({row.note})"


def choose(stack: StackInputs) -> tuple[str, str]:
    """``(strategy, reason)`` for one stack."""
    reason = native_reason(stack)
    if reason is not None and not stack.int8:
        return "native", reason
    strategy, why = _standard_ops(stack)
    if reason is not None:  # int8 requested: the ONNX GRU op's weights would stay float
        why += "; not the native op, which has no int8 form (quantization requested)"
    return strategy, why


def _standard_ops(stack: StackInputs) -> tuple[str, str]:
    """``(strategy, reason)`` among the strategies of standard ops: unrolled or loop."""
    if stack.seq_len is None:
        return "loop", "the sequence length is dynamic"
    if stack.target == "cuda":
        if stack.seq_len <= UNROLLED_MAX_LEN_CUDA:
            return "unrolled", (
                f"target cuda, static length {stack.seq_len} <= {UNROLLED_MAX_LEN_CUDA}: no control flow, "
                "so CUDA graphs can capture it"
            )
        return "loop", f"target cuda, static length {stack.seq_len} > {UNROLLED_MAX_LEN_CUDA}: unrolled grows too large"
    if stack.target == "web":
        if stack.seq_len <= UNROLLED_MAX_LEN_WEB:
            return "unrolled", (
                f"target web, static length {stack.seq_len} <= {UNROLLED_MAX_LEN_WEB}: unrolled measured faster than "
                "loop in onnxruntime-web at such lengths"
            )
        return "loop", (
            f"target web, static length {stack.seq_len} > {UNROLLED_MAX_LEN_WEB}: loop measured faster in "
            "onnxruntime-web"
        )
    if stack.seq_len <= UNROLLED_MAX_LEN:
        return "unrolled", (
            f"static length {stack.seq_len} <= {UNROLLED_MAX_LEN}: unrolled measured faster than loop at such lengths"
        )
    return "loop", f"static length {stack.seq_len} > {UNROLLED_MAX_LEN}: loop is as fast and far smaller"


@register_strategy(
    "auto",
    dynamic_seq=True,
    summary="native where exact on the target, else unrolled for short static lengths, else loop",
)
def build_auto(op: Any, stack: StackInputs) -> StackResult:
    """Delegate to the chosen strategy; the choice and reason go into the metadata."""
    name, reason = choose(stack)
    return dataclasses.replace(STRATEGIES[name].build(op, stack), strategy=name, reason=reason)
