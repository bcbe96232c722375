"""The strategy table: how one GRU stack becomes ONNX. Users extend it with :func:`register_strategy`.

Every strategy has the same signature: ``build(op, stack) -> StackResult`` where ``op`` is an
onnxscript op builder writing into the exported graph and ``stack`` (:class:`StackInputs`)
holds the stack's description and its graph values. The result's ``y`` is ``[T, B, D*H]``
(``[B, T, D*H]`` when ``stack.batch_first``) and ``y_h`` ``[L*D, B, H]``, as ``torch.nn.GRU``
returns them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import onnx_ir as ir

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.registry import TARGETS, add_strategy_name
from gru_onnx.spec import GRUSpec

__all__ = ["STRATEGIES", "TARGETS", "StackInputs", "StackResult", "Strategy", "get_strategy", "register_strategy"]


@dataclass(frozen=True)
class StackInputs:
    """One GRU stack as a strategy sees it: its spec and the graph values it reads."""

    spec: GRUSpec
    x: ir.Value  # [T, B, I], or [B, T, I] when batch_first; y uses the same layout
    h0: ir.Value | None  # [L*D, B, H]
    lengths: ir.Value | None  # int64 [B]
    weights: Mapping[str, ir.Value]  # by nn.GRU parameter name
    seq_len: int | None  # static sequence length, None when the axis is dynamic
    opset: int
    batch_first: bool = False  # layout of x and of the output y
    name_prefix: str = ""  # prefix for new initializers, e.g. "encoder."
    scope: str = "gru"  # unique per call in the graph, for names of subgraphs ("gru_onnx.encoder#1")
    target: str = "any"  # the runtime the file is for (TARGETS); auto picks what is fastest and exact there
    int8: bool = False  # the file's weights are quantized next: auto leaves out the native op (no int8 form)


@dataclass(frozen=True)
class StackResult:
    """What a strategy wrote: the two outputs, and what the metadata says about the stack.

    ``weights`` says where the ``nn.GRU`` parameters live in the file: a record made with
    :func:`gru_onnx.weights.layout_record` (layout name, version, and the layout's fields).
    ``strategy``/``reason`` name the strategy that wrote the stack and why (auto fills them);
    ``native`` holds the attributes of the ONNX GRU nodes written, for the runtime-support table.
    """

    y: ir.Value
    y_h: ir.Value
    weights: Mapping[str, Any]
    strategy: str | None = None
    reason: str | None = None
    native: Mapping[str, Any] | None = None


BuildFn = Callable[[Any, StackInputs], StackResult]


@dataclass(frozen=True)
class Strategy:
    """A registered export strategy."""

    name: str
    build: BuildFn
    dynamic_seq: bool  # True when one file serves any sequence length
    summary: str


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(
    name: str, *, dynamic_seq: bool, summary: str, overwrite: bool = False
) -> Callable[[BuildFn], BuildFn]:
    """Decorator that adds ``build`` to the strategy table under ``name``."""

    def wrap(build: BuildFn) -> BuildFn:
        if name in STRATEGIES and not overwrite:
            raise GruOnnxUsageError(f"export strategy {name!r} is already registered")
        STRATEGIES[name] = Strategy(name, build, dynamic_seq, summary)
        add_strategy_name(name, dynamic_seq=dynamic_seq, summary=summary)
        return build

    return wrap


def get_strategy(name: str) -> Strategy:
    """Look up a strategy by name; unknown names list the valid ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        valid = ", ".join(sorted(STRATEGIES))
        raise GruOnnxUsageError(f"unknown export strategy {name!r}; valid strategies: {valid}") from None
