"""Benchmark: which ONNX Runtime and OpenVINO releases load and run the files gru-onnx writes.

Production runtimes lag behind PyPI (Triton containers of 2023 ship ONNX Runtime 1.16), so the
files gru-onnx writes are run on older releases too, apart from what gru-onnx itself needs to
run. Three steps:

1. In this environment (torch, gru-onnx): export a fixed set of files (each strategy at opsets
   17 and 18, a streaming file, int8 files in both modes, a file with external data, and one
   restamped IR 10 as torch.onnx writes it, for comparison) and compute each file's reference
   outputs with its PyTorch model.
2. Per release: a throwaway virtual environment under the cache folder (reused; ``--refresh``
   rebuilds it) with that release alone (``numpy<2`` beside releases built before NumPy 2,
   which otherwise fail at ``run()``), no torch; ``runtime_matrix_runner.py`` runs each file
   there (a streaming file chunk by chunk, carrying its states) and saves the outputs.
3. Compare with the references (gru-onnx's check tolerances: float32 ``1e-5 * s + 1e-4 * |ref|``,
   int8 ``0.05 * s + 0.05 * |ref|``, ``s`` the inputs' RMS, at least 1) and write
   ``benchmarks/results/runtime_matrix.md``: per file and release, loads / error / pass.

    python benchmarks/runtime_matrix.py            # every release -> benchmarks/results/runtime_matrix.md
    python benchmarks/runtime_matrix.py --ci       # ONNX Runtime 1.16.3 only, table printed; exit 1 on a failure
    python benchmarks/runtime_matrix.py --refresh  # rebuild the cached environments first
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.check.compare import DEFAULT_TOLERANCES
from gru_onnx.irversion import stamp
from gru_onnx.metadata import find_metadata, input_time_axes
from gru_onnx.options import groups_from_flat
from gru_onnx.quantization import INT8_TOLERANCES
from gru_onnx.samples import time_axes
from gru_onnx.streaming import state_pairs

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runtime_matrix_runner.py"
RESULT = HERE / "results" / "runtime_matrix.md"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gru-onnx" / "runtime-matrix"


# --------------------------------------------------------------------------------------------
# Runtimes


@dataclass(frozen=True)
class Runtime:
    """One release of one runtime, installed alone in a throwaway environment."""

    kind: str  # "onnxruntime" or "openvino": the pip package and the runner's adapter
    version: str

    #: The first release of each runtime built against NumPy 2; older ones get ``numpy<2``.
    NUMPY_2_FROM = {"onnxruntime": (1, 19), "openvino": (2024, 3)}  # noqa: RUF012

    @property
    def label(self) -> str:
        return f"{'ORT' if self.kind == 'onnxruntime' else 'OV'} {self.version}"

    def requirements(self) -> list[str]:
        release = tuple(int(p) for p in self.version.split(".")[:2])
        numpy = "numpy<2" if release < self.NUMPY_2_FROM[self.kind] else "numpy"
        return [f"{self.kind}=={self.version}", numpy]


ONNXRUNTIME = [Runtime("onnxruntime", v) for v in
               ("1.15.1", "1.16.3", "1.17.3", "1.18.1", "1.19.2", "1.20.1", "1.22.1", "1.31.1", "1.32.0")]  # fmt: skip
OPENVINO = [Runtime("openvino", v) for v in ("2023.3.0", "2024.0.0", "2024.1.0", "2024.6.0", "2025.4.1", "2026.4.1")]
#: The oldest ONNX Runtime the files must run on; CI runs it (``--ci``).
CI_RUNTIME = Runtime("onnxruntime", "1.16.3")


def environment(runtime: Runtime, cache: Path, refresh: bool) -> tuple[Path | None, str]:
    """The Python of ``runtime``'s environment (built when missing or stale), or None and why."""
    folder = cache / f"{runtime.kind}-{runtime.version}"
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = folder / "requirements.json"
    wanted = json.dumps({"python": platform.python_version(), "requirements": runtime.requirements()})
    if not refresh and marker.is_file() and marker.read_text() == wanted:
        return python, ""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *runtime.requirements()]
    done = subprocess.run(pip, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or ["pip failed"]
        return None, lines[0]
    marker.write_text(wanted)
    return python, ""


# --------------------------------------------------------------------------------------------
# Step 1: the files and their references


def export_file(model: torch.nn.Module, args: tuple[Any, ...], path: Path, **flat: Any) -> Path:
    """The one call into gru-onnx's export API: ``flat`` are ``gru_onnx.export``'s keywords."""
    return gru_onnx.export(model, args, path, **groups_from_flat({**flat, "check": False}).as_kwargs()).path


@dataclass(frozen=True)
class Case:
    """One file of the set: how it is made and what it shows."""

    name: str
    what: str
    flat: dict[str, Any]  # export keywords
    lengths: bool = False  # bidirectional, with a lengths input
    stream_chunks: tuple[int, ...] | None = None  # a streaming file, run in these chunks
    restamp: int | None = None  # written again with this IR version (the "before" file)

    @property
    def int8(self) -> bool:
        return self.flat.get("quantize") is not None


SEQ, BATCH, INPUT, HIDDEN = 12, 2, 8, 32


def flat(strategy: str, opset: int = 18, **more: Any) -> dict[str, Any]:
    """Export keywords: ``strategy`` at ``opset``, the sequence axis dynamic where it can be."""
    return {"strategy": strategy, "opset": opset, "dynamic_seq": strategy != "unrolled", **more}


BIDI = "bidirectional, lengths"
CASES = [
    *(Case(f"{s}-{o}", f"{s}, {BIDI}", flat(s, o), lengths=True)
      for s in ("loop", "unrolled", "native") for o in (17, 18)),
    Case("streaming-18", "loop, streaming, run in chunks of 5+4+3", flat("loop", streaming=True),
         stream_chunks=(5, 4, 3)),
    *(Case(f"int8-{m}-{s}", f"int8 {m} mode, {s}", flat(s, quantize=m)) for m in ("weights", "dynamic")
      for s in ("loop", "unrolled")),
    Case("external-data", "loop, external data file", flat("loop", external_data=True)),
    Case("ir10-loop-18", "loop-18 stamped IR 10 as torch.onnx writes it", flat("loop"), lengths=True, restamp=10),
]  # fmt: skip


@dataclass
class Prepared:
    """A file on disk with its inputs, references and the runner's case description."""

    case: Case
    path: Path
    spec: Path  # the runner's CASE.json
    reference: dict[str, np.ndarray]
    magnitude: float  # RMS of the float inputs, at least 1 (the check's ``s``)
    ir_version: int = 0
    opset: int = 0
    size: int = 0


def prepare(case: Case, folder: Path) -> Prepared:
    """Export ``case`` into ``folder``; its inputs, references and runner description beside it."""
    torch.manual_seed(0)
    bidirectional = case.lengths
    gru = CustomGRU(INPUT, HIDDEN, num_layers=2, bidirectional=bidirectional, activation="relu",
                    batch_first=case.stream_chunks is not None).eval()  # fmt: skip
    x = torch.randn(BATCH, SEQ, INPUT) if gru.spec.batch_first else torch.randn(SEQ, BATCH, INPUT)
    args: tuple[Any, ...] = (x, None, torch.tensor([SEQ, SEQ - 5])) if case.lengths else (x,)
    path = folder / case.name / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    export_file(gru, args, path, **case.flat)
    if case.restamp is not None:
        model = onnx.load(path)
        stamp(model, case.restamp)
        onnx.save(model, path)
    model = onnx.load(path, load_external_data=False)
    metadata = find_metadata(model) or {}
    pairs = state_pairs(metadata)
    states = {n for p in pairs for n in (p.input, p.output)}
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers and i.name not in states]
    outputs = [o.name for o in model.graph.output if o.name not in states]
    tensors = [a for a in args if a is not None]
    feeds = {name: t.numpy() for name, t in zip(inputs, tensors, strict=True)}
    with torch.no_grad():
        produced = gru(*args)
    reference = {name: t.numpy() for name, t in zip(outputs, produced, strict=True)}
    spec: dict[str, Any] = {"file": str(path), "inputs": str(path.with_name("inputs.npz"))}
    np.savez(spec["inputs"], **feeds)
    if case.stream_chunks is not None:
        ranks = {name: array.ndim for name, array in feeds.items()}
        spec["stream"] = {
            "states": [p.to_json() for p in pairs],
            "chunks": list(case.stream_chunks),
            "batch_axis": 0,
            "input_axes": input_time_axes(metadata, ranks),
            "output_axes": dict(zip([o.name for o in model.graph.output], time_axes(model, metadata), strict=True)),
        }
    spec_path = path.with_name("case.json")
    spec_path.write_text(json.dumps(spec, indent=1))
    floats = [a for a in feeds.values() if a.dtype.kind == "f"]
    magnitude = max(1.0, float(np.sqrt(np.mean(np.concatenate([a.ravel() for a in floats]) ** 2))))
    size = sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith("model.onnx"))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return Prepared(case, path, spec_path, reference, magnitude, model.ir_version, opset, size)


# --------------------------------------------------------------------------------------------
# Steps 2 and 3: run, compare


@dataclass
class Outcome:
    """One file on one release."""

    stage: str  # "ran", "load", "run", "crash", "missing" (no environment)
    error: str | None = None
    max_abs: float | None = None
    passed: bool = False
    versions: dict[str, str] = field(default_factory=dict)


def run_case(python: Path, runtime: Runtime, prepared: Prepared, out: Path) -> Outcome:
    """Run one file in ``runtime``'s environment and compare its outputs with the references."""
    command = [str(python), str(RUNNER), runtime.kind, str(prepared.spec), str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return Outcome("crash", "timed out after 300 s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return Outcome("crash", f"the runner died ({tail})")
    report = json.loads(lines[-1])
    outcome = Outcome(report["stage"], report["error"], versions={"numpy": report["numpy"]})
    if outcome.stage != "ran":
        return outcome
    return compare(prepared, out, outcome)


def compare(prepared: Prepared, out: Path, outcome: Outcome) -> Outcome:
    """Max |runtime - PyTorch| over every output; passed under gru-onnx's check tolerances."""
    atol, rtol = INT8_TOLERANCES[prepared.case.flat["quantize"]] if prepared.case.int8 else DEFAULT_TOLERANCES[
        "float32"]  # fmt: skip
    worst, passed = 0.0, True
    with np.load(out) as got:
        for name, want in prepared.reference.items():
            if name not in got.files or got[name].shape != want.shape:
                shape = got[name].shape if name in got.files else "missing"
                outcome.error = f"output {name!r}: shape {shape}, want {want.shape}"
                outcome.passed = False
                return outcome
            diff = np.abs(got[name].astype(np.float64) - want)
            worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
            passed &= bool(np.all(diff <= atol * prepared.magnitude + rtol * np.abs(want)))
    outcome.max_abs, outcome.passed = worst, passed
    return outcome


def run_all(runtimes: Sequence[Runtime], files: Sequence[Prepared], cache: Path, refresh: bool, folder: Path,
            log: Callable[[str], None]) -> dict[Runtime, dict[str, Outcome]]:  # fmt: skip
    """Every file on every release; outputs go to ``folder/<file>/<release>.npz``."""
    results: dict[Runtime, dict[str, Outcome]] = {}
    for runtime in runtimes:
        started = time.perf_counter()
        python, why = environment(runtime, cache, refresh)
        if python is None:
            results[runtime] = {p.case.name: Outcome("missing", why) for p in files}
            log(f"{runtime.label}: no environment ({why})")
            continue
        results[runtime] = {
            p.case.name: run_case(python, runtime, p, folder / p.case.name / f"{runtime.kind}-{runtime.version}.npz")
            for p in files
        }
        passed = sum(o.passed for o in results[runtime].values())
        log(f"{runtime.label}: {passed}/{len(files)} pass ({time.perf_counter() - started:.0f} s)")
    return results


# --------------------------------------------------------------------------------------------
# The table


def error_line(message: str) -> str:
    """The telling part of a runtime's error, without paths and C++ signatures: ONNX Runtime's
    reason after its source location; OpenVINO's last line, after the op it names."""
    if "[ONNXRuntimeError]" in message:
        reason = message.split("failed:", 1)[-1] if "failed:" in message else message
        reason = re.sub(r"^\S+\.(cc|h|cpp):\d+ [\w:~]+\([^)]*\)\s*", "", reason.strip())
        line = f"ONNX Runtime: {reason.splitlines()[0]}"
    else:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        ops = re.findall(r"Node\((\w+)\)|'opset\d+::(\w+)", message)
        op = next((a or b for a, b in reversed(ops)), None)  # the op nearest the last line
        line = f"{op}: {lines[-1]}" if op and lines else (lines[-1] if lines else "")
    line = line.replace("|", "\\|")
    return line if len(line) <= 220 else line[:217] + "..."


def cell(outcome: Outcome, notes: dict[str, int]) -> str:
    if outcome.stage == "missing":
        return "no wheel"
    if outcome.stage == "ran" and outcome.error is None:
        return f"{'✓' if outcome.passed else '✗'} {outcome.max_abs:.1e}"
    line = error_line(outcome.error or "")
    number = notes.setdefault(line, len(notes) + 1)
    what = {"load": "load", "run": "run", "crash": "crash", "ran": "outputs"}[outcome.stage]
    return f"✗ {what} [{number}]"


def oldest_passing(runtimes: Sequence[Runtime], results: dict[Runtime, dict[str, Outcome]],
                   names: Sequence[str]) -> Runtime | None:  # fmt: skip
    """The oldest release from which on every tested release passes every file in ``names``."""
    oldest = None
    for runtime in reversed(runtimes):
        if not all(results[runtime][n].passed for n in names):
            break
        oldest = runtime
    return oldest


#: Why OpenVINO before 2024.1 fails, read from its errors (shapes such as ``f32[12,2,8,64]``
#: where the file asks for one axis of the input's shape).
KNOWN_OPENVINO = (
    "OpenVINO before 2024.1 ignores `Shape`'s `start`/`end` (opset 15): the node that takes the batch or "
    "sequence size from an input gets the input's whole shape, so a following `Squeeze` or `Min` fails, or the "
    "zero initial state that `ConstantOfShape` builds from it gets the wrong shape and an op downstream fails "
    "(the streaming file, whose states are inputs, runs). Not an IR version matter: the IR 10 file fails the same way."
)


def render(files: Sequence[Prepared], runtimes: Sequence[Runtime], results: dict[Runtime, dict[str, Outcome]],
           seconds: float, command: str) -> str:  # fmt: skip
    notes: dict[str, int] = {}
    lines = [
        "# The files gru-onnx writes on older runtimes",
        "",
        f"Machine: {machine()}.  ",
        f"Main environment: Python {platform.python_version()}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"gru-onnx {gru_onnx.__version__}.  ",
        "Each release runs in its own virtual environment (that release and NumPy only; `numpy<2` beside "
        f"releases built before NumPy 2).  \nCommand: `{command}` ({seconds:.0f} s, environments reused where cached).",
        "",
        f"A 2-layer CustomGRU (input {INPUT}, hidden {HIDDEN}, relu), T={SEQ}, batch {BATCH}; each file's outputs "
        "against its PyTorch model (int8 files: the float32 model). A cell is the max abs error, ✓ within "
        "gru-onnx's check tolerances (float32 1e-5 + 1e-4·|ref|, int8 0.05 + 0.05·|ref|), or what failed.",
        "",
        "## Files",
        "",
        "| file | what | opset | IR | size |",
        "|---|---|---:|---:|---:|",
    ]
    for p in files:
        lines.append(f"| {p.case.name} | {p.case.what} | {p.opset} | {p.ir_version} | {p.size / 1024:.0f} KiB |")
    lines += ["", "## Results", ""]
    lines.append("| file | " + " | ".join(r.label for r in runtimes) + " |")
    lines.append("|---|" + "---:|" * len(runtimes))
    for p in files:
        lines.append(f"| {p.case.name} | " + " | ".join(cell(results[r][p.case.name], notes) for r in runtimes) + " |")
    numpys = [f"{r.label}: numpy {next(iter(o.versions.get('numpy', '') for o in results[r].values()), '')}"
              for r in runtimes if any(o.versions for o in results[r].values())]  # fmt: skip
    lines += ["", "NumPy per environment: " + ", ".join(numpys) + "."]
    if notes:
        lines += ["", "Errors:", ""]
        lines += [f"{n}. {line}" for line, n in notes.items()]
    written = [p.case.name for p in files if p.case.restamp is None]
    lines += ["", "## Oldest runtime", ""]
    before = [p.case.name for p in files if p.case.restamp is not None]
    for kind, name in (("onnxruntime", "ONNX Runtime"), ("openvino", "OpenVINO")):
        tested = [r for r in runtimes if r.kind == kind]
        if not tested:
            continue
        oldest = oldest_passing(tested, results, written)
        if oldest is None:
            lines.append(f"- {name}: the newest release tested ({tested[-1].version}) fails a file.")
        else:
            lines.append(f"- {name}: {oldest.version} and every newer release tested run every file gru-onnx "
                         f"writes here (oldest tested: {tested[0].version}).")  # fmt: skip
        if before and (ir10 := oldest_passing(tested, results, before)) is not None and ir10 != oldest:
            lines.append(f"  The same file stamped IR 10, as torch.onnx writes it, loads from {ir10.version} on.")
    failing_ov = [r for r in runtimes if r.kind == "openvino" and not all(results[r][n].passed for n in written)]
    if any(tuple(map(int, r.version.split(".")[:2])) < (2024, 1) for r in failing_ov):
        lines += ["", KNOWN_OPENVINO]
    return "\n".join(lines) + "\n"


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ci", action="store_true", help=f"only {CI_RUNTIME.label}; exit 1 on any failure")
    parser.add_argument("--refresh", action="store_true", help="rebuild the cached environments")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"environments (default {DEFAULT_CACHE})")
    parser.add_argument("--runtimes", nargs="*", metavar="KIND==VERSION",
                        help="only these releases, e.g. onnxruntime==1.16.3 openvino==2024.6.0")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULT, help="the markdown table (not written with --ci)")
    parser.add_argument("--keep", type=Path, help="write the files, inputs and outputs here and keep them")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    if options.ci:
        runtimes = [CI_RUNTIME]
    elif options.runtimes:
        runtimes = [Runtime(*spec.split("==", 1)) for spec in options.runtimes]
    else:
        runtimes = [*ONNXRUNTIME, *OPENVINO]
    cases = [c for c in CASES if not (options.ci and c.restamp is not None)]
    with contextlib.ExitStack() as stack:
        folder = options.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gru-onnx-matrix-")))
        files = [prepare(case, folder) for case in cases]
        print(f"exported {len(files)} files ({time.perf_counter() - started:.0f} s)", flush=True)
        results = run_all(runtimes, files, options.cache, options.refresh, folder, lambda s: print(s, flush=True))
    seconds = time.perf_counter() - started
    command = "python benchmarks/runtime_matrix.py" + (" --ci" if options.ci else "")
    table = render(files, runtimes, results, seconds, command)
    if options.ci:
        print(table)
        failed = [f"{r.label} {name}" for r in runtimes for name, o in results[r].items() if not o.passed]
        if failed:
            print(f"FAILED on the oldest supported runtime: {', '.join(failed)}", file=sys.stderr)
            return 1
        print(f"every file runs on {CI_RUNTIME.label} ({seconds:.0f} s)")
        return 0
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(table)
    print(f"wrote {options.output} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
