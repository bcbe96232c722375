"""Keras 3's own ONNX export of GRU models with a free time axis, tried as a new user would.

For each model: ``model.export(path, format="onnx")`` on the torch backend, then ONNX Runtime
at several lengths against Keras itself; then the same model through gru-onnx. Writes
``benchmarks/results/keras_export.md`` and prints it.

    python benchmarks/keras_own_export.py
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"

import platform
import tempfile
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import torch
from keras import layers

import gru_onnx

LENGTHS = (1, 7, 16)
MODELS = {
    "GRU(16, relu) -> Dense(1)": lambda: [layers.GRU(16, activation="relu"), layers.Dense(1)],
    "GRU(16, return_sequences)": lambda: [layers.GRU(16, return_sequences=True)],
    "Bidirectional(GRU(8))": lambda: [layers.Bidirectional(layers.GRU(8))],
}


def make(stack: list[keras.layers.Layer]) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((None, 8), name="x"), *stack])


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:220]}"


def run_file(path: Path, model: keras.Model) -> list[str]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    cells = []
    for steps in LENGTHS:
        x = np.random.default_rng(steps).standard_normal((2, steps, 8)).astype(np.float32)
        try:
            got = session.run(None, {name: x})[0]
        except Exception as exc:
            cells.append(f"fails ({first_line(exc)[:160]})")
            continue
        want = keras.ops.convert_to_numpy(model(x, training=False))
        if got.shape != want.shape:
            cells.append(f"shape {list(got.shape)}, Keras {list(want.shape)}")
            continue
        error = float(np.abs(got - want).max())
        cells.append(f"{'ok' if error <= 1e-5 else 'WRONG'}, max abs {error:.1e}")
    return cells


def keras_export(model: keras.Model, folder: Path) -> tuple[str, list[str]]:
    path = folder / "keras.onnx"
    try:
        model.export(str(path), format="onnx")
    except Exception as exc:  # Keras 3.15 refuses a model that was never called
        if "never called" not in str(exc):
            return f"export failed: {first_line(exc)}", []
        model(np.zeros((2, 5, 8), np.float32))
        model.export(str(path), format="onnx")
    dims = [d.dim_param or d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
    return f"input {dims}", run_file(path, model)


def gru_onnx_export(model: keras.Model, folder: Path) -> tuple[str, list[str]]:
    module = gru_onnx.from_keras(model)
    result = gru_onnx.export(
        module, module.example_inputs(seq_len=5), folder / "g.onnx", shapes=gru_onnx.ShapeOptions(dynamic_seq=True)
    )
    return f"{result.strategy}, passed={result.passed}", run_file(result.path, model)


def main() -> None:
    versions = (
        f"keras {keras.__version__} (torch backend), torch {torch.__version__}, onnx {onnx.__version__}, "
        f"onnxruntime {ort.__version__}, gru-onnx {gru_onnx.__version__}, Python {platform.python_version()}"
    )
    header = "| model | exporter | file | " + " | ".join(f"ORT T={t}" for t in LENGTHS) + " |"
    lines = [
        "# Keras 3's own ONNX export vs gru-onnx, GRU models with a free time axis",
        "",
        f"Versions: {versions}. Input `keras.Input((None, 8))`, batch 2; each file run on ONNX Runtime (CPU) at",
        "several lengths and compared with the Keras model itself (ok: max abs error <= 1e-5).",
        "Keras' export needs the model to have been called once (here on a length-5 batch).",
        "",
        header,
        "|" + "---|" * (3 + len(LENGTHS)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for label, stack in MODELS.items():
            for exporter, fn in (("Keras `model.export`", keras_export), ("gru-onnx", gru_onnx_export)):
                described, cells = fn(make(stack()), Path(tmp))
                cells = cells or ["-"] * len(LENGTHS)
                lines.append(f"| {label} | {exporter} | {described} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    out = Path(__file__).parent / "results" / "keras_export.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
