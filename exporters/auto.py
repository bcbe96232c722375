"""Auto strategy: pick the strategy that fits each GRU stack, and say why.

- native: the activations are the defaults (sigmoid gates, tanh candidate) with
  ``reset_after=True``, the GRU every runtime implements (cuDNN included), in float32/float64
  (ONNX Runtime's CPU GRU kernel has no float16).
- unrolled: the sequence length is static and at most :data:`UNROLLED_MAX_LEN`, where the
  committed benchmark (``benchmarks/strategies.py``, results in
  ``benchmarks/results/strategies.md``) measured it faster than the loop.
- loop: everything else (dynamic or long sequences).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import onnx_ir as ir

from gru_onnx.exporters import STRATEGIES, StackInputs, StackResult, register_strategy

#: Longest static length for which unrolled beat loop on ONNX Runtime CPU in the benchmark.
UNROLLED_MAX_LEN = 64


def choose(stack: StackInputs) -> tuple[str, str]:
    """``(strategy, reason)`` for one stack."""
    spec = stack.spec
    if spec.is_torch_default and stack.x.dtype != ir.DataType.FLOAT16:
        return "native", "default activations (sigmoid/tanh, reset after): the ONNX GRU op every runtime implements"
    if stack.seq_len is None:
        return "loop", "the sequence length is dynamic"
    if stack.seq_len <= UNROLLED_MAX_LEN:
        return "unrolled", (
            f"static length {stack.seq_len} <= {UNROLLED_MAX_LEN}: unrolled measured faster than loop at such lengths"
        )
    return "loop", f"static length {stack.seq_len} > {UNROLLED_MAX_LEN}: loop is as fast and far smaller"


@register_strategy(
    "auto",
    dynamic_seq=True,
    summary="native for default activations, else unrolled for short static lengths, else loop",
)
def build_auto(op: Any, stack: StackInputs) -> StackResult:
    """Delegate to the chosen strategy; the choice and reason go into the metadata."""
    name, reason = choose(stack)
    return dataclasses.replace(STRATEGIES[name].build(op, stack), strategy=name, reason=reason)
