"""The names every layer agrees on: strategies, targets, dtypes, quantization modes, runners, opsets.

This module imports neither torch nor onnx, so the command line can offer its choices (and
``--help`` stays fast) without loading them. The objects behind the names live higher up:
strategies in :mod:`gru_onnx.exporters` (which adds each registered one here), runners in
:mod:`gru_onnx.runners`, dtypes in :mod:`gru_onnx.spec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gru_onnx.errors import GruOnnxUsageError

#: The key of gru-onnx's JSON description in a file's ``metadata_props`` (:mod:`gru_onnx.metadata`).
METADATA_KEY = "gru_onnx"

#: Opsets gru-onnx writes: torch.onnx writes 18 and newer, 17 is relabelled after a node check;
#: 25 is the newest opset torch.onnx writes and ONNX Runtime 1.31 runs.
MIN_OPSET = 17
MAX_OPSET = 25
DEFAULT_OPSET = 18

#: Runtimes an export can be aimed at (``target``); ``any`` means every runtime.
TARGETS = ("any", "cpu", "cuda", "tensorrt", "openvino", "web")

#: Floating types a file can be written in. bfloat16 is left out: ONNX Runtime 1.31's CPU
#: provider has no bfloat16 MatMul or Gemm.
EXPORT_DTYPES = ("float32", "float16")

#: int8 rewrites (:mod:`gru_onnx.quantization`): int8 storage with float compute, or int8 MatMuls.
QUANTIZE_MODES = ("weights", "dynamic")


@dataclass(frozen=True)
class StrategyName:
    """A strategy as the option groups know it: its name and whether one file serves any length."""

    name: str
    dynamic_seq: bool
    summary: str = ""


_STRATEGIES: dict[str, StrategyName] = {
    s.name: s
    for s in (
        StrategyName("auto", True, "native where exact on the target, else unrolled for short static lengths, "
                     "else loop"),
        StrategyName("loop", True, "ONNX Scan with the step as its body; any sequence length"),
        StrategyName("native", True, "the ONNX GRU operator; only for activations ONNX's list expresses exactly"),
        StrategyName("unrolled", False, "one step per time step; static length, plain ops, every runtime"),
    )
}  # fmt: skip


def add_strategy_name(name: str, *, dynamic_seq: bool, summary: str = "") -> None:
    """Record a strategy's name (called by :func:`gru_onnx.exporters.register_strategy`)."""
    _STRATEGIES[name] = StrategyName(name, dynamic_seq, summary)


def strategy_names() -> list[str]:
    """Every known strategy name, built-in and registered, sorted."""
    return sorted(_STRATEGIES)


def strategy_name(name: str) -> StrategyName:
    """The record of strategy ``name``; unknown names list the valid ones."""
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise GruOnnxUsageError(
            f"unknown export strategy {name!r}; valid strategies: {', '.join(strategy_names())}"
        ) from None


@dataclass(frozen=True)
class RunnerName:
    """A runtime a check or bench can run a file on.

    ``in_all``: included in ``all`` (the in-process runtimes); the others (a browser, Node.js)
    run only when asked for by name.
    """

    key: str
    display: str
    in_all: bool = True


_RUNNERS: dict[str, RunnerName] = {
    r.key: r
    for r in (
        RunnerName("cpu", "onnxruntime-cpu"),
        RunnerName("cuda", "onnxruntime-cuda"),
        RunnerName("tensorrt", "onnxruntime-tensorrt"),
        RunnerName("openvino", "openvino"),
        # JavaScript runtimes in other processes (gru-onnx setup web): asked for by name only
        RunnerName("node", "onnxruntime-node", in_all=False),
        RunnerName("web", "onnxruntime-web-wasm", in_all=False),
        RunnerName("webgpu", "onnxruntime-web-webgpu", in_all=False),
    )
}


def add_runner_name(key: str, display: str, *, in_all: bool = True) -> None:
    """Record a runner's key (called where a runner adapter is registered)."""
    _RUNNERS[key] = RunnerName(key, display, in_all)


def runner_names() -> list[str]:
    """Every runner key, in registration order."""
    return list(_RUNNERS)


def runner_name(key: str) -> RunnerName:
    """The record of runner ``key``; unknown keys list the valid ones."""
    try:
        return _RUNNERS[key]
    except KeyError:
        raise GruOnnxUsageError(f"unknown provider {key!r}; valid: {', '.join(_RUNNERS)}, all") from None


def expand_providers(providers: tuple[str, ...]) -> tuple[str, ...]:
    """``providers`` with ``all`` replaced by every in-process runner, duplicates dropped."""
    out: list[str] = []
    for key in providers:
        keys = [r.key for r in _RUNNERS.values() if r.in_all] if key == "all" else [runner_name(key).key]
        out.extend(k for k in keys if k not in out)
    return tuple(out)
