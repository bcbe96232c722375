"""Benchmark: unrolled vs loop vs ONNX Runtime's native GRU op, by sequence length.

For each length the same CustomGRU (relu candidate, sigmoid gates: a combination the native
op expresses exactly, so it is a fair baseline) is exported three ways and run on ONNX Runtime
in this process. Reported: median latency over repeats, each strategy's ratio to the native
op, export time (in one process: torchlib's registry is built by the first export only) and
file size. ``benchmarks/speed.py`` measures the crossover that sets ``UNROLLED_MAX_LEN`` in
``exporters/auto.py``.

    python benchmarks/strategies.py                 # full table -> benchmarks/results/strategies.md
    python benchmarks/strategies.py --quick         # a smoke run, printed only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import gru_onnx
from gru_onnx import CustomGRU

STRATEGIES = ("native", "unrolled", "loop")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"


def versions() -> str:
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"onnxruntime {ort.__version__}, gru-onnx {gru_onnx.__version__}"
    )


def time_session(path: Path, feeds: dict[str, np.ndarray], repeats: int, threads: int) -> float:
    """Median seconds per run after warm-up."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(5):
        session.run(None, feeds)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(lengths: list[int], batch: int, hidden: int, repeats: int, threads: int) -> list[dict]:
    rows = []
    torch.manual_seed(0)
    gru = CustomGRU(32, hidden, activation="relu", recurrent_activation="sigmoid")
    with tempfile.TemporaryDirectory() as tmp:
        for seq in lengths:
            x = torch.randn(seq, batch, 32)
            feeds = {"input": x.numpy()}
            row = {"seq": seq}
            for strategy in STRATEGIES:
                path = Path(tmp) / f"{strategy}_{seq}.onnx"
                start = time.perf_counter()
                result = gru_onnx.export(
                    gru, (x,), path, graph=gru_onnx.GraphOptions(strategy=strategy),
                    shapes=gru_onnx.ShapeOptions(dynamic_batch=batch > 1), check=None,
                )  # fmt: skip
                row[f"{strategy}_export_s"] = time.perf_counter() - start
                row[f"{strategy}_kib"] = result.file_size / 1024
                row[f"{strategy}_ms"] = 1e3 * time_session(path, feeds, repeats, threads)
            rows.append(row)
            print(
                f"T={seq:5d}  native {row['native_ms']:.3f} ms  unrolled {row['unrolled_ms']:.3f} ms  "
                f"loop {row['loop_ms']:.3f} ms",
                flush=True,
            )
    return rows


def table(rows: list[dict], batch: int, hidden: int, repeats: int, threads: int) -> str:
    lines = [
        f"batch {batch}, input 32, hidden {hidden}, 1 layer, relu/sigmoid; ONNX Runtime CPU provider, "
        f"{threads} intra-op thread(s); median of {repeats} runs after 5 warm-up runs.",
        "",
        "| T | native op ms | unrolled ms | loop ms | unrolled / native | loop / native | unrolled / loop "
        "| unrolled export s | unrolled KiB | loop KiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seq']} | {r['native_ms']:.3f} | {r['unrolled_ms']:.3f} | {r['loop_ms']:.3f} "
            f"| {r['unrolled_ms'] / r['native_ms']:.2f} | {r['loop_ms'] / r['native_ms']:.2f} "
            f"| {r['unrolled_ms'] / r['loop_ms']:.2f} | {r['unrolled_export_s']:.1f} "
            f"| {r['unrolled_kib']:.0f} | {r['loop_kib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few lengths and repeats; print only")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "strategies.md")
    args = parser.parse_args()
    lengths = [4, 16] if args.quick else [1, 4, 16, 32, 64, 128, 256, 512]
    repeats = 5 if args.quick else args.repeats
    sections = []
    for batch, hidden in [(1, 64)] if args.quick else [(1, 64), (16, 128)]:
        rows = run(lengths, batch, hidden, repeats, args.threads)
        sections.append(table(rows, batch, hidden, repeats, args.threads))
    text = "\n\n".join(sections)
    if args.quick:
        print(text)
        return
    header = (
        "# Export strategies: latency by sequence length\n\n"
        f"Machine: {machine()}.  \nVersions: {versions()}.  \n"
        f"Produced by `python benchmarks/strategies.py` on {time.strftime('%Y-%m-%d')}.\n\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + text + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
