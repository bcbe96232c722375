"""Benchmark: CustomGRU and its ONNX files on one NVIDIA GPU (issue 20), in at most 5 minutes.

Three parts, each a list of small guarded steps. Every step appends its row to ``gpu.json`` and
rewrites ``gpu.md`` at once, so a run cut off halfway still leaves its numbers; a failing step
records its error line and the run goes on; past the deadline (``--budget-s``) the remaining
steps are recorded as "not measured: time budget" instead of the run being killed.

1. PyTorch on CUDA (always): batch 1 and 16, per frame (T=1) and T=200, relu and gelu, float32
   and float16: cuDNN's ``nn.GRU`` (tanh, the speed bar, also replayed as a CUDA graph), the
   CustomGRU eager, compiled (``torch.compile``) and replayed as a CUDA graph. Median latency,
   ratio to cuDNN in the same process, max abs error against the float64 model on the CPU.
2. ONNX Runtime's CUDA execution provider (when ``onnxruntime-gpu`` is importable): per strategy
   x {relu, gelu, hard_sigmoid gates} x {float32, float16}, plus a streaming and two int8 files:
   parity, where the nodes ran (read from ONNX Runtime's profiler, so a GRU op handed back to the
   CPU shows), latency with I/O binding beside ONNX Runtime's fused ``GRU`` op, and with CUDA
   graphs (``enable_cuda_graph``) for unrolled files; then unrolled against loop at T = 64..512,
   the measured basis for auto's unrolled length cap with ``--target cuda``.
3. TensorRT's execution provider: measured where it loads, else "not measurable here" and why.

TF32 is off throughout (``NVIDIA_TF32_OVERRIDE=0``, torch's TF32 flags, ``use_tf32=0``). Steps run
most useful first (:data:`ORDER`): PyTorch eager and CUDA graphs, ONNX Runtime float32, the unrolled
cap, float16, streaming and int8, then ``torch.compile`` (it unrolls the loop over time steps: at
T=200 inductor took 150 s on a 2-core CPU here; the first such compile estimates the next), then TensorRT.
``--parts`` reruns some parts and keeps the others' results from the existing ``gpu.json``.

On a GPU machine, from the checkout (``gru_onnx`` must be installed: a bare checkout cannot
import ``gru_onnx.exporters``)::

    pip install --no-deps -e .
    python benchmarks/gpu.py                        # -> benchmarks/results/gpu.{json,md}
    python benchmarks/gpu.py --ort-path /tmp/ort-gpu  # onnxruntime-gpu installed with --target there

``benchmarks/gpu_transport.sh`` carries the onnxruntime-gpu wheel to a machine that cannot
download it. ``--dry-run`` runs the same steps on the CPU at tiny sizes (hidden 8, T 4) into a
temporary folder: what ``tests/test_gpu_script.py`` runs. ``--placeholder`` writes the results
files saying "not yet measured" for every part (what is committed before a GPU run).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = {
    "pytorch": "1. PyTorch on CUDA",
    "onnxruntime": "2. ONNX Runtime, CUDA execution provider",
    "tensorrt": "3. ONNX Runtime, TensorRT execution provider",
}
NOT_YET = "not yet measured"
#: Row statuses; a status may carry a reason after a colon ("error: ...").
STATUSES = ("measured", "refused", "error", "not measurable here", "not measured: time budget")
#: Candidate/gate activations of part 2: CustomGRU keyword arguments per label.
ACTIVATIONS = {
    "relu": {"activation": "relu"},
    "gelu": {"activation": "gelu"},
    "hard_sigmoid gates": {"activation": "tanh", "recurrent_activation": "hard_sigmoid"},
}
STRATEGIES = ("unrolled", "loop", "native", "auto")
DTYPES = ("float32", "float16")
OPSET = 18


@dataclass(frozen=True)
class Sizes:
    """What one run measures: sizes, lengths and how long each timing runs."""

    input: int
    hidden: int
    batches: tuple[int, ...]
    lengths: tuple[int, ...]  # part 1: per frame and a long sequence
    ort_len: int  # part 2 and 3 files
    cap_lengths: tuple[int, ...]  # unrolled against loop
    timing_s: float  # target seconds of timed calls per measurement
    max_runs: int
    ort_cases: tuple[tuple[str, str, str], ...]  # part 2 files: (strategy, activation, dtype)
    compile_batches: tuple[int, ...]  # part 1 batches compiled with torch.compile


GPU = Sizes(
    input=64,
    hidden=128,
    batches=(1, 16),
    lengths=(1, 200),
    ort_len=200,
    cap_lengths=(64, 128, 256, 512),
    timing_s=0.2,
    max_runs=200,
    ort_cases=tuple(itertools.product(STRATEGIES, ACTIVATIONS, DTYPES)),
    compile_batches=(1, 16),
)
#: The dry run exports and compiles less (an export or a compile takes about a second on a small
#: CPU); every code path stays, the refusal of gelu by the native strategy included.
DRY = Sizes(
    input=8,
    hidden=8,
    batches=(1, 2),
    lengths=(1, 4),
    ort_len=4,
    cap_lengths=(4, 8),
    timing_s=0.01,
    max_runs=5,
    ort_cases=(
        *((strategy, "relu", "float32") for strategy in STRATEGIES),
        ("loop", "gelu", "float32"),
        ("native", "gelu", "float32"),
        ("loop", "hard_sigmoid gates", "float16"),
    ),
    compile_batches=(1,),
)
#: The order steps run in, by group: what matters most first, the slow compiles last but TensorRT.
ORDER = ("torch", "ort-float32", "ort-cap", "ort-float16", "ort-extra", "torch-compile", "torch-compile-long", "trt")


def export_file(
    model: Any,
    args: tuple[Any, ...],
    path: Path,
    *,
    strategy: str,
    opset: int = OPSET,
    dtype: str | None = None,
    dynamic_batch: bool = True,
    dynamic_seq: bool = False,
    streaming: bool = False,
    chunk: int | None = None,
    quantize: str | None = None,
    target: str = "any",
) -> Path:
    """Every export of this script goes through here (no parity check: the steps measure it), so a
    change of ``gru_onnx.export``'s keywords is adapted in this one place."""
    import gru_onnx

    gru_onnx.export(
        model, args, path,
        graph=gru_onnx.GraphOptions(strategy=strategy, opset=opset, dtype=dtype, target=target),
        shapes=gru_onnx.ShapeOptions(dynamic_batch=dynamic_batch, dynamic_seq=dynamic_seq and not streaming),
        streaming=gru_onnx.StreamingOptions(enabled=streaming, chunk=chunk),
        quantize=gru_onnx.QuantizeOptions(mode=quantize),
        check=None,
    )  # fmt: skip
    return path


# ---------------------------------------------------------------- results: JSON and Markdown


class Refused(Exception):
    """A combination the exporter or runtime refuses by design (recorded as "refused")."""


class NotMeasurable(Exception):
    """What this machine cannot measure (no CUDA, no provider); the message says why."""


@dataclass
class Results:
    """The run's results, written to ``gpu.json`` and ``gpu.md`` after every step."""

    out: Path
    data: dict[str, Any]
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, out: Path, header: dict[str, Any], keep: dict[str, Any] | None = None) -> Results:
        parts = {
            key: {"title": title, "status": NOT_YET, "reason": None, "rows": [], "started": header.get("started")}
            for key, title in PARTS.items()
        }
        for key, part in (keep or {}).items():  # parts not selected by --parts keep their last results
            parts[key] = part
        return cls(out, {**header, "finished": False, "parts": parts})

    def part(self, key: str) -> dict[str, Any]:
        return self.data["parts"][key]

    def add(self, part: str, row: dict[str, Any]) -> None:
        self.part(part)["rows"].append(row)
        self.part(part)["status"] = part_status(self.part(part))
        self.data["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.write()

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for name, text in (("gpu.json", json.dumps(self.data, indent=1) + "\n"), ("gpu.md", render(self.data))):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(self.out / name)


def status_kind(status: str) -> str:
    """The kind of a row status: the entry of :data:`STATUSES` it starts with."""
    return next((kind for kind in STATUSES if status.startswith(kind)), "error")


def part_status(part: dict[str, Any]) -> str:
    """A part's status from its rows: measured (with how many rows were not), or why not."""
    if part.get("reason"):
        return "not measurable here"
    counts = collections.Counter(status_kind(r["status"]) for r in part["rows"])
    if not counts:
        return NOT_YET
    if not counts["measured"]:
        if counts["error"]:
            return "error"
        if len(counts) == 1:
            return next(iter(counts))
        return "not measured (" + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) + ")"
    others = [f"{n} {kind}" for kind, n in sorted(counts.items()) if kind != "measured"]
    return "measured" + (f" ({', '.join(others)})" if others else "")


#: Table columns: (header, row key, number format or None for text).
Column = tuple[str, str, str | None]
PYTORCH_COLUMNS: tuple[Column, ...] = (
    ("activation", "activation", None), ("dtype", "dtype", None), ("B", "batch", None), ("T", "seq", None),
    ("variant", "variant", None), ("ms", "ms", ".3g"), ("vs cuDNN", "vs_cudnn", ".2f"),
    ("max abs err", "max_abs_err", ".1e"), ("compile s", "compile_s", ".1f"), ("status", "status", None),
)  # fmt: skip
FILE_COLUMNS: tuple[Column, ...] = (
    ("file", "file", None), ("dtype", "dtype", None), ("B", "batch", None), ("mode", "mode", None),
    ("max abs err", "max_abs_err", ".1e"), ("compute off provider", "off_provider", None),
    ("placement", "placement", None), ("ms", "ms", ".3g"), ("vs fused op", "vs_fused", ".2f"),
    ("status", "status", None),
)  # fmt: skip
CAP_COLUMNS: tuple[Column, ...] = (
    ("B", "batch", None), ("T", "seq", None), ("unrolled ms", "unrolled_ms", ".3g"),
    ("unrolled, CUDA graph ms", "graph_ms", ".3g"), ("loop ms", "loop_ms", ".3g"),
    ("best unrolled / loop", "unrolled_vs_loop", ".2f"), ("max abs err", "max_abs_err", ".1e"),
    ("unrolled export s", "export_s", ".1f"), ("unrolled MiB", "mib", ".2f"), ("status", "status", None),
)  # fmt: skip


def _cell(row: dict[str, Any], key: str, fmt: str | None) -> str:
    value = row.get(key)
    if key == "status":
        return "" if value == "measured" else str(value).replace("|", "/")
    if value is None:
        return ""
    if fmt is None or (isinstance(value, float) and not math.isfinite(value)):
        return str(value).replace("|", "/")
    return format(value, fmt)


def _table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return lines + ["| " + " | ".join(_cell(r, key, fmt) for _, key, fmt in columns) + " |" for r in rows]


def render(data: dict[str, Any]) -> str:
    """``gpu.md`` from the results: how to run it, then each part with its status and tables."""
    lines = ["# GPU: PyTorch, ONNX Runtime CUDA and TensorRT (issue 20)", "", *HOWTO.strip().splitlines(), ""]
    mode = data.get("mode")
    if mode is None:
        lines += ["**Not yet measured**: no GPU run has been made yet; every part below says so.", ""]
    else:
        state = "finished" if data["finished"] else "**cut off or still running** (numbers so far)"
        if mode == "dry-run":
            lines += ["**DRY RUN**: the same steps on the CPU at tiny sizes; the numbers say nothing about a GPU.", ""]
        lines += [
            f"Run: `{data['command']}` on {data['started']}, {state}, {data.get('elapsed_s', 0):.0f} s "
            f"of a {data['budget_s']:.0f} s budget.  ",
            f"Machine: {data['machine']}.  ",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".  ",
            f"Sizes: input {data['sizes']['input']}, hidden {data['sizes']['hidden']}, 1 layer; "
            "inputs standard normal, weights PyTorch's default init (seed 0). TF32 off.",
            "",
        ]
    for key, part in data["parts"].items():
        lines += [f"## {part['title']}: {part['status']}", ""]
        if part.get("started") != data.get("started"):
            lines += [f"Kept from the run of {part.get('started')} (this run left the part out: `--parts`).", ""]
        if part.get("reason"):
            lines += [f"Not measurable here: {part['reason']}.", ""]
        if part.get("note"):
            lines += [part["note"], ""]
        if part["rows"]:
            lines += [*RENDER[key](part["rows"]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _render_pytorch(rows: list[dict[str, Any]]) -> list[str]:
    variants = ("nn.GRU", "nn.GRU graph", "eager", "graph", "compiled")
    activations = ("tanh", "relu", "gelu")

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        where = lambda values, v: values.index(v) if v in values else len(values)  # noqa: E731
        return (r["seq"], where(DTYPES, r["dtype"]), r["batch"], where(activations, r["activation"]),
                where(variants, r["variant"]))  # fmt: skip

    rows = sorted(rows, key=order)
    return [
        "Median latency per call (input already on the device, synchronised before and after). "
        "`vs cuDNN`: ratio to `nn.GRU` (tanh, cuDNN) at the same dtype, batch and length in this process. "
        "Error: max |output - float64 model on the CPU| (the float32 weights, the input rounded to the dtype).",
        "",
        *_table(PYTORCH_COLUMNS, rows),
    ]


def _render_onnxruntime(rows: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    files = [r for r in rows if r.get("table") == "files"]
    if files:
        out += [
            "Per file: max abs error against the float64 model on the CPU (the float32 weights, the input rounded "
            "to the dtype). Placement from ONNX Runtime's profiler after one run: compute nodes (GRU, Scan, Loop, "
            "MatMul, Gemm) off the provider, and every node as ONNX Runtime ran it (after its fusions, loop bodies "
            "included; shape ops on the CPU are normal). Median latency with I/O binding, and replayed as a CUDA "
            "graph (`enable_cuda_graph`, unrolled files), with the ratio to ONNX Runtime's fused `GRU` op (tanh, "
            "same sizes and dtype) run the same way.",
            "",
            *_table(FILE_COLUMNS, files),
            "",
        ]
    cap = [r for r in rows if r.get("table") == "cap"]
    if cap:
        out += [
            "### Unrolled against loop: auto's unrolled cap for `--target cuda` (256 by reasoning, not measured)",
            "",
            "relu, float32; median ms with I/O binding; unrolled also as a CUDA graph. The loop file is one "
            "file with a dynamic length.",
            "",
            *_table(CAP_COLUMNS, cap),
            "",
            *crossover_lines(cap),
        ]
    return out


def crossover_lines(cap: list[dict[str, Any]]) -> list[str]:
    """Per batch, the longest T at which the unrolled file (as a CUDA graph where it ran as one)
    was at least as fast as the loop file: the measured cap."""
    lines = []
    for batch in sorted({r["batch"] for r in cap}):
        measured = [r for r in cap if r["batch"] == batch and r.get("unrolled_vs_loop") is not None]
        if not measured:
            continue
        wins = [r["seq"] for r in measured if r["unrolled_vs_loop"] <= 1.0]
        longest = max(r["seq"] for r in measured)
        if not wins:
            text = f"loop faster at every measured length ({', '.join(str(r['seq']) for r in measured)})"
        elif max(wins) == longest:
            text = f"unrolled at least as fast up to the longest measured, T={longest}"
        else:
            text = f"unrolled at least as fast up to T={max(wins)}, loop faster beyond"
        lines.append(f"- Crossover at B={batch}: {text}.")
    return lines


def _render_tensorrt(rows: list[dict[str, Any]]) -> list[str]:
    return _render_onnxruntime(rows)


RENDER: dict[str, Callable[[list[dict[str, Any]]], list[str]]] = {
    "pytorch": _render_pytorch,
    "onnxruntime": _render_onnxruntime,
    "tensorrt": _render_tensorrt,
}

HOWTO = """
Produced by `benchmarks/gpu.py` (its docstring says what each part measures). On a machine with one
NVIDIA GPU and a CUDA build of torch, from the checkout:

    pip install --no-deps -e .     # installed, not imported from the checkout (gru_onnx.exporters)
    python benchmarks/gpu.py       # at most 5 minutes (--budget-s 280); rewrites this file after every step

Part 2 needs `onnxruntime-gpu` (1.31.1 for CUDA 13). Where it cannot be downloaded (the lent machine),
`benchmarks/gpu_transport.sh` carries its 255 MB wheel in 60 MB parts under the ignored `build/ort-parts/`:

    bash benchmarks/gpu_transport.sh split      # here: pip download, split -b 60M, SHA256SUMS
    bash benchmarks/gpu_transport.sh receive    # there, one call per part, back to back (carry:
                                                # build/ort-parts/part-NN and build/ort-parts/SHA256SUMS)
    bash benchmarks/gpu_transport.sh receive && bash benchmarks/gpu_transport.sh install \\
      && pip install --no-deps -e . && python benchmarks/gpu.py --ort-path /tmp/ort-gpu   # the last call

`install` reassembles the parts, checks the SHA-256 and runs `pip install --no-deps --target /tmp/ort-gpu`;
`--ort-path` puts that folder first on `sys.path`, ahead of the image's CPU `onnxruntime`.
"""


# ---------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Step:
    """One guarded measurement: ``run(ctx)`` returns the row's numbers; ``base`` says what it is."""

    part: str
    group: str  # an entry of ORDER
    base: dict[str, Any]
    run: Callable[[Context], dict[str, Any]]
    estimate_s: float = 2.0
    estimate_key: str | None = None  # steps sharing a key take the last measured duration as estimate


@dataclass
class Context:
    """What the steps share: the run's options, the device, and caches of models, inputs and files."""

    sizes: Sizes
    dry_run: bool
    folder: Path
    device: str = "cpu"  # torch device of part 1
    provider: str = "cpu"  # ONNX Runtime provider of part 2
    cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_call(call: Callable[[], Any], sizes: Sizes, sync: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Median ms of ``call`` after warmup, each call timed between synchronisations; the number of
    runs fills about ``sizes.timing_s`` seconds (at least 5, at most ``sizes.max_runs``)."""
    sync()
    for _ in range(3):
        call()
    sync()
    started = time.perf_counter()
    call()
    sync()
    once = time.perf_counter() - started
    runs = max(5, min(sizes.max_runs, int(sizes.timing_s / max(once, 1e-6))))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - started)
    return {"ms": 1e3 * statistics.median(times), "runs": runs}


def max_abs_err(output: Any, reference: Any) -> float:
    import numpy as np

    a = np.asarray(output, dtype=np.float64).reshape(np.shape(reference))
    return float(np.max(np.abs(a - np.asarray(reference, dtype=np.float64))))


# ------------------------------------------------ part 1: PyTorch


def master_gru(ctx: Context, activation: str) -> Any:
    """The float32 CPU CustomGRU for ``activation`` (seed 0: the same weights for every activation)."""
    import torch

    from gru_onnx import CustomGRU

    def make() -> Any:
        torch.manual_seed(0)
        return CustomGRU(ctx.sizes.input, ctx.sizes.hidden, **ACTIVATIONS.get(activation, {"activation": activation}))

    return ctx.cached(("master", activation), make).eval()


def cudnn_gru(ctx: Context) -> Any:
    """``nn.GRU`` with the master weights (tanh: what cuDNN computes)."""
    import torch

    def make() -> Any:
        gru = torch.nn.GRU(ctx.sizes.input, ctx.sizes.hidden)
        gru.load_state_dict(master_gru(ctx, "relu").state_dict())
        return gru.eval()

    return ctx.cached("cudnn", make)


def inputs(ctx: Context, batch: int, seq: int, dtype: str) -> Any:
    """Standard-normal input ``[T, B, I]`` (float64, CPU), rounded to ``dtype``."""
    import torch

    def make() -> Any:
        generator = torch.Generator().manual_seed(1000 * seq + batch)
        x = torch.randn(seq, batch, ctx.sizes.input, generator=generator, dtype=torch.float64)
        return x.to(getattr(torch, dtype)).double()

    return ctx.cached(("x", batch, seq, dtype), make)


def reference(ctx: Context, activation: str, batch: int, seq: int, dtype: str) -> Any:
    """The float64 CPU output ``[T, B, H]`` for ``activation`` ("tanh": nn.GRU) on that input."""
    import copy

    import torch

    def make() -> Any:
        model = cudnn_gru(ctx) if activation == "tanh" else master_gru(ctx, activation)
        with torch.no_grad():
            return copy.deepcopy(model).double()(inputs(ctx, batch, seq, dtype))[0].numpy()

    return ctx.cached(("ref", activation, batch, seq, dtype), make)


def torch_model(ctx: Context, kind: str, activation: str, dtype: str) -> Any:
    """The model of a part-1 variant on the device in ``dtype``."""
    import copy

    import torch

    source = cudnn_gru(ctx) if kind == "cudnn" else master_gru(ctx, activation)
    model = copy.deepcopy(source).to(ctx.device, getattr(torch, dtype))
    if kind == "cudnn":
        model.flatten_parameters()
    return model


def graph_replay(fn: Callable[[Any], Any], x: Any) -> Callable[[], Any]:
    """``fn(x)`` captured once as a CUDA graph (after warmup on a side stream); returns replay."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(x)

    def replay() -> Any:
        graph.replay()
        return out

    return replay


def pytorch_step(activation: str, dtype: str, batch: int, seq: int, variant: str) -> Callable[[Context], dict]:
    """One part-1 measurement: latency, ratio to cuDNN and error of one variant."""

    def run(ctx: Context) -> dict[str, Any]:
        import torch

        row: dict[str, Any] = {}
        kind = "cudnn" if variant.startswith("nn.GRU") else "custom"
        if "graph" in variant and ctx.device != "cuda":
            raise NotMeasurable("CUDA graphs need CUDA")
        model = torch_model(ctx, kind, activation, dtype)
        x = inputs(ctx, batch, seq, dtype).to(ctx.device, getattr(torch, dtype))

        def forward(v: Any) -> Any:
            with torch.no_grad():
                return model(v)[0]

        call: Callable[[], Any] = lambda: forward(x)  # noqa: E731
        if variant == "compiled":
            torch._dynamo.reset()
            # On the CPU inductor builds C++ for tens of seconds; the dry run checks the path with aot_eager.
            backend = "aot_eager" if ctx.dry_run else "inductor"
            compiled = torch.compile(model, backend=backend, dynamic=False)
            started = time.perf_counter()
            with torch.no_grad():
                compiled(x)
            synchronize(ctx.device)
            row["compile_s"] = time.perf_counter() - started
            row["backend"] = backend

            def call() -> Any:
                with torch.no_grad():
                    return compiled(x)[0]
        elif "graph" in variant:
            call = graph_replay(forward, x)
        row.update(time_call(call, ctx.sizes, lambda: synchronize(ctx.device)))
        y = call().float().cpu().numpy()
        row["max_abs_err"] = max_abs_err(
            y, reference(ctx, "tanh" if kind == "cudnn" else activation, batch, seq, dtype)
        )
        baseline = ctx.cache.get(("cudnn_ms", dtype, batch, seq))
        if variant == "nn.GRU":
            ctx.cache[("cudnn_ms", dtype, batch, seq)] = row["ms"]
        elif baseline:
            row["vs_cudnn"] = row["ms"] / baseline
        return row

    return run


def pytorch_steps(sizes: Sizes) -> list[Step]:
    """Part 1. Compiling unrolls the Python loop over time steps, so the T=200 compiles take
    minutes: they run last, the first of them giving the estimate for the others."""
    steps = []
    for seq, dtype, batch in itertools.product(sizes.lengths, DTYPES, sizes.batches):
        for activation, variant in (
            ("tanh", "nn.GRU"), ("tanh", "nn.GRU graph"), ("relu", "eager"), ("relu", "graph"), ("gelu", "eager"),
            ("gelu", "graph"), ("relu", "compiled"), ("gelu", "compiled"),
        ):  # fmt: skip
            base = {"activation": activation, "dtype": dtype, "batch": batch, "seq": seq, "variant": variant}
            run = pytorch_step(activation, dtype, batch, seq, variant)
            if variant == "compiled" and batch not in sizes.compile_batches:
                continue
            if variant != "compiled":
                steps.append(Step("pytorch", "torch", base, run, 3.0))
            elif seq == 1:
                steps.append(Step("pytorch", "torch-compile", base, run, 10.0))
            else:
                steps.append(Step("pytorch", "torch-compile-long", base, run, 90.0, estimate_key="compile-long"))
    return steps


# ------------------------------------------------ part 2 and 3: ONNX Runtime

PROVIDER_OPTIONS = {"cuda": {"use_tf32": "0"}, "tensorrt": {}, "cpu": {}}


def ort_session(path: Path, provider: str, *, profile: Path | None = None, cuda_graph: bool = False) -> Any:
    """An ONNX Runtime session on ``provider`` (GPU providers fall back to the CPU per node)."""
    import onnxruntime as ort

    from gru_onnx.runners.onnxruntime import PROVIDERS

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile)
    wanted = PROVIDERS[provider]
    provider_options = dict(PROVIDER_OPTIONS[provider])
    if cuda_graph:
        provider_options["enable_cuda_graph"] = "1"
    chain = [(wanted, provider_options)]
    if provider == "tensorrt":
        chain.append(("CUDAExecutionProvider", dict(PROVIDER_OPTIONS["cuda"])))
    if provider != "cpu":
        chain.append(("CPUExecutionProvider", {}))
    session = ort.InferenceSession(str(path), options, providers=chain)
    if session.get_providers()[0] != wanted:
        raise RuntimeError(f"ONNX Runtime did not load {wanted} (providers: {session.get_providers()})")
    return session


def placement(ctx: Context, path: Path, provider: str, feeds: dict[str, Any]) -> dict[str, Any]:
    """Where each node ran, from one profiled run: compute nodes off ``provider`` (``fallback_nodes``)
    and every node's provider counted by op."""
    from gru_onnx.runners.onnxruntime import PROVIDERS, fallback_nodes

    session = ort_session(path, provider, profile=ctx.folder / "profile")
    session.run(None, feeds)
    profile_path = Path(session.end_profiling())
    try:
        profile = json.loads(profile_path.read_text())
    finally:
        profile_path.unlink(missing_ok=True)
    nodes = {}
    for event in profile:
        args = event.get("args", {})
        if event.get("cat") == "Node" and args.get("op_name") and args.get("provider"):
            nodes[event.get("name", "").removesuffix("_kernel_time")] = (args["op_name"], args["provider"])
    wanted = PROVIDERS[provider]
    moved = fallback_nodes(profile, wanted)
    off = collections.Counter(op for op, where in nodes.values() if where != wanted)
    short = lambda p: p.removesuffix("ExecutionProvider")  # noqa: E731
    return {
        "off_provider": ", ".join(f"{op} on {short(where)}" for _, op, where in moved) or "none",
        "placement": f"{sum(1 for _, w in nodes.values() if w == wanted)}/{len(nodes)} nodes on {short(wanted)}"
        + (f"; off: {', '.join(f'{op} x{n}' for op, n in sorted(off.items()))}" if off else ""),
        "nodes": {f"{op}@{short(where)}": n for (op, where), n in sorted(collections.Counter(nodes.values()).items())},
    }


def bound_call(session: Any, feeds: dict[str, Any], device: str) -> tuple[Callable[[], None], Callable[[], Any]]:
    """``(run, outputs)`` through I/O binding: inputs copied to ``device`` once, outputs left there."""
    import onnxruntime as ort

    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, device, 0))
    for out in session.get_outputs():
        binding.bind_output(out.name, device)

    def run() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run, binding.copy_outputs_to_cpu


def graph_call(
    session: Any, feeds: dict[str, Any], output_templates: list[Any]
) -> tuple[Callable[[], None], Callable[[], Any]]:
    """I/O binding with inputs and outputs at fixed GPU addresses, as ``enable_cuda_graph`` needs
    (the first run captures the graph, later runs replay it)."""
    import onnxruntime as ort

    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
    for out, template in zip(session.get_outputs(), output_templates, strict=True):
        binding.bind_ortvalue_output(out.name, ort.OrtValue.ortvalue_from_numpy(template, "cuda", 0))

    def run() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run, binding.copy_outputs_to_cpu


def ort_device(provider: str) -> str:
    return "cpu" if provider == "cpu" else "cuda"


def feeds_for(ctx: Context, path: Path, batch: int, seq: int, dtype: str) -> dict[str, Any]:
    """The file's one input, ``[T, B, I]`` in its dtype (the part-1 inputs)."""
    import onnx

    name = ctx.cached(("input_name", path), lambda: onnx.load(path, load_external_data=False).graph.input[0].name)
    return {name: inputs(ctx, batch, seq, dtype).numpy().astype(dtype)}


def fused_file(ctx: Context, dtype: str) -> Path:
    """ONNX Runtime's own ``GRU`` op (sigmoid/tanh, reset after) with the master weights: the bar."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    def make() -> Path:
        state = {k: v.numpy().astype(dtype) for k, v in cudnn_gru(ctx).state_dict().items()}

        def zrh(w: np.ndarray) -> np.ndarray:  # PyTorch's r, z, n -> ONNX's z, r, h
            r, z, n = np.split(w, 3)
            return np.concatenate([z, r, n])

        h = ctx.sizes.hidden
        weights = {
            "W": zrh(state["weight_ih_l0"])[None],
            "R": zrh(state["weight_hh_l0"])[None],
            "B": np.concatenate([zrh(state["bias_ih_l0"]), zrh(state["bias_hh_l0"])])[None],
        }
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        node = helper.make_node("GRU", ["input", "W", "R", "B"], ["Y", "Y_h"], hidden_size=h, linear_before_reset=1)
        graph = helper.make_graph(
            [node],
            "fused_gru",
            [helper.make_tensor_value_info("input", elem, ["seq", "batch", ctx.sizes.input])],
            [
                helper.make_tensor_value_info("Y", elem, ["seq", 1, "batch", h]),
                helper.make_tensor_value_info("Y_h", elem, [1, "batch", h]),
            ],
            [numpy_helper.from_array(v, k) for k, v in weights.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
        path = ctx.folder / f"fused_{dtype}.onnx"
        onnx.save(model, path)
        return path

    return ctx.cached(("fused", dtype), make)


def gru_file(
    ctx: Context, strategy: str, activation: str, dtype: str, seq: int, *, batch: int | None = None, **options: Any
) -> Path:
    """An exported CustomGRU file (cached): loop files take any length, the others ``seq`` only;
    any batch size, or only ``batch`` when given (static shapes, for CUDA graphs)."""
    import torch

    from gru_onnx import ExportError, GruOnnxUsageError

    options.setdefault("target", "any")
    key = ("file", strategy, activation, dtype, seq, batch, tuple(sorted(options.items())))

    def make() -> tuple[Path | None, str | None, float]:
        parts = (strategy, activation.replace(" ", "-"), dtype, seq, f"b{batch or 'any'}", *options.values())
        path = ctx.folder / ("_".join(str(p) for p in parts) + ".onnx")
        # A dynamic batch axis needs an example of at least 2 rows (torch.export).
        x = torch.randn(seq, batch or 2, ctx.sizes.input, generator=torch.Generator().manual_seed(seq))
        started = time.perf_counter()
        try:
            export_file(
                master_gru(ctx, activation),
                (x,),
                path,
                strategy=strategy,
                dtype=dtype,
                dynamic_batch=batch is None,
                dynamic_seq=strategy == "loop",
                **options,
            )
        except (ExportError, GruOnnxUsageError) as exc:
            return None, str(exc).splitlines()[0], 0.0
        return path, None, time.perf_counter() - started

    path, refusal, seconds = ctx.cached(key, make)
    if path is None:
        raise Refused(refusal)
    ctx.cache[("export_s", path)] = seconds
    return path


def chosen_strategy(path: Path) -> str:
    """What the file's metadata says each stack was written as (auto's choice)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    stacks = json.loads(props.get("gru_onnx", "{}")).get("stacks", [])
    return "/".join(sorted({s.get("strategy", "?") for s in stacks}))


def ort_measure(ctx: Context, path: Path, provider: str, feeds: dict[str, Any], ref: Any, mode: str) -> dict:
    """Parity, placement (plain mode) and latency of one file on ``provider``."""
    row: dict[str, Any] = {"mode": mode}
    device = ort_device(provider)
    if mode == "CUDA graph":
        if provider != "cuda":
            raise NotMeasurable("enable_cuda_graph needs the CUDA execution provider")
        templates = ort_session(path, provider).run(None, feeds)
        run, outputs = graph_call(ort_session(path, provider, cuda_graph=True), feeds, templates)
    else:
        row.update(placement(ctx, path, provider, feeds))
        run, outputs = bound_call(ort_session(path, provider), feeds, device)
    row.update(time_call(run, ctx.sizes))
    y = outputs()[0]
    row["max_abs_err"] = max_abs_err(y, ref)
    return row


def graph_measure(
    ctx: Context, path: Path, static: Callable[[], Path], feeds: dict[str, Any], ref: Any
) -> dict[str, Any]:
    """A file replayed as a CUDA graph. ONNX Runtime refuses a graph when the shape nodes a dynamic
    batch axis needs bring copies from the host; then the same model exported with static shapes
    (``static()``) is timed and the status says why."""
    try:
        return ort_measure(ctx, path, ctx.provider, feeds, ref, "CUDA graph")
    except NotMeasurable:
        raise
    except Exception as exc:
        refusal = error_line(exc)
    row = ort_measure(ctx, static(), ctx.provider, feeds, ref, "CUDA graph")
    row["status"] = f"measured (static shapes; the dynamic-batch file: {refusal})"
    return row


def file_step(strategy: str, activation: str, dtype: str, batch: int, mode: str, provider_of: Callable) -> Callable:
    """Part 2/3: one exported file (or the fused op when ``strategy`` is "fused") in one mode."""

    def run(ctx: Context) -> dict[str, Any]:
        provider = provider_of(ctx)
        seq = ctx.sizes.ort_len
        if strategy == "fused":
            path, ref_act = fused_file(ctx, dtype), "tanh"
        else:
            target = "cuda" if strategy == "auto" else "any"
            path, ref_act = gru_file(ctx, strategy, activation, dtype, seq, target=target), activation
        feeds, ref = feeds_for(ctx, path, batch, seq, dtype), reference(ctx, ref_act, batch, seq, dtype)
        if mode == "CUDA graph" and strategy != "fused":
            static = lambda: gru_file(ctx, strategy, activation, dtype, seq, batch=batch)  # noqa: E731
            row = graph_measure(ctx, path, static, feeds, ref)
        else:
            row = ort_measure(ctx, path, provider, feeds, ref, mode)
        if strategy == "auto":
            row["file"] = f"auto (target cuda: {chosen_strategy(path)}), {activation}"
        key = ("fused_ms", provider, dtype, batch, mode)
        if (strategy, activation, dtype, mode) == ("loop", "relu", "float32", "I/O binding"):
            ctx.cache[("loop_relu_ms", batch)] = row["ms"]
        if strategy == "fused":
            ctx.cache[key] = row["ms"]
        elif ctx.cache.get(key):
            row["vs_fused"] = row["ms"] / ctx.cache[key]
        return row

    return run


def streaming_step(chunk: int | None) -> Callable[[Context], dict[str, Any]]:
    """A streaming relu file run frame by frame through ``gru_onnx.StreamingSession`` (B=1)."""

    def run(ctx: Context) -> dict[str, Any]:
        import numpy as np

        from gru_onnx import StreamingSession

        seq = ctx.sizes.ort_len
        path = gru_file(ctx, "auto", "relu", "float32", seq, streaming=True, chunk=chunk, target="cuda")
        x = inputs(ctx, 1, seq, "float32").numpy().astype(np.float32)
        with StreamingSession(path, providers=(ctx.provider,)) as session:
            name = session.input_names[0]
            frames = [session.run({name: x[t : t + 1]})[session.output_names[0]] for t in range(seq)]
            session.reset()
            t = iter(range(10**9))
            timing = time_call(lambda: session.run({name: x[next(t) % seq :][:1]}), ctx.sizes)
        state_feeds = {
            i.name: np.zeros([1 if not isinstance(d, int) else d for d in _dims(i)], np.float32)
            for i in _inputs(path)
            if i.name != name
        }
        row = placement(ctx, path, ctx.provider, {name: x[:1], **state_feeds})
        row.update(
            timing,
            mode="per frame, StreamingSession",
            file=f"streaming {chunk or 'dynamic'}-step chunks ({chosen_strategy(path)}), relu",
        )
        row["max_abs_err"] = max_abs_err(np.concatenate(frames), reference(ctx, "relu", 1, seq, "float32"))
        return row

    return run


def _inputs(path: Path) -> list[Any]:
    """The file's graph inputs that are not initializers."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    stored = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in stored]


def _dims(value: Any) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]


def int8_step(mode: str, batch: int) -> Callable[[Context], dict[str, Any]]:
    """A loop relu file quantized to int8 (``mode``): parity against float64, placement, latency."""

    def run(ctx: Context) -> dict[str, Any]:
        seq = ctx.sizes.ort_len
        path = gru_file(ctx, "loop", "relu", "float32", seq, quantize=mode)
        feeds = feeds_for(ctx, path, batch, seq, "float32")
        row = ort_measure(ctx, path, ctx.provider, feeds, reference(ctx, "relu", batch, seq, "float32"), "I/O binding")
        fused_ms = ctx.cache.get(("fused_ms", ctx.provider, "float32", batch, "I/O binding"))
        float_ms = ctx.cache.get(("loop_relu_ms", batch))
        if fused_ms:
            row["vs_fused"] = row["ms"] / fused_ms
        if float_ms:
            row["vs_float32_loop"] = row["ms"] / float_ms
        return row

    return run


def cap_step(seq: int, batch: int) -> Callable[[Context], dict[str, Any]]:
    """Unrolled (plain and as a CUDA graph) against loop at one length: relu, float32."""

    def run(ctx: Context) -> dict[str, Any]:
        provider = ctx.provider
        row: dict[str, Any] = {}
        unrolled = gru_file(ctx, "unrolled", "relu", "float32", seq)
        row["export_s"] = ctx.cache[("export_s", unrolled)]
        row["mib"] = sum(p.stat().st_size for p in unrolled.parent.glob(unrolled.name + "*")) / 2**20
        loop = gru_file(ctx, "loop", "relu", "float32", ctx.sizes.ort_len)  # one file serves every length
        ref = reference(ctx, "relu", batch, seq, "float32")
        errors, notes = [], []
        static = lambda: gru_file(ctx, "unrolled", "relu", "float32", seq, batch=batch)  # noqa: E731
        feeds = feeds_for(ctx, unrolled, batch, seq, "float32")
        for key, label, measure in (
            ("unrolled_ms", "unrolled", lambda: ort_measure(ctx, unrolled, provider, feeds, ref, "I/O binding")),
            ("loop_ms", "loop", lambda: ort_measure(ctx, loop, provider, feeds, ref, "I/O binding")),
            ("graph_ms", "CUDA graph", lambda: graph_measure(ctx, unrolled, static, feeds, ref)),
        ):
            try:  # each guarded: a CUDA graph that fails to capture leaves the other two numbers
                measured = measure()
            except Exception as exc:
                notes.append(f"{label}: {error_line(exc)}")
                continue
            if measured.get("status", "measured") != "measured":
                notes.append(f"{label}: {measured['status'].removeprefix('measured (').removesuffix(')')}")
            row[key] = measured["ms"]
            errors.append(measured["max_abs_err"])
        if "unrolled_ms" not in row or "loop_ms" not in row:
            row["status"] = "error: " + "; ".join(notes)
            return row
        row["max_abs_err"] = max(errors)
        row["unrolled_vs_loop"] = min(row.get("graph_ms") or math.inf, row["unrolled_ms"]) / row["loop_ms"]
        row["status"] = "measured" + (f" ({'; '.join(notes)})" if notes else "")
        return row

    return run


def ort_steps(sizes: Sizes, part: str) -> list[Step]:
    """Part 2 (``onnxruntime``) or 3 (``tensorrt``: fewer files, an engine build per session)."""
    trt = part == "tensorrt"
    provider_of = (lambda ctx: "tensorrt") if trt else (lambda ctx: ctx.provider)
    batches = sizes.batches[:1] if trt else sizes.batches
    modes = ("I/O binding",) if trt else ("I/O binding", "CUDA graph")
    cases = [c for c in sizes.ort_cases if c[0] != "auto" and c[1] == "relu"] if trt else list(sizes.ort_cases)
    estimate = 60.0 if trt else 4.0
    steps: list[Step] = []

    def add(group: str, base: dict[str, Any], run: Callable[[Context], dict[str, Any]], seconds: float) -> None:
        steps.append(Step(part, "trt" if trt else group, {"table": "files", **base}, run, seconds))

    for dtype in DTYPES:
        group = f"ort-{dtype}"
        for batch, mode in itertools.product(batches, modes):
            base = {"file": "fused GRU op (tanh)", "dtype": dtype, "batch": batch, "mode": mode}
            add(group, base, file_step("fused", "tanh", dtype, batch, mode, provider_of), estimate)
        for strategy, activation, case_dtype in cases:
            for batch, mode in itertools.product(batches, modes):
                if case_dtype != dtype or (mode == "CUDA graph" and strategy != "unrolled"):
                    continue  # auto (target cuda) writes unrolled files at this length: timed once
                label = f"{strategy} (target cuda), {activation}" if strategy == "auto" else f"{strategy}, {activation}"
                base = {"file": label, "dtype": dtype, "batch": batch, "mode": mode}
                add(group, base, file_step(strategy, activation, dtype, batch, mode, provider_of), estimate)
    if trt:
        return steps
    for chunk in (None, 1):
        base = {"file": f"streaming {chunk or 'dynamic'}-step chunks, relu", "dtype": "float32", "batch": 1,
                "mode": "per frame, StreamingSession"}  # fmt: skip
        add("ort-extra", base, streaming_step(chunk), 6.0)
    for mode, batch in itertools.product(("weights", "dynamic"), sizes.batches):
        base = {"file": f"int8 ({mode}), loop, relu", "dtype": "float32", "batch": batch, "mode": "I/O binding"}
        add("ort-extra", base, int8_step(mode, batch), 4.0)
    for seq, batch in itertools.product(sizes.cap_lengths, sizes.batches):
        # The first batch of a length exports the unrolled file (seconds at T=512).
        seconds = 3.0 + seq / 40 if batch == sizes.batches[0] else 3.0
        steps.append(Step(part, "ort-cap", {"table": "cap", "seq": seq, "batch": batch}, cap_step(seq, batch), seconds))
    return steps


# ---------------------------------------------------------------- probes, machine, main


def pytorch_problem(ctx: Context) -> str | None:
    """Why part 1 cannot run here, or None (setting the device)."""
    import torch

    if ctx.dry_run:
        ctx.device = "cpu"
        return None
    if not torch.cuda.is_available():
        return f"torch.cuda.is_available() is False (torch {torch.__version__}, CUDA {torch.version.cuda})"
    ctx.device = "cuda"
    return None


def ort_problem(ctx: Context, provider: str) -> str | None:
    """Why ONNX Runtime cannot run ``provider`` here, or None: the build's providers, the device,
    and a session that really loads it (a GPU build without its CUDA libraries falls back)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime not importable: {exc}"
    from gru_onnx.runners.onnxruntime import OnnxRuntimeRunner, RuntimeUnavailable, provider_problem

    problem = provider_problem(provider)
    if problem:
        # The CPU wheel: onnxruntime-gpu is not installed, or an --ort-path install is not first.
        return f"onnxruntime-gpu not importable ({problem})" if "does not include" in problem else problem
    try:
        with OnnxRuntimeRunner(fused_file(ctx, "float32"), provider):
            return None
    except RuntimeUnavailable as exc:
        return str(exc)
    except Exception as exc:  # the probe itself failed: say so rather than stop the other parts
        return f"error while probing: {error_line(exc)}"


def machine_line(device: str) -> str:
    """CPU, and the GPU with its driver (nvidia-smi) when part 1 runs on CUDA."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    line = f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"
    if device == "cuda":
        import torch

        driver = "driver unknown"
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            driver = "driver " + subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.split()[0]
        line = f"{torch.cuda.get_device_name(0)} ({driver}); " + line
    return line


def versions() -> dict[str, str]:
    """python, torch (with CUDA and cuDNN), onnxruntime (and where it was imported from), onnx."""
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "CUDA (torch)": str(torch.version.cuda),
        "cuDNN": str(torch.backends.cudnn.version()),
    }
    with contextlib.suppress(ImportError):
        import onnxruntime

        found["onnxruntime"] = f"{onnxruntime.__version__} ({Path(onnxruntime.__file__).parent})"
    for name in ("onnx", "onnxscript", "gru_onnx"):
        with contextlib.suppress(ImportError, AttributeError):
            found[name] = __import__(name).__version__
    return found


def error_line(exc: BaseException) -> str:
    """One line for a report: the exception's type and its first non-empty line (NotMeasurable
    and Refused say so)."""
    if isinstance(exc, NotMeasurable):
        return f"not measurable here: {exc}"
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def run_steps(steps: Sequence[Step], ctx: Context, results: Results, deadline: float) -> None:
    """Run each step guarded, recording a row per step; skip past the deadline."""
    durations: dict[str, float] = {}
    for step in steps:
        part = results.part(step.part)
        if part.get("reason"):
            continue
        estimate = durations.get(step.estimate_key or "", step.estimate_s)
        left = deadline - time.monotonic()
        row = dict(step.base)
        if left < estimate:
            row["status"] = "not measured: time budget"
            results.add(step.part, row)
            continue
        started = time.monotonic()
        try:
            row.update(step.run(ctx))
            row.setdefault("status", "measured")
        except Refused as exc:
            row["status"] = f"refused: {exc}"
        except NotMeasurable as exc:
            row["status"] = f"not measurable here: {exc}"
        except Exception as exc:
            row["status"] = f"error: {error_line(exc)}"
            row["traceback"] = traceback.format_exc(limit=-3)
        row["seconds"] = round(time.monotonic() - started, 3)
        if step.estimate_key and status_kind(row["status"]) == "measured":
            durations[step.estimate_key] = row["seconds"]
        results.add(step.part, row)
        print(
            f"[{time.monotonic() - results.started:6.1f} s] {step.part}: "
            f"{', '.join(str(v) for k, v in step.base.items() if k != 'table')}: {row['status'][:120]}",
            flush=True,
        )


@contextlib.contextmanager
def working_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="gru_onnx_gpu_") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for gpu.json and gpu.md (default: benchmarks/results; a temporary folder with --dry-run)",
    )
    parser.add_argument("--budget-s", type=float, default=280.0, help="skip the steps left after this many seconds")
    parser.add_argument("--ort-path", type=Path, help="a `pip install --target` folder put first on sys.path")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated parts to run; the others keep their results from the existing gpu.json",
    )
    parser.add_argument("--keep-files", type=Path, help="write the ONNX files here instead of a temporary folder")
    parser.add_argument("--placeholder", action="store_true", help="write the not-yet-measured files and exit")
    args = parser.parse_args(argv)
    started = time.monotonic()
    # Before anything imports onnxruntime: the --target install must win over the CPU build.
    if args.ort_path is not None:
        sys.path.insert(0, str(args.ort_path.resolve()))
    os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
    out = args.out or (Path(tempfile.gettempdir()) / "gru_onnx_gpu_dry_run" if args.dry_run else RESULTS)
    if args.placeholder:
        Results.start(out, {"schema": 1}).write()
        print(f"wrote {out / 'gpu.md'} and gpu.json (not yet measured)")
        return 0
    selected = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(selected) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; valid: {', '.join(PARTS)}")

    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sizes = DRY if args.dry_run else GPU
    keep: dict[str, Any] = {}
    previous = out / "gpu.json"
    if set(selected) != set(PARTS) and previous.exists():
        keep = {k: v for k, v in json.loads(previous.read_text()).get("parts", {}).items() if k not in selected}
    with working_folder(args.keep_files) as folder:
        ctx = Context(sizes, args.dry_run, folder)
        problem = pytorch_problem(ctx)
        command = shlex.join(["python", "benchmarks/gpu.py", *(argv if argv is not None else sys.argv[1:])])
        header = {
            "schema": 1,
            "mode": "dry-run" if args.dry_run else "gpu",
            "command": command,
            "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "budget_s": args.budget_s,
            "machine": machine_line(ctx.device),
            "versions": versions(),
            "sizes": {"input": sizes.input, "hidden": sizes.hidden},
        }
        results = Results.start(out, header, keep)
        results.started = started
        reasons = {"pytorch": problem}
        if args.dry_run:
            results.part("pytorch")["note"] = (
                "Dry run: the CPU stands in (nn.GRU is PyTorch's CPU kernel); compiled with the aot_eager backend, "
                "as inductor's C++ build takes tens of seconds on a CPU."
            )
        if "onnxruntime" in selected:
            ctx.provider = "cpu" if args.dry_run else "cuda"
            reasons["onnxruntime"] = ort_problem(ctx, ctx.provider)
            if args.dry_run and not reasons["onnxruntime"]:
                results.part("onnxruntime")["note"] = "Dry run: ONNX Runtime's CPU execution provider stands in."
        if "tensorrt" in selected:
            reasons["tensorrt"] = ort_problem(ctx, "tensorrt")
        for key, reason in reasons.items():
            if key in selected and reason:
                results.part(key)["reason"] = reason
                results.part(key)["status"] = "not measurable here"
        results.write()
        every = pytorch_steps(sizes) + ort_steps(sizes, "onnxruntime") + ort_steps(sizes, "tensorrt")
        steps = sorted((s for s in every if s.part in selected), key=lambda s: ORDER.index(s.group))
        deadline = started + args.budget_s
        run_steps(steps, ctx, results, deadline)
        results.data["elapsed_s"] = round(time.monotonic() - started, 1)
        results.data["finished"] = True
        results.write()
    print(f"wrote {out / 'gpu.md'} and {out / 'gpu.json'} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
