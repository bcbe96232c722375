"""The seed's model, in Keras 3: a GRU subclass with ReLU in place of tanh, shipped with gru-onnx.

The original was written for tf.keras 2 and replaced tanh by relu inside an overridden ``step``,
which Keras 3 no longer calls. Its faithful Keras 3 form is a registered subclass whose
``__init__`` sets ``activation="relu"``: the math is the stock GRU's, so gru-onnx converts it as a
GRU. This script trains it for one epoch on random data, saves it, exports it from a *separate
process* (which must import this module to know the class: ``--import``), and checks the file
against Keras itself at two lengths the export never saw.

    python examples/keras_custom_gru.py [WORKDIR]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@keras.saving.register_keras_serializable(package="seed")
class CustomGRU(keras.layers.GRU):
    """A GRU whose candidate activation is ReLU (the seed's ``_activation``), in Keras 3's terms."""

    def __init__(self, units: int, **kwargs: object) -> None:
        kwargs.pop("activation", None)  # always relu: what the seed's subclass computed
        super().__init__(units, activation="relu", **kwargs)


def make_model() -> keras.Model:
    """The seed's model: ``CustomGRU(units=10, input_shape=(None, 5), return_sequences=True)``."""
    return keras.Sequential([keras.Input((None, 5)), CustomGRU(units=10, return_sequences=True)])


def main(workdir: str = ".") -> int:
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 12, 5)).astype("float32"), rng.standard_normal((64, 12, 10)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(folder / "custom_gru.keras")

    # Export from a separate process, as a user runs the command line: --import registers CustomGRU.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "gru_onnx.cli", "export", "--keras", str(folder / "custom_gru.keras"),
               "--import", "examples.keras_custom_gru", "-o", str(folder / "custom_gru.onnx")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
    print(done.stdout)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode

    # Against Keras itself, at lengths other than the export's example (16).
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "custom_gru.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    for steps in (3, 41):
        inputs = rng.standard_normal((4, steps, 5)).astype("float32")
        expected = keras.ops.convert_to_numpy(model(inputs, training=False))
        error = float(np.abs(session.run(None, {name: inputs})[0] - expected).max())
        worst = max(worst, error)
        print(f"against Keras, T={steps:>2}: max abs {error:.2e}")
    print("PASS" if worst <= 1e-5 else "FAIL")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
