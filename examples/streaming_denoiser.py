"""A noise suppressor run frame by frame: RNNoise's shape, relu GRUs, exported for streaming.

RNNoise's model reads 42 features per 10 ms frame and carries three GRUs (voice activity 24,
noise 48, denoise 96 units; relu candidate, the reset-before form of Keras) from frame to frame.
This example builds that shape (untrained, seeded), exports it with ``streaming=True`` (each GRU's
state becomes an input/output pair), runs it one frame per call with ``StreamingSession`` and
prints the error against PyTorch on the whole sequence and the latency per frame.

    python examples/streaming_denoiser.py [OUT.onnx]
    gru-onnx export --model examples.streaming_denoiser:make_model -o denoiser.onnx
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from gru_onnx import CustomGRU


class Denoiser(nn.Module):
    """Features ``[batch, frames, 42]`` -> per-band gains ``[batch, frames, 22]`` and voice activity."""

    def __init__(self, features: int = 42, sizes: tuple[int, int, int] = (24, 48, 96), bands: int = 22) -> None:
        super().__init__()
        vad, noise, denoise = sizes
        gru = {"batch_first": True, "activation": "relu", "reset_after": False}
        self.dense = nn.Linear(features, vad)
        self.vad_gru = CustomGRU(vad, vad, **gru)
        self.vad_out = nn.Linear(vad, 1)
        self.noise_gru = CustomGRU(vad + vad + features, noise, **gru)
        self.denoise_gru = CustomGRU(vad + noise + features, denoise, **gru)
        self.gains = nn.Linear(denoise, bands)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.tanh(self.dense(features))
        vad, _ = self.vad_gru(x)
        noise, _ = self.noise_gru(torch.cat([x, vad, features], dim=-1))
        denoise, _ = self.denoise_gru(torch.cat([vad, noise, features], dim=-1))
        return {"gains": torch.sigmoid(self.gains(denoise)), "vad": torch.sigmoid(self.vad_out(vad))}


def make_model() -> tuple[nn.Module, tuple[torch.Tensor], dict[str, object]]:
    """The factory ``gru-onnx export --model`` calls: (module, example_args, export options)."""
    torch.manual_seed(0)
    return Denoiser(), (torch.randn(2, 16, 42),), {"streaming": True}


def main(path: str = "denoiser.onnx", frames: int = 200) -> float:
    """Export, stream ``frames`` frames one at a time; returns the largest error."""
    import gru_onnx

    model, args, options = make_model()
    result = gru_onnx.export(model, args, path, streaming=gru_onnx.StreamingOptions(enabled=bool(options["streaming"])))
    print(f"{result.path}: {result.strategy}, parity {'PASS' if result.passed else 'FAIL'}")
    for state in result.metadata["streaming"]["states"]:
        print(f"  state {state['input']} -> {state['output']} ({state['module']}, {state['shape']})")

    features = torch.randn(1, frames, 42)
    with torch.no_grad():
        whole = model.eval()(features)
    latencies, gains = [], []
    with gru_onnx.StreamingSession(path, threads=1) as session:
        for t in range(frames):
            frame = {"features": features[:, t : t + 1].numpy()}
            start = time.perf_counter()
            out = session.run(frame)
            latencies.append(time.perf_counter() - start)
            gains.append(out["gains"])
    error = float(np.abs(np.concatenate(gains, axis=1) - whole["gains"].numpy()).max())
    median = float(np.median(latencies)) * 1e6
    print(f"{frames} frames, one per call: max |onnx - torch| = {error:.2e}, median latency {median:.0f} us/frame")
    return error


if __name__ == "__main__":
    err = main(*sys.argv[1:2])
    print("PASS" if err < 1e-4 else "FAIL")
    sys.exit(0 if err < 1e-4 else 1)
