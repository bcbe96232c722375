"""Send one stream, frame by frame, to a streaming model served by Triton (implicit state).

Needs a running Triton server on a repository written by ``gru-onnx package --triton`` (see
docs/guides/triton.md) and ``pip install gru-onnx[triton]``. Not run in CI: no Triton server is installable
there. Usage::

    python examples/triton_client.py --model denoiser --url localhost:8001 --frames 100

Triton carries the GRU states between the requests of one sequence (correlation id): the first
request says ``sequence_start``, the last ``sequence_end``; states start at zero each sequence.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    """Stream random frames through the model and print the latency per frame."""
    import tritonclient.grpc as grpcclient

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="denoiser")
    parser.add_argument("--url", default="localhost:8001")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--sequence-id", type=int, default=42)
    args = parser.parse_args()

    client = grpcclient.InferenceServerClient(args.url)
    config = client.get_model_config(args.model).config
    (spec,) = config.input  # the non-state input; states stay inside Triton
    width = [d for d in spec.dims if d != -1]  # [chunk=-1, features] without the batch axis
    outputs = [grpcclient.InferRequestedOutput(o.name) for o in config.output]
    rng = np.random.default_rng(0)
    latencies = []
    for i in range(args.frames):
        frame = rng.standard_normal((1, 1, *width)).astype(np.float32)  # batch 1, one frame
        request = grpcclient.InferInput(spec.name, list(frame.shape), "FP32")
        request.set_data_from_numpy(frame)
        started = time.perf_counter()
        result = client.infer(
            args.model,
            [request],
            outputs=outputs,
            sequence_id=args.sequence_id,
            sequence_start=i == 0,
            sequence_end=i == args.frames - 1,
        )
        latencies.append(time.perf_counter() - started)
    shapes = {o.name: result.as_numpy(o.name).shape for o in config.output}
    print(f"last frame's outputs: {shapes}")
    median, p99 = np.median(latencies) * 1e3, np.percentile(latencies, 99) * 1e3
    print(f"latency per frame: median {median:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
