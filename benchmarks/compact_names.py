"""Benchmark: file sizes before and after compact names (and the IR-10 annotations dropped).

A 2-layer CustomGRU (input 64, hidden 256, relu) at T=100, unrolled and loop, float32 and int8
(both modes, per channel), written three ways in this process:

- as before: long scope names, IR 10 with torch.onnx's annotations (``metadata_props`` on the
  graph and value infos), i.e. :mod:`gru_onnx.compact` switched off and the IR stamped 10;
- IR 8: the annotations dropped (what stamping the lowest IR version does), names long;
- IR 8 + compact names: what gru-onnx writes now.

Each variant's outputs on ONNX Runtime are checked equal to the first's (names change nothing).

    python benchmarks/compact_names.py   # -> benchmarks/results/compact_names.md
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import machine, versions

from gru_onnx import (
    CustomGRU,
    GraphOptions,
    QuantizeOptions,
    ShapeOptions,
    compact,
    export,
    exporting,
    irversion,
    quantization,
    quantize,
)

RESULT = Path(__file__).resolve().parent / "results" / "compact_names.md"
VARIANTS = ("before", "ir8", "compact")
KINDS = ("float32", "weights", "dynamic")


@contextlib.contextmanager
def variant(name: str) -> Iterator[None]:
    """gru-onnx as it writes files in ``name`` (see the module docstring)."""
    users = (exporting, quantization)  # the modules that call compact_names when they write
    keep_names, keep_stamp = compact.compact_names, irversion.stamp
    if name in ("before", "ir8"):
        for user in users:
            user.compact_names = lambda model: model
    if name == "before":
        irversion.stamp = lambda model, ir_version=None: keep_stamp(model, 10)
    try:
        yield
    finally:
        for user in users:
            user.compact_names = keep_names
        irversion.stamp = keep_stamp


def write(module: CustomGRU, strategy: str, folder: Path) -> dict[str, Path]:
    source = folder / f"{strategy}_float32.onnx"
    export(
        module, (torch.randn(100, 2, 64),), source, graph=GraphOptions(strategy=strategy),
        shapes=ShapeOptions(dynamic_seq=strategy == "loop"), check=None,
    )  # fmt: skip
    paths = {"float32": source}
    for mode in ("weights", "dynamic"):
        paths[mode] = folder / f"{strategy}_{mode}.onnx"
        quantize(source, paths[mode], QuantizeOptions(mode))
    return paths


def run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def main() -> None:
    torch.manual_seed(0)
    module = CustomGRU(64, 256, num_layers=2, activation="relu").eval()
    x = np.random.default_rng(0).standard_normal((100, 2, 64)).astype(np.float32)
    sizes: dict[tuple[str, str, str], int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for strategy in ("unrolled", "loop"):
            outputs: dict[str, np.ndarray] = {}
            for name in VARIANTS:
                folder = Path(scratch) / name
                folder.mkdir(exist_ok=True)
                torch.manual_seed(1)
                with variant(name):
                    paths = write(module, strategy, folder)
                for kind, path in paths.items():
                    sizes[strategy, kind, name] = path.stat().st_size
                    got = run(path, x)
                    np.testing.assert_array_equal(outputs.setdefault(kind, got), got)
    lines = [
        "# File sizes before and after compact names",
        "",
        f"Machine: {machine()}.  ",
        f"Versions: {versions()}.  ",
        "Command: `python benchmarks/compact_names.py`.",
        "",
        "2 layers, input 64, hidden 256, relu, T=100; int8 per channel. *before*: long scope names and IR 10 "
        "with torch.onnx's annotations; *IR 8*: the annotations dropped; *now*: IR 8 and compact names. "
        "Outputs on ONNX Runtime are identical across the three.",
        "",
        "| strategy | file | before | IR 8 | now | now / before | int8 / float32 before | int8 / float32 now |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy in ("unrolled", "loop"):
        for kind in KINDS:
            b, i, n = (sizes[strategy, kind, v] for v in VARIANTS)
            fb, fn = sizes[strategy, "float32", "before"], sizes[strategy, "float32", "compact"]
            ratios = "| | |" if kind == "float32" else f"| {b / fb:.3f} | {n / fn:.3f} |"
            lines.append(f"| {strategy} | {kind} | {b / 1024:.0f} KiB | {i / 1024:.0f} KiB | {n / 1024:.0f} KiB "
                         f"| {n / b:.3f} {ratios}")  # fmt: skip
    RESULT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
