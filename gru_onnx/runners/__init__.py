"""Runners: one small adapter per runtime, all with the same interface (open, run, close, timed).

``RUNNERS`` maps a provider key (what ``--provider`` takes, :mod:`gru_onnx.registry`) to a
factory ``(path, threads=None) -> Runner``; heavy imports happen when a runner opens, so a
missing runtime only makes its own runner unavailable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import partial

from gru_onnx import registry
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.runners.base import Runner, RuntimeUnavailable
from gru_onnx.runners.node import NodeRunner, node_runner_problem
from gru_onnx.runners.onnxruntime import OnnxRuntimeRunner, provider_problem
from gru_onnx.runners.openvino import OpenVINORunner, openvino_problem
from gru_onnx.runners.web import WebRunner, web_runner_problem

#: ``factory(path, *, threads=None) -> Runner`` per provider key.
RUNNERS: dict[str, Callable[..., Runner]] = {
    "cpu": partial(OnnxRuntimeRunner, provider="cpu"),
    "cuda": partial(OnnxRuntimeRunner, provider="cuda"),
    "tensorrt": partial(OnnxRuntimeRunner, provider="tensorrt"),
    "openvino": OpenVINORunner,
    "node": NodeRunner,
    "web": partial(WebRunner, backend="wasm"),
    "webgpu": partial(WebRunner, backend="webgpu"),
}
#: Why a runner cannot run here (checked without a file), per key; None when it can.
_PROBLEMS: dict[str, Callable[[], str | None]] = {
    "cpu": partial(provider_problem, "cpu"),
    "cuda": partial(provider_problem, "cuda"),
    "tensorrt": partial(provider_problem, "tensorrt"),
    "openvino": openvino_problem,
    "node": node_runner_problem,
    "web": partial(web_runner_problem, "wasm"),
    "webgpu": partial(web_runner_problem, "webgpu"),
}
ALL = tuple(k for k in RUNNERS if registry.runner_name(k).in_all)


def register_runner(
    key: str,
    factory: Callable[..., Runner],
    problem: Callable[[], str | None],
    *,
    display: str,
    in_all: bool = True,
) -> None:
    """Add a runtime adapter: ``factory(path, threads=None)`` and ``problem()`` (why it cannot
    run here, or None). ``in_all=False`` keeps it out of ``--provider all`` (a browser, say)."""
    RUNNERS[key] = factory
    _PROBLEMS[key] = problem
    registry.add_runner_name(key, display, in_all=in_all)


def unavailable_reason(key: str) -> str | None:
    """Why runtime ``key`` cannot run on this machine (checked without a file), or None."""
    registry.runner_name(key)
    return _PROBLEMS[key]()


def make_runner(key: str, path: str | os.PathLike[str], *, threads: int | None = None) -> Runner:
    """The (unopened) runner for provider ``key`` on ``path``."""
    registry.runner_name(key)
    return RUNNERS[key](path, threads=threads)


def open_runner(path: str | os.PathLike[str], keys: Iterable[str], threads: int | None = None) -> Runner:
    """The first of ``keys`` that opens ``path`` here (a one-line usage error when none does)."""
    reasons = []
    for key in keys:
        runner = make_runner(key, path, threads=threads)
        try:
            return runner.open()
        except RuntimeUnavailable as exc:
            reasons.append(str(exc))
    raise GruOnnxUsageError("no runtime can run the file here: " + "; ".join(reasons or ["no provider given"]))


__all__ = [
    "ALL",
    "RUNNERS",
    "NodeRunner",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "Runner",
    "RuntimeUnavailable",
    "WebRunner",
    "make_runner",
    "open_runner",
    "register_runner",
    "unavailable_reason",
]
