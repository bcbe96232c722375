"""The blog's model in Keras: a GRU with a ReLU candidate (in place of tanh), shipped to ONNX.

Trains briefly on a toy task (the running mean of a noisy signal), converts the Keras model
with gru-onnx, exports it with a dynamic time axis and checks the file against Keras itself at
several lengths. Run from the repository root (needs gru-onnx[keras]):

    python examples/keras_relu_gru.py [OUTPUT.onnx]

The same from the command line, for a saved model: gru-onnx export --keras model.keras
"""

from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "torch"  # gru-onnx reads Keras models on the torch backend

import keras
import numpy as np
from keras import layers

import gru_onnx


def make_model() -> keras.Model:
    return keras.Sequential([
        keras.Input((None, 8), name="signal"),  # None: any number of time steps
        layers.GRU(32, activation="relu"),  # the blog's ReLU GRU (Keras' default gates)
        layers.Dense(1, name="mean"),
    ])  # fmt: skip


def toy_data(n: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, 8)).astype(np.float32)
    return x, x.mean(axis=(1, 2))[:, None].astype(np.float32)


def main(output: str = "keras_relu_gru.onnx") -> int:
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer="adam", loss="mse")
    x, y = toy_data(256, 12)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    print(f"trained in Keras: loss {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f}")

    # Ship it: a torch module with a CustomGRU, exported with a dynamic time axis.
    module = gru_onnx.from_keras(model)
    result = gru_onnx.export(
        module, module.example_inputs(seq_len=12), output, shapes=gru_onnx.ShapeOptions(dynamic_seq=True)
    )
    print(f"{result.path}: {result.strategy}, {result.num_nodes} nodes, {result.file_size / 1024:.0f} KiB")

    # Parity against Keras itself, at lengths the example did not have.
    import onnxruntime as ort

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for steps in (1, 12, 50):
        test_x, _ = toy_data(4, steps, seed=steps)
        onnx_y = session.run(None, {"signal": test_x})[0]
        keras_y = keras.ops.convert_to_numpy(model(test_x, training=False))
        error = float(np.abs(onnx_y - keras_y).max())
        worst = max(worst, error)
        print(f"parity vs Keras, T={steps:>2}: max abs {error:.2e}")
    ok = result.passed and worst <= 1e-5
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
