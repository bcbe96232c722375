"""Benchmark: per-frame latency of a streaming file against PyTorch eager carrying the states.

The model is the RNNoise-shaped noise suppressor of ``examples/streaming_denoiser.py`` (input 42,
GRUs of 24/48/96 units, relu candidate, reset-before form). It runs one frame per call, states
carried from call to call:

- PyTorch eager: the model's layers called by hand with each GRU's ``hx`` (1 thread, inference mode);
- ONNX Runtime CPU (1 intra-op thread) on streaming files: a dynamic chunk length (auto: loop),
  ``chunk=1`` (auto: unrolled) and the native ONNX GRU op (exact here: relu and sigmoid are in the
  op's list), each fed by hand with ``InferenceSession.run``, and the dynamic and ``chunk=1`` files
  through ``gru_onnx.StreamingSession`` (its bookkeeping included), with the states carried as
  NumPy arrays or kept bound as ONNX Runtime values between calls (I/O binding, the default).

Each variant's outputs are compared with eager's over the timed frames (max error column).

    python benchmarks/streaming.py               # table -> benchmarks/results/streaming.md
    python benchmarks/streaming.py --quick       # a smoke run, printed only
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gru_onnx  # noqa: E402
from examples.streaming_denoiser import Denoiser  # noqa: E402
from gru_onnx.options import groups_from_flat  # noqa: E402

FILES = {  # label -> export options
    "dynamic chunk (auto: loop)": {"streaming": True},
    "chunk=1 (auto: unrolled)": {"streaming": True, "chunk": 1},
    "native GRU op, dynamic chunk": {"streaming": True, "strategy": "native"},
}


def machine() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model} (lscpu), 2 cores shared with other jobs (noisy), {platform.system()} {platform.machine()}"


def versions() -> str:
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"onnxruntime {ort.__version__}, gru-onnx {gru_onnx.__version__}"
    )


def eager_stepper(model: Denoiser, batch: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """One frame through the model with every GRU's state carried by hand (what a PyTorch user writes)."""
    states: list[torch.Tensor | None] = [None, None, None]

    def step(frame: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(model.dense(frame))
        vad, states[0] = model.vad_gru(x, states[0])
        noise, states[1] = model.noise_gru(torch.cat([x, vad, frame], -1), states[1])
        denoise, states[2] = model.denoise_gru(torch.cat([vad, noise, frame], -1), states[2])
        return torch.sigmoid(model.gains(denoise))

    return step


def ort_stepper(path: Path, batch: int) -> Callable[[np.ndarray], np.ndarray]:
    """One frame through a streaming file on ONNX Runtime, states fed by hand from the metadata."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    pairs = gru_onnx.read_metadata(path)["streaming"]["states"]
    outputs = [o.name for o in session.get_outputs()]
    states = {p["input"]: np.zeros((batch, *p["shape"][1:]), np.float32) for p in pairs}
    wanted = ["gains"] + [p["output"] for p in pairs]
    assert all(w in outputs for w in wanted)

    def step(frame: np.ndarray) -> np.ndarray:
        gains, *new = session.run(wanted, {"features": frame, **states})
        for p, value in zip(pairs, new, strict=True):
            states[p["input"]] = value
        return gains

    return step


def session_stepper(path: Path, batch: int, io_binding: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """StreamingSession: states bound as ONNX Runtime values (``io_binding``) or carried as NumPy."""
    session = gru_onnx.StreamingSession(path, threads=1, io_binding=io_binding)
    return lambda frame: session.run({"features": frame})["gains"]


def measure(step: Callable[[Any], Any], frames: list[Any], warmup: int) -> tuple[list[float], list[np.ndarray]]:
    """Per-frame seconds and outputs; the first ``warmup`` frames run untimed."""
    seconds, outputs = [], []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        out = step(frame)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            seconds.append(elapsed)
        outputs.append(np.asarray(out))
    return seconds, outputs


def run(batches: list[int], count: int, warmup: int) -> list[dict]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Denoiser().eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for label, options in FILES.items():
            paths[label] = Path(tmp) / f"{len(paths)}.onnx"
            groups = groups_from_flat(options).as_kwargs()
            result = gru_onnx.export(model, (torch.randn(2, 8, 42),), paths[label], **groups)
            assert result.passed, result.parity.summary()
        for batch in batches:
            features = torch.randn(batch, warmup + count, 42)
            torch_frames = [features[:, t : t + 1] for t in range(warmup + count)]
            np_frames = [f.numpy() for f in torch_frames]
            with torch.inference_mode():
                eager_s, eager_out = measure(eager_stepper(model, batch), torch_frames, warmup)
            variants = [("PyTorch eager, states by hand", eager_s, eager_out)]
            for label, path in paths.items():
                s, out = measure(ort_stepper(path, batch), np_frames, warmup)
                variants.append((f"ORT: {label}", s, out))
            for label, binding in (("states as NumPy", False), ("states bound (I/O binding)", True)):
                for file in ("dynamic chunk (auto: loop)", "chunk=1 (auto: unrolled)"):
                    s, out = measure(session_stepper(paths[file], batch, binding), np_frames, warmup)
                    variants.append((f"StreamingSession, {label}: {file}", s, out))
            reference = np.concatenate(eager_out, axis=1)
            eager_median = float(np.median(eager_s))
            for label, seconds, outputs in variants:
                median = float(np.median(seconds))
                row = {
                    "batch": batch,
                    "variant": label,
                    "median_us": 1e6 * median,
                    "p99_us": 1e6 * float(np.percentile(seconds, 99)),
                    "speedup": eager_median / median,
                    "max_err": float(np.abs(np.concatenate(outputs, axis=1) - reference).max()),
                }
                rows.append(row)
                print(f"batch {batch}  {label:45s} median {row['median_us']:7.1f} us  p99 {row['p99_us']:7.1f} us  "
                      f"x{row['speedup']:.1f}  err {row['max_err']:.1e}", flush=True)  # fmt: skip
    return rows


def table(rows: list[dict], count: int, warmup: int) -> str:
    lines = [
        f"One frame per call, {count} timed frames after {warmup} warm-up frames, per-frame wall time "
        "(median, 99th percentile). Speed-up: PyTorch eager's median / the row's median. Max error: "
        "largest |gains - eager gains| over all frames.",
        "",
        "| batch | variant | median us/frame | p99 us/frame | speed-up vs eager | max error |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['variant']} | {r['median_us']:.1f} | {r['p99_us']:.1f} "
            f"| {r['speedup']:.1f}x | {r['max_err']:.1e} |"
        )
    return "\n".join(lines)


def reading(rows: list[dict]) -> str:
    """What the binding rows say: bound / NumPy states per batch and file (>1: binding is slower)."""
    median = {(r["batch"], r["variant"]): r["median_us"] for r in rows}
    ratios = []
    for batch, variant in median:
        if variant.startswith("StreamingSession, states bound"):
            file = variant.split(": ", 1)[1]
            plain = median[(batch, f"StreamingSession, states as NumPy: {file}")]
            ratios.append(f"batch {batch}, {file}: {median[(batch, variant)] / plain:.2f}x")
    return (
        "Reading: on the CPU provider, states kept bound as ONNX Runtime values take longer per "
        f"frame than states carried as NumPy arrays ({'; '.join(ratios)}: bound / NumPy median), "
        "so `StreamingSession` binds by default only on GPU providers, where binding saves the "
        "host-device copies of the states (not yet measured here: no GPU was lent)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few frames; print only")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "streaming.md")
    args = parser.parse_args()
    count, warmup = (100, 10) if args.quick else (args.frames, args.warmup)
    rows = run([1, 8], count, warmup)
    text = table(rows, count, warmup)
    if args.quick:
        print(text)
        return
    header = (
        "# Streaming: per-frame latency, ONNX Runtime vs PyTorch eager\n\n"
        "RNNoise-shaped model (`examples/streaming_denoiser.py`): input 42, GRUs of 24/48/96 units, relu "
        "candidate, sigmoid gates, reset-before form; ONNX Runtime CPU provider with 1 intra-op thread, "
        "PyTorch with `torch.set_num_threads(1)` in inference mode.\n\n"
        f"Machine: {machine()}.  \nVersions: {versions()}.  \n"
        f"Produced by `python benchmarks/streaming.py` on {time.strftime('%Y-%m-%d')}.\n\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + text + "\n\n" + reading(rows) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
