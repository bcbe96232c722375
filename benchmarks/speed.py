"""Benchmark: speed at batch 1 (issue 10), before and after the 10-node step.

Every file is timed with :mod:`gru_onnx.bench`'s interleaving: per configuration, ONNX
Runtime's fused GRU op (same weights), the file written by this checkout ("after") and the
file written by an older checkout ("before", exported in a subprocess from ``--before-src``)
run one call each per round, so machine noise is shared; the ratio is the median of the
per-round ratios to the fused op, and the table gives the median over ``--repeats`` blocks.

    git archive main | tar -x -C /tmp/gru-main && ln -s ../exporters /tmp/gru-main/gru_onnx/exporters
    python benchmarks/speed.py --before-src /tmp/gru-main   # -> benchmarks/results/speed.md
    python benchmarks/speed.py --quick                        # a smoke run, printed only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

import gru_onnx
from gru_onnx import CustomGRU, GraphOptions, ShapeOptions
from gru_onnx.bench import fused_op_files, interleaved, machine, versions
from gru_onnx.runners import make_runner

INPUT, HIDDEN = 64, 128
#: (label, strategy, activation, opset, T, B)
CASES = [
    ("loop, relu", "loop", "relu", 18, 200, 1),
    ("loop, relu", "loop", "relu", 18, 200, 16),
    ("loop, gelu (opset 18)", "loop", "gelu", 18, 200, 1),
    ("loop, gelu (opset 18)", "loop", "gelu", 18, 200, 16),
    ("loop, gelu (opset 20, Gelu op)", "loop", "gelu", 20, 200, 1),
    ("unrolled, relu", "unrolled", "relu", 18, 200, 1),
    ("unrolled, relu", "unrolled", "relu", 18, 64, 1),
    ("unrolled, relu", "unrolled", "relu", 18, 200, 16),
    ("loop, relu, reset before", "loop", "relu(reset_before)", 18, 200, 1),
]
EXPORT_SCRIPT = """
import sys, json, torch, gru_onnx
from gru_onnx import CustomGRU
for job in json.loads(sys.argv[1]):
    torch.manual_seed(0)
    act, _, form = job["activation"].partition("(")
    gru = CustomGRU(job["input"], job["hidden"], activation=act, reset_after=form != "reset_before)")
    x = torch.randn(job["seq"], 2, job["input"])
    flat = dict(strategy=job["strategy"], opset=job["opset"], check=False, dynamic_seq=job["strategy"] == "loop")
    if hasattr(gru_onnx, "GraphOptions"):  # gru-onnx 0.2 and later take option groups
        from gru_onnx.options import groups_from_flat
        gru_onnx.export(gru, (x,), job["path"], **groups_from_flat(flat).as_kwargs())
    else:
        gru_onnx.export(gru, (x,), job["path"], **flat)
"""


def ort_session(path: Path, provider: str, threads: int) -> Any:
    """A run function ``feeds -> outputs`` on ONNX Runtime through gru-onnx's runner."""
    runner = make_runner(provider, path, threads=threads).open()
    return runner.run


def export_files(jobs: list[dict], src: Path | None) -> None:
    """Export ``jobs`` with this checkout (``src`` None) or, in a subprocess, an older one."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    subprocess.run([sys.executable, "-c", EXPORT_SCRIPT, json.dumps(jobs)], check=True, env=env, cwd=src or ".")


def model_for(activation: str) -> CustomGRU:
    torch.manual_seed(0)
    act, _, form = activation.partition("(")
    return CustomGRU(INPUT, HIDDEN, activation=act, reset_after=form != "reset_before)")


def ratios(paths: list[Path], activation: str, seq: int, batch: int, runs: int, repeats: int) -> list[list[float]]:
    """Per file, the median per-round ratio to the fused op in each of ``repeats`` blocks."""
    model = onnx.load(paths[0])
    with tempfile.TemporaryDirectory() as tmp:
        ((_, _, fused, fused_feeds),) = fused_op_files(model, gru_onnx.read_metadata(model), batch, seq, Path(tmp))
        x = {"input": np.random.default_rng(0).standard_normal((seq, batch, INPUT)).astype(np.float32)}
        sessions = [(ort_session(fused, "cpu", 1), fused_feeds)] + [(ort_session(p, "cpu", 1), x) for p in paths]
        calls = [lambda s=s, f=f: s(f) for s, f in sessions]
        out: list[list[float]] = [[] for _ in paths]
        for _ in range(repeats):
            times = interleaved(calls, warmup=10, runs=runs)
            for i in range(len(paths)):
                out[i].append(statistics.median(t / b for t, b in zip(times[i + 1], times[0], strict=True)))
        return out


def torch_ratio(seq: int, batch: int, runs: int, repeats: int) -> float:
    """PyTorch eager (the CustomGRU, relu) against the fused op, interleaved."""
    gru = model_for("relu").eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        gru_onnx.export(gru, (torch.randn(seq, 2, INPUT),), path, graph=GraphOptions(strategy="loop"), check=None)
        model = onnx.load(path)
        ((_, _, fused, feeds),) = fused_op_files(model, gru_onnx.read_metadata(model), batch, seq, Path(tmp))
        session = ort_session(fused, "cpu", 1)
        x = torch.randn(seq, batch, INPUT)
        torch.set_num_threads(1)

        def eager() -> None:
            with torch.no_grad():
                gru(x)

        blocks = []
        for _ in range(repeats):
            base, mine = interleaved([lambda: session(feeds), eager], warmup=5, runs=max(runs // 5, 10))
            blocks.append(statistics.median(t / b for t, b in zip(mine, base, strict=True)))
        return statistics.median(blocks)


def linearity(runs: int) -> list[tuple[int, float, float, float]]:
    """Loop relu at B=1 for growing T, one length at a time: ``(T, median ms, median and fastest
    ms per step)``. Not interleaved: alternating sessions with large outputs slowed calls from
    T=400 on in a way neither shows alone (measured here), which is about the alternation, not
    the file."""
    lengths = (50, 100, 200, 400, 1000)
    gru = model_for("relu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loop.onnx"
        gru_onnx.export(gru, (torch.randn(8, 2, INPUT),), path, graph=GraphOptions(strategy="loop"),
                        shapes=ShapeOptions(dynamic_seq=True), check=None)
        session = ort_session(path, "cpu", 1)
        for seq in lengths:
            feeds = {"input": np.random.default_rng(seq).standard_normal((seq, 1, INPUT)).astype(np.float32)}
            (times,) = interleaved([lambda f=feeds: session(f)], warmup=5, runs=runs)
            median = statistics.median(times)
            rows.append((seq, 1e3 * median, 1e3 * median / seq, 1e3 * min(times) / seq))
            print(f"  T={seq}: {rows[-1][1]:.3f} ms, {rows[-1][2]:.4f} ms/step (fastest {rows[-1][3]:.4f})", flush=True)
    return rows


def crossover(runs: int, repeats: int) -> list[tuple[int, int, float]]:
    """``(B, T, unrolled / loop)`` for relu, the new writer: where auto's unrolled limit sits."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, 16):
            for seq in (16, 64, 128, 256, 512):
                paths = []
                for strategy in ("unrolled", "loop"):
                    path = Path(tmp) / f"{strategy}_{seq}.onnx"
                    x = torch.randn(seq, 2, INPUT)
                    gru_onnx.export(model_for("relu"), (x,), path, graph=GraphOptions(strategy=strategy), check=None)
                    paths.append(path)
                unrolled, loop = ratios(paths, "relu", seq, batch, runs, repeats)
                rows.append((batch, seq, statistics.median(unrolled) / statistics.median(loop)))
                print(f"  crossover B={batch} T={seq}: unrolled/loop {rows[-1][2]:.2f}", flush=True)
    return rows


def openvino_rows(runs: int, repeats: int) -> list[tuple[str, float, float]]:
    """``(file, static, dynamic)``: OpenVINO CPU against ONNX Runtime's fused op, relu, T=64, B=1,
    compiled for the input's static shape and with the file's dynamic axes."""
    import openvino as ov

    rows = []
    seq = 64
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in ("unrolled", "loop"):
            path = Path(tmp) / f"{strategy}.onnx"
            x = torch.randn(seq, 2, INPUT)
            gru_onnx.export(model_for("relu"), (x,), path, graph=GraphOptions(strategy=strategy), check=None)
            model = onnx.load(path)
            ((_, _, fused, fused_feeds),) = fused_op_files(model, gru_onnx.read_metadata(model), 1, seq, Path(tmp))
            feeds = {"input": np.random.default_rng(0).standard_normal((seq, 1, INPUT)).astype(np.float32)}
            static_call = make_runner("openvino", path, threads=1).open().timed(feeds)
            core = ov.Core()
            config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
            dynamic = core.compile_model(core.read_model(str(path)), "CPU", config).create_infer_request()
            base = ort_session(fused, "cpu", 1)
            runs_on = [(base, fused_feeds), (lambda _f, c=static_call: c(), feeds), (dynamic.infer, feeds)]
            calls = [lambda run=run, f=f: run(f) for run, f in runs_on]
            found = [[], []]
            for _ in range(repeats):
                times = interleaved(calls, warmup=5, runs=runs)
                for i in (0, 1):
                    found[i].append(statistics.median(t / b for t, b in zip(times[i + 1], times[0], strict=True)))
            rows.append((strategy, statistics.median(found[0]), statistics.median(found[1])))
            print(f"  openvino {strategy}: static {rows[-1][1]:.2f}x dynamic {rows[-1][2]:.2f}x", flush=True)
    return rows


def export_seconds(seq: int = 1000) -> float:
    """Wall time of the default (auto) export with its check, relu, at ``seq`` steps."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        gru_onnx.export(model_for("relu"), (torch.randn(seq, 2, INPUT),), Path(tmp) / "m.onnx")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-src", type=Path, help="source tree of the older writer (see the module doc)")
    parser.add_argument("--runs", type=int, default=300, help="interleaved rounds per block")
    parser.add_argument("--repeats", type=int, default=3, help="blocks per configuration")
    parser.add_argument("--quick", action="store_true", help="few runs, printed only")
    parser.add_argument("--linearity", action="store_true", help="only the latency-against-T table, printed")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed.md")
    args = parser.parse_args()
    runs, repeats = (30, 1) if args.quick else (args.runs, args.repeats)
    if args.linearity:
        for row in linearity(max(runs // 3, 20)):
            print("| {} | {:.3f} | {:.4f} | {:.4f} |".format(*row))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jobs = {"after": [], "before": []}
        for i, (_, strategy, activation, opset, seq, _) in enumerate(CASES):
            for which in jobs:
                job = {"strategy": strategy, "opset": opset, "activation": activation, "seq": seq}
                jobs[which].append({"path": str(folder / f"{which}_{i}.onnx"), "input": INPUT, "hidden": HIDDEN, **job})
        export_files(jobs["after"], None)
        if args.before_src:
            export_files(jobs["before"], args.before_src.resolve())
        for i, (label, _, activation, _, seq, batch) in enumerate(CASES):
            paths = [folder / f"after_{i}.onnx"] + ([folder / f"before_{i}.onnx"] if args.before_src else [])
            found = ratios(paths, activation, seq, batch, runs, repeats)
            rows.append((label, seq, batch, [statistics.median(r) for r in found], found))
            print(f"{label:34s} T={seq:4d} B={batch:2d}: " + "  ".join(f"{statistics.median(r):.2f}x" for r in found),
                  flush=True)  # fmt: skip
    eager = torch_ratio(200, 1, runs, repeats)
    print(f"PyTorch eager relu T=200 B=1: {eager:.2f}x", flush=True)
    lin = linearity(max(runs // 3, 20))
    cross = crossover(max(runs // 2, 20), repeats)
    vino = openvino_rows(max(runs // 3, 20), repeats)
    seconds = export_seconds()
    print(f"default export T=1000: {seconds:.2f} s")
    text = render(rows, eager, lin, cross, vino, seconds, runs, repeats, bool(args.before_src))
    if args.quick:
        print(text)
        return
    args.out.write_text(text)
    print(f"wrote {args.out}")


def render(rows, eager, lin, cross, vino, seconds, runs, repeats, before) -> str:
    v = versions()
    lines = [
        "# Speed at batch 1: the 10-node step (issue 10)",
        "",
        f"Machine: {machine()}; a shared 2-core VM (two other jobs ran beside it), so absolute times are noisy "
        "and only ratios measured in one process are reported.  ",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".  ",
        f"Produced by `python benchmarks/speed.py --before-src /tmp/gru-main` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"ONNX Runtime CPU provider, 1 intra-op thread; input {INPUT}, hidden {HIDDEN}, 1 layer, sigmoid gates. "
        "Each cell is the latency ratio to ONNX Runtime's fused `GRU` op with the same weights: per block "
        f"{runs} rounds in which the fused op, the file written now (after) and the file written by main before "
        "this change (before) run one call each; the median of the per-round ratios, then the median over "
        f"{repeats} blocks (range in brackets).",
        "",
        "| file | T | B | before | after | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    targets = {("loop, relu", 200, 1): 2.4, ("loop, gelu (opset 18)", 200, 1): 2.7, ("unrolled, relu", 64, 1): 2.4,
               ("loop, relu", 200, 16): 1.2}  # fmt: skip
    for label, seq, batch, medians, blocks in rows:
        after = f"{medians[0]:.2f}x [{min(blocks[0]):.2f}-{max(blocks[0]):.2f}]"
        prior = f"{medians[1]:.2f}x" if before else "-"
        target = targets.get((label, seq, batch))
        verdict = "" if target is None else f"<= {target}x: {'met' if medians[0] <= target else 'NOT met'}"
        lines.append(f"| {label} | {seq} | {batch} | {prior} | {after} | {verdict} |")
    lines.append(f"| PyTorch eager (CustomGRU), relu | 200 | 1 | | {eager:.2f}x | |")
    lines += [
        "",
        "## Latency against T (loop, relu, B=1)",
        "",
        "| T | median ms | median ms per step | fastest call, ms per step |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {t} | {ms:.3f} | {per:.4f} | {fast:.4f} |" for t, ms, per, fast in lin]
    lines += [
        "",
        "## Unrolled against loop (the new step; sets auto's unrolled limit)",
        "",
        "| B | T | unrolled / loop |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {b} | {t} | {r:.2f} |" for b, t, r in cross]
    lines += [
        "",
        "## OpenVINO: static against dynamic shapes (relu, T=64, B=1, ratio to ONNX Runtime's fused op)",
        "",
        "| file | compiled for the input's static shape | compiled with the file's dynamic axes |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {st:.2f}x | {dy:.2f}x |" for name, st, dy in vino]
    lines += [
        "",
        f"Default export (auto, relu, check included) at T=1000: {seconds:.2f} s (limit 3 s).",
        "",
        "No GPU was available for this run: nothing here is a GPU number (CUDA, TensorRT and CUDA graphs "
        "are still to be measured).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
