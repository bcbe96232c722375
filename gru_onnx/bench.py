"""``gru-onnx bench``: latency of an exported file beside baselines run in the same process.

Baselines: ONNX Runtime's fused ``GRU`` op per GRU stack (with the file's own weights where
the activations have an exact native form, else a sigmoid/tanh op of the same sizes, labelled
a yardstick) and PyTorch eager (the CustomGRU rebuilt from the file, or a ``--model``
factory's module). Every timed call of every runner is interleaved with the others, round by
round, so machine noise is shared; ratios are medians of the per-round ratios to the fused op
(the sum of the stacks' fused ops for a file with several) in the same runtime: the JavaScript
runtimes (``node``, ``web``, ``webgpu``) time their own fused op, everything else ONNX Runtime
CPU's. OpenVINO gets the feeds' static shapes before compiling: with dynamic shapes it runs far
slower. Every runner is timed through its timing mode (:meth:`gru_onnx.runners.Runner.timed`),
on inputs from :func:`gru_onnx.samples.timing_feeds`; runtimes in another process time each run
inside themselves (:attr:`~gru_onnx.runners.Runner.times_inside`), so the round trip is not
counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx.check.runs import one_line
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.exporting import export
from gru_onnx.files import atomic_write
from gru_onnx.metadata import (
    find_metadata,
    load_model,
    lone_roles,
    lone_stack,
    plain_inputs,
    stack_spec,
    state_inputs,
)  # fmt: skip
from gru_onnx.module import CustomGRU
from gru_onnx.options import BenchOptions, GraphOptions
from gru_onnx.protos import control_flow_ops
from gru_onnx.rebuild import reference_from_file, state_dict_from_file
from gru_onnx.runners import Runner, RuntimeUnavailable, make_runner, unavailable_reason
from gru_onnx.runners.onnxruntime import OnnxRuntimeRunner
from gru_onnx.samples import timing_feeds

SCHEMA_ID = "gru-onnx/bench-report/1"


@dataclass(frozen=True)
class Timing:
    """One runner's latencies: what ran (``kind``: file, fused-op, yardstick or pytorch), where,
    and its median/p10/p90 in milliseconds, sequences per second, and median ratio to the fused op."""

    name: str
    kind: str
    runtime: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    sequences_per_s: float
    ratio: float | None
    note: str = ""


@dataclass
class BenchReport:
    """A bench run: the file, the shapes and settings, the machine, and one Timing per runner."""

    file: str
    batch: int
    seq_len: int
    threads: int
    warmup: int
    runs: int
    machine: str
    versions: dict[str, str]
    timings: list[Timing] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA_ID
        return data

    def timing(self, name: str) -> Timing:
        return next(t for t in self.timings if t.name == name)


def machine() -> str:
    """CPU model name and logical core count (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"


def versions() -> dict[str, str]:
    """Versions of the runtimes a bench can use (missing ones left out)."""
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for dist in ("gru-onnx", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino"):
        with contextlib.suppress(md.PackageNotFoundError):
            found[dist] = md.version(dist)
    return found


# ---------------------------------------------------------------- baselines


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fused_op_files(
    model: Any, metadata: Mapping[str, Any], batch: int, seq_len: int, folder: Path
) -> list[tuple[str, str, Path, dict[str, np.ndarray]]]:
    """Per GRU stack ``(label, kind, path, feeds)`` of a file holding ONNX Runtime's fused GRU op:
    the stack's own weights where its activations have an exact native form (kind ``fused-op``),
    else sigmoid/tanh of the same sizes (kind ``yardstick``)."""
    out = []
    for i, stack in enumerate(metadata.get("stacks", [])):
        spec = stack_spec(stack)
        exact = spec.activation.native() is not None and spec.recurrent_activation.native() is not None
        label = stack["path"] or "GRU"
        if exact:
            gru = CustomGRU.from_spec(spec)
            gru.load_state_dict(state_dict_from_file(model, stack), strict=True)
            kind = "fused-op"
        else:
            gru = CustomGRU(
                spec.input_size,
                spec.hidden_size,
                num_layers=spec.num_layers,
                bias=spec.bias,
                batch_first=spec.batch_first,
                bidirectional=spec.bidirectional,
            )
            kind = "yardstick"
        gru = gru.float().eval()
        shape = (2, seq_len, spec.input_size) if spec.batch_first else (seq_len, 2, spec.input_size)
        path = folder / f"fused_{i}.onnx"
        with torch.no_grad():
            export(gru, (torch.randn(*shape),), path, graph=GraphOptions(strategy="native"), check=None)
        run_shape = (batch, seq_len, spec.input_size) if spec.batch_first else (seq_len, batch, spec.input_size)
        feeds = {"input": np.random.default_rng(i).standard_normal(run_shape).astype(np.float32)}
        out.append((label, kind, path, feeds))
    return out


# ---------------------------------------------------------------- timing


def interleaved(
    runners: Sequence[Callable[[], Any]], warmup: int, runs: int, inside: Sequence[bool] = ()
) -> list[list[float]]:
    """Seconds per call, ``runs`` calls of each runner, one call of each per round, after
    ``warmup`` calls of each. The order is drawn afresh each round (seeded): with a fixed or
    rotating order one runner always follows the same neighbour, and a call right after another
    process's run (Node.js, a browser) measured 11-17% slower on ONNX Runtime CPU, biasing every
    ratio built on it (``benchmarks/results/web.md``). A runner flagged in ``inside`` returns the
    seconds it measured itself; the others are timed here."""
    for run in runners:
        for _ in range(warmup):
            run()
    times: list[list[float]] = [[] for _ in runners]
    clock = time.perf_counter
    flags = list(inside) or [False] * len(runners)
    order = list(range(len(runners)))
    shuffle = random.Random(0).shuffle
    for _ in range(runs):
        shuffle(order)
        for i in order:
            start = clock()
            measured = runners[i]()
            times[i].append(float(measured) if flags[i] else clock() - start)
    return times


def _quantile(values: Sequence[float], q: float) -> float:
    return float(np.quantile(np.asarray(values), q))


_BENCH = BenchOptions()


def bench(path: str | os.PathLike[str], options: BenchOptions = _BENCH, *, model: Any = None) -> BenchReport:
    """Time ``path`` on ``options.providers`` beside the fused-op and PyTorch baselines (see the
    module doc). ``model`` (a torch module) is the PyTorch baseline for a whole-model file; a lone
    CustomGRU file is rebuilt from its metadata without it."""
    path = Path(path)
    proto = load_model(path)
    metadata = find_metadata(proto)
    if options.cuda_graph:
        _refuse_uncapturable(proto)
    feeds, seq_len = timing_feeds(proto, metadata, options.batch, options.seq_len)
    report = BenchReport(
        str(path), options.batch, seq_len, options.threads, options.warmup, options.runs, machine(), versions()
    )
    runners: list[Runner] = []
    entries: list[_Entry] = []
    try:
        for key in options.providers:
            if reason := unavailable_reason(key):
                report.skipped.append(reason)
                continue
            if options.cuda_graph:  # BenchOptions allows it with the CUDA provider alone
                runner = OnnxRuntimeRunner(path, key, threads=options.threads, cuda_graph=True)
            else:
                runner = make_runner(key, path, threads=options.threads)
            _open(runner, runners)
            note = "static shapes (reshaped)" if key == "openvino" else "CUDA graph" if options.cuda_graph else ""
            if runner.times_inside:
                note = "timed inside the runtime"
            entries.append(_Entry("file", "file", runner.name, runner.timed(feeds), note, runner.times_inside, key))
        with tempfile.TemporaryDirectory() as tmp:
            if options.baselines and metadata is not None:
                files = fused_op_files(proto, metadata, options.batch, seq_len, Path(tmp))
                # ONNX Runtime CPU's fused op, and the JavaScript runtimes' own (their ratios' base)
                for key in ["cpu", *(e.key for e in entries if e.inside)]:
                    entries.extend(_fused_entries(files, key, options.threads, runners))
            if options.baselines:
                torch_call = _pytorch_call(proto, metadata, feeds, model)
                if torch_call is not None:
                    entries.append(_Entry("PyTorch eager", "pytorch", "torch-cpu", torch_call[0], torch_call[1]))
            if not entries:
                raise GruOnnxUsageError("nothing to time: " + "; ".join(report.skipped))
            _probe(entries)
            with _torch_threads(options.threads):
                calls, inside = [e.call for e in entries], [e.inside for e in entries]
                times = interleaved(calls, options.warmup, options.runs, inside)
    finally:
        for runner in runners:
            runner.close()
    bases = _bases(entries, times, options.runs)
    for entry, samples in zip(entries, times, strict=True):
        name, kind, runtime, note = entry.name, entry.kind, entry.runtime, entry.note
        median = statistics.median(samples)
        base = bases.get(entry.key if entry.key in bases else "cpu")
        ratio = statistics.median(s / b for s, b in zip(samples, base, strict=True)) if base else None
        report.timings.append(
            Timing(
                name,
                kind,
                runtime,
                1e3 * median,
                1e3 * _quantile(samples, 0.1),
                1e3 * _quantile(samples, 0.9),
                options.batch / median,
                ratio,
                note,
            )
        )
    return report


def _refuse_uncapturable(model: onnx.ModelProto) -> None:
    """CUDA graphs capture a run without control flow (an unrolled file): others are refused, saying why."""
    if ops := control_flow_ops(model):
        raise GruOnnxUsageError(
            f"CUDA graphs cannot capture this file: it has control flow ({', '.join(ops)}), which ONNX Runtime runs "
            "from the CPU; export it unrolled (a static length) to replay it as a graph"
        )


@dataclass(frozen=True)
class _Entry:
    """One timed runner: what it is, its call, whether the call times itself, its provider key."""

    name: str
    kind: str
    runtime: str
    call: Callable[[], Any]
    note: str
    inside: bool = False
    key: str = "cpu"


def _probe(entries: Sequence[_Entry]) -> None:
    """Run every entry once before timing: a runtime that cannot run the file is a one-line
    usage error naming it, not a traceback from the middle of the timing loop."""
    for entry in entries:
        try:
            entry.call()
        except Exception as exc:
            raise GruOnnxUsageError(f"{entry.runtime} could not run the {entry.name}: {one_line(exc)}") from None


def _fused_entries(
    files: list[tuple[str, str, Path, dict[str, np.ndarray]]], key: str, threads: int, opened: list[Runner]
) -> list[_Entry]:
    """The fused-op baselines (one per GRU stack) on runtime ``key``, opened (and remembered)."""
    entries = []
    for label, kind, fused_path, fused_feeds in files:
        runner = _open(make_runner(key, fused_path, threads=threads), opened)
        name = f"fused GRU op ({label})" if kind == "fused-op" else f"fused GRU op, sigmoid/tanh ({label})"
        note = "same weights" if kind == "fused-op" else "yardstick: same sizes, default activations"
        entries.append(_Entry(name, kind, runner.name, runner.timed(fused_feeds), note, runner.times_inside, key))
    return entries


def _bases(entries: Sequence[_Entry], times: Sequence[Sequence[float]], runs: int) -> dict[str, list[float]]:
    """Per provider key, the per-round sum of its fused-op (or yardstick) runs: the ratios' base."""
    bases: dict[str, list[float]] = {}
    for entry, samples in zip(entries, times, strict=True):
        if entry.kind in ("fused-op", "yardstick"):
            base = bases.setdefault(entry.key, [0.0] * runs)
            for r, seconds in enumerate(samples):
                base[r] += seconds
    return bases


def _open(runner: Runner, opened: list[Runner]) -> Runner:
    """Open ``runner`` and remember it for closing. A runtime asked for that cannot start here,
    or cannot load the file, is a one-line usage error naming it and its first words on why."""
    try:
        runner.open()
    except GruOnnxUsageError:
        raise
    except RuntimeUnavailable as exc:
        raise GruOnnxUsageError(f"{runner.name} is unavailable: {one_line(exc)}") from None
    except Exception as exc:
        raise GruOnnxUsageError(f"{runner.name} could not load {runner.path.name}: {one_line(exc)}") from None
    opened.append(runner)
    return runner


def _pytorch_call(
    proto: Any, metadata: Mapping[str, Any] | None, feeds: Mapping[str, np.ndarray], model: Any
) -> tuple[Callable[[], Any], str] | None:
    """The PyTorch eager baseline: ``model`` on the feeds, or the lone CustomGRU rebuilt from the file."""
    if model is not None:
        module = model.eval()
        tensors = [torch.from_numpy(a) for a in feeds.values()]

        def call_model() -> Any:
            with torch.no_grad():
                return module(*tensors)

        return call_model, "the --model module"
    if lone_stack(metadata) is None:
        return None
    gru = reference_from_file(proto, metadata)
    # feeds by role, not name (a factory may name them); a streaming file's state
    # [batch, layers*dirs, hidden] is the module's hx [layers*dirs, batch, hidden]
    forward = {"input": "input", "h0": "hx", "lengths": "lengths"}
    kwargs = {
        forward[role]: torch.from_numpy(feeds[name]) for role, name in lone_roles(plain_inputs(proto, metadata)).items()
    }
    for state in state_inputs(metadata):
        kwargs["hx"] = torch.from_numpy(feeds[state]).transpose(0, 1).contiguous()

    def call() -> Any:
        with torch.no_grad():
            return gru(**kwargs)

    return call, "CustomGRU rebuilt from the file"


# ---------------------------------------------------------------- output


def table(report: BenchReport) -> Any:
    """A rich table: one row per runner."""
    from rich.table import Table

    title = (
        f"{Path(report.file).name}: batch {report.batch}, seq_len {report.seq_len}, {report.threads} thread(s), "
        f"median of {report.runs} interleaved runs after {report.warmup} warm-up"
    )
    out = Table(title=title)
    for column in ("runner", "runtime", "median ms", "p10 ms", "p90 ms", "seq/s", "x fused op", "note"):
        justify = "right" if "ms" in column or column in ("seq/s", "x fused op") else "left"
        out.add_column(column, justify=justify, overflow="fold")  # narrow terminals wrap, never cut a name
    for t in report.timings:
        ratio = f"{t.ratio:.2f}" if t.ratio is not None else "-"
        out.add_row(
            t.name,
            t.runtime,
            f"{t.median_ms:.3f}",
            f"{t.p10_ms:.3f}",
            f"{t.p90_ms:.3f}",
            f"{t.sequences_per_s:,.0f}",
            ratio,
            t.note,
        )
    return out


def write_json(report: BenchReport, path: str | os.PathLike[str]) -> None:
    """Write the report (schema: ``gru_onnx/bench.schema.json``) atomically."""
    atomic_write(path, json.dumps(report.to_json(), indent=2) + "\n")
