"""Helpers of the web tests: the one call of gru_onnx.export, the models, the tolerance.

Every export goes through :func:`export_file`, so a change of ``gru_onnx.export``'s signature
is one edit here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

import gru_onnx

import flat

ROOT = Path(__file__).resolve().parents[2]
#: The tolerance every parity test here holds the JavaScript runtimes to.
ATOL = 1e-5
#: Where the pages' screenshots are kept after the run (CI uploads or inspects them).
ARTIFACTS = Path(os.environ.get("GRU_ONNX_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "web"


def artifact(name: str) -> Path:
    """A path in :data:`ARTIFACTS` for a file a test keeps (its folder made)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def export_file(model: torch.nn.Module, args: tuple[Any, ...], path: Path, **options: Any) -> Path:
    """Export without the check (the tests compare themselves); the one call of gru_onnx.export."""
    return flat.export(model, args, path, check=False, **options).path


def denoiser() -> torch.nn.Module:
    """The RNNoise-shaped model: input 42, relu CustomGRUs of 24/48/96 units, reset_after=False,
    batch_first (examples/streaming_denoiser.py), seeded."""
    spec = importlib.util.spec_from_file_location("streaming_denoiser", ROOT / "examples" / "streaming_denoiser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.Denoiser().eval()


#: Export options per strategy for a lone GRU: plain (whole sequence) and streaming.
STRATEGIES = {
    "unrolled": ({"strategy": "unrolled"}, {"strategy": "unrolled", "streaming": True, "chunk": 1}),
    "loop": ({"strategy": "loop", "dynamic_seq": True}, {"strategy": "loop", "streaming": True}),
    "native": ({"strategy": "native", "dynamic_seq": True}, {"strategy": "native", "streaming": True}),
}


def lone_gru() -> gru_onnx.CustomGRU:
    """Two relu layers, reset-before (the native op's Cho form), batch first."""
    torch.manual_seed(1)
    return gru_onnx.CustomGRU(5, 6, num_layers=2, batch_first=True, activation="relu", reset_after=False).eval()
