"""Benchmark: evidence for ``target="web"`` (issue 21): which form of a GRU runs fastest, and
exactly, in onnxruntime-web's WebAssembly backend in headless Chromium.

Runtimes: onnxruntime-web (WebAssembly, 1 thread) in headless Chromium, the primary one;
onnxruntime-node (CPU execution provider, 1 thread), secondary; ONNX Runtime CPU from Python
(1 intra-op thread) as a comparison column. The JavaScript runtimes time each run inside
themselves (``performance.now`` around ``session.run``), so the trip from Python is not counted.

Three parts, every timing interleaved with :func:`gru_onnx.bench.interleaved` (one call of each
runner per round, all runtimes in the same rounds), every ratio the median of per-round ratios
within one runtime, then the median over blocks:

1. Per frame (streaming, one frame per call): the RNNoise-shaped model of
   ``examples/streaming_denoiser.py`` as a streaming file in each form (loop with a dynamic chunk,
   unrolled with ``chunk=1``, the native GRU op), against the sum of the three stacks' fused GRU
   ops in the same runtime, and against each other.
2. Whole sequences: a lone CustomGRU (input 64, hidden 128, batch 1, reset-before; relu, exact as
   the native op, and gelu, which has none) at several static lengths: unrolled, loop (static and
   dynamic length) and native (relu), each against the fused GRU op in the same runtime
   (:func:`gru_onnx.bench.fused_op_files`; for gelu a sigmoid/tanh op of the same sizes).
3. Exactness of the native GRU op: every activation pair the native strategy accepts, both reset
   forms, float32 and float16, run in onnxruntime-web and -node (and ONNX Runtime CPU) against
   the CustomGRU in float64.

    python benchmarks/web.py            # -> benchmarks/results/web.md (about 10 minutes)
    python benchmarks/web.py --quick    # a smoke run: tiny counts, printed only
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gru_onnx  # noqa: E402
from examples.streaming_denoiser import Denoiser  # noqa: E402
from gru_onnx import CustomGRU, GraphOptions, ShapeOptions, StreamingOptions  # noqa: E402
from gru_onnx.bench import fused_op_files, interleaved, machine, versions  # noqa: E402
from gru_onnx.runners import make_runner, unavailable_reason  # noqa: E402
from gru_onnx.web import browser  # noqa: E402

#: Runtimes, primary first: provider key -> column label.
RUNTIMES = {"web": "web (wasm)", "node": "node", "cpu": "ORT CPU (Python)"}
INPUT, HIDDEN = 64, 128
LENGTHS = (1, 4, 8, 16, 32, 64, 128, 256)
#: Streaming files of the Denoiser: label -> (graph options, streaming options).
FRAME_FORMS = {
    "loop (dynamic chunk)": (GraphOptions(strategy="loop"), StreamingOptions(enabled=True)),
    "unrolled (chunk=1)": (GraphOptions(strategy="unrolled"), StreamingOptions(enabled=True, chunk=1)),
    "native (dynamic chunk)": (GraphOptions(strategy="native"), StreamingOptions(enabled=True)),
}
#: Whole-sequence files of the lone GRU: label -> (strategy, dynamic length).
SEQ_FORMS = {
    "unrolled": ("unrolled", False),
    "loop (static T)": ("loop", False),
    "loop (dynamic T)": ("loop", True),
    "native": ("native", False),
}
#: Activation pairs (candidate, gates) the native strategy accepts: every native-capable
#: activation as the candidate under sigmoid gates, as the gates under a tanh candidate, and
#: pairs where both take parameters (the alpha/beta lists' order).
NATIVE_CANDIDATES = ("tanh", "relu", "sigmoid", "leaky_relu", "leaky_relu(alpha=0.2)", "elu", "elu(alpha=0.5)",
                     "celu", "softsign", "hard_sigmoid", "linear")  # fmt: skip
NATIVE_GATES = ("hard_sigmoid", "hard_sigmoid(alpha=0.2)", "tanh", "relu", "softsign", "leaky_relu(alpha=0.2)",
                "elu(alpha=0.5)", "linear")  # fmt: skip
NATIVE_MIXED = (("leaky_relu(alpha=0.2)", "hard_sigmoid(alpha=0.2)"), ("elu(alpha=0.5)", "hard_sigmoid"),
                ("relu", "hard_sigmoid"))  # fmt: skip
TOLERANCE = {"float32": (1e-5, 1e-4), "float16": (1e-2, 1e-2)}  # (atol, rtol)


def say(text: str) -> None:
    print(text, flush=True)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def block_ratios(times: list[list[float]], index: int, base: list[float]) -> float:
    """Median over the rounds of ``times[index][r] / base[r]``."""
    return statistics.median(t / b for t, b in zip(times[index], base, strict=True))


def summarize(blocks: list[float]) -> dict[str, float]:
    return {"median": statistics.median(blocks), "low": min(blocks), "high": max(blocks)}


def rounds(entries: list[tuple[str, str, Callable[[], Any], bool]], warmup: int, runs: int,
           rng: np.random.Generator) -> list[list[float]]:  # fmt: skip
    """Seconds per call of every entry ``(key, label, call, inside)``: runtime by runtime, ``runs``
    rounds of :func:`gru_onnx.bench.interleaved` over that runtime's entries, each round in a fresh
    random order. Runtimes apart: a call right after another process's (the same entry every
    round, with interleaved's rotation) ran up to 3x slower on the CPU here. Random order: with a
    fixed order each entry always follows the same one, and pays for what that one left in the caches."""
    times: list[list[float]] = [[] for _ in entries]
    for key in dict.fromkeys(e[0] for e in entries):
        mine = [i for i, e in enumerate(entries) if e[0] == key]
        interleaved([entries[i][2] for i in mine], warmup, 0, [entries[i][3] for i in mine])
        for _ in range(runs):
            order = [mine[j] for j in rng.permutation(len(mine))]
            found = interleaved([entries[i][2] for i in order], 0, 1, [entries[i][3] for i in order])
            for i, (seconds,) in zip(order, found, strict=True):
                times[i].append(seconds)
    return times


class Runners:
    """Opened runners, closed together; a file that fails to load gives its one-line error."""

    def __init__(self) -> None:
        self.opened: list[Any] = []
        self.notes: dict[str, str] = {}

    def open(self, key: str, path: Path) -> Any:
        runner = make_runner(key, path, threads=1).open()
        self.opened.append(runner)
        if runner.notes:
            self.notes.setdefault(key, runner.notes[0])
        return runner

    def close(self) -> None:
        for runner in self.opened:
            runner.close()
        self.opened.clear()


# ---------------------------------------------------------------- 1. per frame


def per_frame(keys: list[str], runs: int, repeats: int, folder: Path, held: Runners) -> list[dict]:
    """The Denoiser, one frame per call (states fed as zeros: the work is the same for any values)."""
    torch.manual_seed(0)
    model = Denoiser().eval()
    paths = {}
    for i, (label, (graph, streaming)) in enumerate(FRAME_FORMS.items()):
        paths[label] = folder / f"frame_{i}.onnx"
        result = gru_onnx.export(model, (torch.randn(2, 8, 42),), paths[label], graph=graph, streaming=streaming,
                                 check=None)  # fmt: skip
        say(f"per frame: exported {label}: {result.strategy}")
    proto = onnx.load(paths["loop (dynamic chunk)"])
    fused = fused_op_files(proto, gru_onnx.read_metadata(proto), 1, 1, folder)
    rng = np.random.default_rng(0)
    frame = rng.standard_normal((1, 1, 42)).astype(np.float32)
    feeds = {"features": frame}
    for state in gru_onnx.read_metadata(proto)["streaming"]["states"]:
        feeds[state["input"]] = np.zeros((1, *state["shape"][1:]), np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(frame))["gains"].numpy()
    entries: list[tuple[str, str, Callable[[], Any], bool]] = []  # (key, label, call, inside)
    errors: dict[tuple[str, str], float | str] = {}
    runners = Runners()
    try:
        for key in keys:
            for label, path in paths.items():
                try:
                    runner = runners.open(key, path)
                    names = [o.name for o in onnx.load(path, load_external_data=False).graph.output]
                    gains = runner.run(feeds)[names.index("gains")]
                    errors[key, label] = float(np.abs(gains - expected).max())
                except Exception as exc:  # a form that fails to load or run: recorded, not timed
                    errors[key, label] = one_line(exc)
                    say(f"per frame: {key} {label}: {errors[key, label]}")
                    continue
                entries.append((key, label, runner.timed(feeds), runner.times_inside))
            for stack, _, path, fused_feeds in fused:
                runner = runners.open(key, path)
                entries.append((key, f"fused GRU op ({stack})", runner.timed(fused_feeds), runner.times_inside))
        held.notes.update({k: v for k, v in runners.notes.items() if k not in held.notes})
        blocks: dict[tuple[str, str], dict[str, list[float]]] = {}
        rng = np.random.default_rng(0)
        for b in range(repeats):
            times = rounds(entries, warmup=20 if b == 0 else 5, runs=runs, rng=rng)
            for key in keys:
                mine = [i for i, e in enumerate(entries) if e[0] == key]
                base = [sum(times[i][r] for i in mine if entries[i][1].startswith("fused")) for r in range(runs)]
                loop = next((i for i in mine if entries[i][1] == "loop (dynamic chunk)"), None)
                for i in mine:
                    got = blocks.setdefault((key, entries[i][1]), {"us": [], "fused": [], "loop": []})
                    got["us"].append(1e6 * statistics.median(times[i]))
                    got["fused"].append(block_ratios(times, i, base))
                    if loop is not None:
                        got["loop"].append(block_ratios(times, i, times[loop]))
                base_us = 1e6 * statistics.median(base)
                blocks.setdefault((key, "fused GRU ops, sum of the 3 stacks"), {"us": [], "fused": [], "loop": []})
                blocks[key, "fused GRU ops, sum of the 3 stacks"]["us"].append(base_us)
            say(f"per frame: block {b + 1}/{repeats} done")
    finally:
        runners.close()
    rows = []
    for key in keys:
        for label in [*FRAME_FORMS, "fused GRU ops, sum of the 3 stacks"]:
            got = blocks.get((key, label))
            row = {"runtime": key, "form": label, "error": errors.get((key, label), "")}
            if got is not None:
                row["us"] = statistics.median(got["us"])
                row["fused"] = summarize(got["fused"]) if got["fused"] else None
                row["loop"] = summarize(got["loop"]) if got["loop"] else None
            rows.append(row)
            if "us" in row:
                fused_text = f"x{row['fused']['median']:.2f} fused" if row.get("fused") else ""
                loop_text = f"x{row['loop']['median']:.2f} loop" if row.get("loop") else ""
                say(f"per frame: {key:4s} {label:36s} {row['us']:8.1f} us {fused_text:12s} {loop_text}")
    return rows


# ---------------------------------------------------------------- 2. whole sequences


def lone_gru(activation: str) -> CustomGRU:
    torch.manual_seed(0)
    return CustomGRU(INPUT, HIDDEN, activation=activation, reset_after=False).eval()


def sequences(
    keys: list[str], activations: tuple[str, ...], lengths: tuple[int, ...], runs: int, repeats: int, folder: Path,
    held: Runners,
) -> list[dict]:  # fmt: skip
    rows = []
    for activation in activations:
        gru = lone_gru(activation)
        for seq in lengths:
            paths: dict[str, Path] = {}
            for label, (strategy, dynamic) in SEQ_FORMS.items():
                path = folder / f"seq_{activation}_{seq}_{strategy}_{int(dynamic)}.onnx"
                try:
                    example = torch.randn(max(seq, 8) if dynamic else seq, 2, INPUT)  # a dynamic axis needs >= 2
                    gru_onnx.export(gru, (example,), path, graph=GraphOptions(strategy=strategy),
                                    shapes=ShapeOptions(dynamic_seq=dynamic), check=None)  # fmt: skip
                except Exception as exc:  # native refuses gelu: no exact form
                    rows.append({"activation": activation, "T": seq, "form": label, "runtime": None,
                                 "error": "export refused: " + one_line(exc)})  # fmt: skip
                    continue
                paths[label] = path
            proto = onnx.load(next(iter(paths.values())))
            ((_, kind, fused_path, fused_feeds),) = fused_op_files(proto, gru_onnx.read_metadata(proto), 1, seq, folder)
            x = np.random.default_rng(seq).standard_normal((seq, 1, INPUT)).astype(np.float32)
            with torch.no_grad():
                expected = gru(torch.from_numpy(x))[0].numpy()
            entries: list[tuple[str, str, Callable[[], Any], bool]] = []
            errors: dict[tuple[str, str], float | str] = {}
            runners = Runners()
            try:
                for key in keys:
                    runner = runners.open(key, fused_path)
                    entries.append((key, "fused", runner.timed(fused_feeds), runner.times_inside))
                    for label, path in paths.items():
                        try:
                            runner = runners.open(key, path)
                            errors[key, label] = float(np.abs(runner.run({"input": x})[0] - expected).max())
                        except Exception as exc:
                            errors[key, label] = one_line(exc)
                            say(f"T={seq} {activation} {key} {label}: {errors[key, label]}")
                            continue
                        entries.append((key, label, runner.timed({"input": x}), runner.times_inside))
                held.notes.update({k: v for k, v in runners.notes.items() if k not in held.notes})
                found: dict[tuple[str, str], dict[str, list[float]]] = {}
                rng = np.random.default_rng(seq)
                for b in range(repeats):
                    times = rounds(entries, warmup=10 if b == 0 else 3, runs=runs, rng=rng)
                    for key in keys:
                        mine = {entries[i][1]: i for i in range(len(entries)) if entries[i][0] == key}
                        base = times[mine["fused"]]
                        for label, i in mine.items():
                            got = found.setdefault((key, label), {"ms": [], "fused": [], "unrolled/loop": []})
                            got["ms"].append(1e3 * statistics.median(times[i]))
                            got["fused"].append(block_ratios(times, i, base))
                        if "unrolled" in mine and "loop (static T)" in mine:
                            found[key, "unrolled"]["unrolled/loop"].append(
                                block_ratios(times, mine["unrolled"], times[mine["loop (static T)"]])
                            )
            finally:
                runners.close()
            for key in keys:
                for label in ["fused", *SEQ_FORMS]:
                    got = found.get((key, label))
                    if got is None and (key, label) not in errors:
                        continue
                    row = {"activation": activation, "T": seq, "form": label, "runtime": key,
                           "error": errors.get((key, label), ""), "fused_kind": kind}  # fmt: skip
                    if got is not None:
                        row["ms"] = statistics.median(got["ms"])
                        row["fused"] = summarize(got["fused"])
                        row["unrolled/loop"] = summarize(got["unrolled/loop"]) if got["unrolled/loop"] else None
                    rows.append(row)
            line = []
            for key in keys:
                cells = [f"{label} {statistics.median(found[key, label]['fused']):.2f}"
                         for label in SEQ_FORMS if (key, label) in found]  # fmt: skip
                line.append(f"{key}: " + ", ".join(cells))
            say(f"T={seq:3d} {activation}: x fused op: " + " | ".join(line))
    return rows


# ---------------------------------------------------------------- 3. native exactness


def native_cases(quick: bool) -> list[dict]:
    """(candidate, gates, reset_after, dtype, bidirectional 2-layer) cases."""
    pairs = [(c, "sigmoid") for c in NATIVE_CANDIDATES] + [("tanh", g) for g in NATIVE_GATES] + list(NATIVE_MIXED)
    cases = []
    for dtype in ("float32", "float16"):
        for candidate, gates in pairs:
            for reset_after in (False, True):
                cases.append({"candidate": candidate, "gates": gates, "reset_after": reset_after, "dtype": dtype,
                              "deep": False})  # fmt: skip
        for candidate, gates in [("tanh", "sigmoid"), *NATIVE_MIXED[:1]]:
            cases.append({"candidate": candidate, "gates": gates, "reset_after": True, "dtype": dtype, "deep": True})
    if quick:  # one per dtype, and the deep stack with parameters
        cases = [c for c in cases if c["deep"] and c["candidate"] != "tanh"] + [cases[0]]
    return cases


def exactness(keys: list[str], quick: bool, folder: Path, held: Runners) -> list[dict]:
    rows = []
    for n, case in enumerate(native_cases(quick)):
        torch.manual_seed(n)
        layers = 2 if case["deep"] else 1
        gru = CustomGRU(16, 32, num_layers=layers, bidirectional=case["deep"], activation=case["candidate"],
                        recurrent_activation=case["gates"], reset_after=case["reset_after"]).eval()  # fmt: skip
        dtype = case["dtype"]
        path = folder / f"native_{n}.onnx"
        row = {**case, "results": {}}
        rows.append(row)
        try:
            gru_onnx.export(gru, (torch.randn(8, 2, 16),), path, graph=GraphOptions(strategy="native", dtype=dtype),
                            check=None)  # fmt: skip
        except Exception as exc:
            row["results"] = {key: "export refused: " + one_line(exc) for key in keys}
            continue
        x = np.random.default_rng(n).standard_normal((8, 2, 16)).astype(dtype)
        reference = copy.deepcopy(gru)
        if dtype == "float16":  # the file holds the weights rounded to float16: so does the reference
            reference = reference.half()
        reference = reference.double()
        with torch.no_grad():
            expected = [t.numpy() for t in reference(torch.from_numpy(x.astype(np.float64)))]
        atol, rtol = TOLERANCE[dtype]
        for key in keys:
            runners = Runners()
            try:
                runner = runners.open(key, path)
                outputs = runner.run({"input": x})
            except Exception as exc:
                row["results"][key] = "fails to load: " + one_line(exc)
                continue
            finally:
                held.notes.update({k: v for k, v in runners.notes.items() if k not in held.notes})
                runners.close()
            error = max(float(np.abs(o.astype(np.float64) - e).max()) for o, e in zip(outputs, expected, strict=True))
            excess = max(float((np.abs(o.astype(np.float64) - e) - (atol + rtol * np.abs(e))).max())
                         for o, e in zip(outputs, expected, strict=True))  # fmt: skip
            finite = all(np.isfinite(o).all() for o in outputs)
            row["results"][key] = {"exact": finite and excess <= 0, "error": error}
        shown = "  ".join(f"{k}: {describe(v)}" for k, v in row["results"].items())
        say(f"native {case_label(case)}: {shown}")
    return rows


def case_label(case: dict) -> str:
    form = "reset after" if case["reset_after"] else "reset before"
    deep = ", 2 layers bidirectional" if case["deep"] else ""
    return f"{case['candidate']} / {case['gates']}, {form}, {case['dtype']}{deep}"


def describe(result: Any) -> str:
    if isinstance(result, str):
        return result
    return f"{'exact' if result['exact'] else 'NOT exact'} ({result['error']:.1e})"


# ---------------------------------------------------------------- output


def fmt_ratio(summary: dict | None) -> str:
    if not summary:
        return "-"
    if summary["low"] == summary["high"]:
        return f"{summary['median']:.2f}"
    return f"{summary['median']:.2f} [{summary['low']:.2f}-{summary['high']:.2f}]"


def frame_table(rows: list[dict], keys: list[str]) -> list[str]:
    lines = [
        "| form | " + " | ".join(f"{RUNTIMES[k]} us/frame | x fused | x loop" for k in keys) + " | max error (web) |",
        "|---|" + "---:|---:|---:|" * len(keys) + "---:|",
    ]
    for label in [*FRAME_FORMS, "fused GRU ops, sum of the 3 stacks"]:
        cells = []
        for key in keys:
            row = next(r for r in rows if r["runtime"] == key and r["form"] == label)
            if "us" not in row:
                cells += [f"fails: {row['error']}", "-", "-"]
                continue
            cells += [f"{row['us']:.1f}", fmt_ratio(row.get("fused")), fmt_ratio(row.get("loop"))]
        web = next((r for r in rows if r["runtime"] == keys[0] and r["form"] == label), {})
        error = web.get("error", "")
        cells.append(f"{error:.1e}" if isinstance(error, float) else str(error or "-"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def sequence_table(rows: list[dict], keys: list[str], activation: str) -> list[str]:
    lines = [
        "| T | form | " + " | ".join(f"{RUNTIMES[k]}: x fused op | ms" for k in keys) + " | max error (web) |",
        "|---:|---|" + "---:|---:|" * len(keys) + "---:|",
    ]
    mine = [r for r in rows if r["activation"] == activation]
    refused = {r["form"]: r["error"] for r in mine if r["runtime"] is None}
    mine = [r for r in mine if r["runtime"] is not None]
    for seq in sorted({r["T"] for r in mine}):
        for label in ["fused", *SEQ_FORMS]:
            here = [r for r in mine if r["T"] == seq and r["form"] == label]
            if not here:
                continue
            cells = []
            for key in keys:
                row = next((r for r in here if r["runtime"] == key), None)
                if row is None or "ms" not in row:
                    cells += [f"fails: {row['error'] if row else '?'}", "-"]
                else:
                    cells += [fmt_ratio(row["fused"]), f"{row['ms']:.3f}"]
            web = next((r for r in here if r["runtime"] == keys[0]), {})
            error = web.get("error", "")
            name = "fused GRU op" + (" (sigmoid/tanh yardstick)" if here[0]["fused_kind"] == "yardstick" else "")
            cells.append(f"{error:.1e}" if isinstance(error, float) else str(error or "-"))
            lines.append(f"| {seq} | {name if label == 'fused' else label} | " + " | ".join(cells) + " |")
    if refused:
        lines += ["", *(f"No {label} file: {error}." for label, error in refused.items())]
    return lines


def crossover_table(rows: list[dict], keys: list[str]) -> list[str]:
    acts = sorted({r["activation"] for r in rows}, key=lambda a: a != "relu")
    lines = [
        "| T | " + " | ".join(f"{a}: {RUNTIMES[k]}" for a in acts for k in keys) + " |",
        "|---:|" + "---:|" * (len(acts) * len(keys)),
    ]
    for seq in sorted({r["T"] for r in rows}):
        cells = []
        for act in acts:
            for key in keys:
                row = next((r for r in rows if (r["activation"], r["T"], r["form"], r["runtime"]) ==
                            (act, seq, "unrolled", key)), None)  # fmt: skip
                cells.append(fmt_ratio(row.get("unrolled/loop")) if row else "-")
        lines.append(f"| {seq} | " + " | ".join(cells) + " |")
    return lines


def native_table(rows: list[dict], keys: list[str]) -> list[str]:
    lines = [
        "| candidate / gates | reset | dtype | " + " | ".join(RUNTIMES[k] for k in keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for row in rows:
        form = "after" if row["reset_after"] else "before"
        if row["deep"]:
            form += ", 2 layers bidir."
        cells = [describe(row["results"].get(k, "-")) for k in keys]
        lines.append(f"| {row['candidate']} / {row['gates']} | {form} | {row['dtype']} | " + " | ".join(cells) + " |")
    return lines


def crossover_limit(rows: list[dict], key: str) -> tuple[int | None, list[tuple[str, int, float]]]:
    """The longest length N such that unrolled/loop <= 1 at every measured length up to N (all
    activations), and the ratios seen (activation, T, ratio) on runtime ``key``."""
    seen = sorted(((r["activation"], r["T"], r["unrolled/loop"]["median"]) for r in rows
                   if r["form"] == "unrolled" and r["runtime"] == key and r.get("unrolled/loop")),
                  key=lambda s: (s[1], s[0]))  # fmt: skip
    limit = None
    for seq in sorted({s[1] for s in seen}):
        if all(ratio <= 1.0 for _, t, ratio in seen if t == seq):
            limit = seq
        else:
            break
    return limit, seen


def reading(frames: list[dict], seqs: list[dict], natives: list[dict], keys: list[str]) -> str:
    web = keys[0]
    name = "onnxruntime-web (WebAssembly)" if web == "web" else RUNTIMES[web]

    def is_exact(row: dict) -> bool:
        return isinstance(row["results"].get(web), dict) and row["results"][web]["exact"]

    exact = [r for r in natives if is_exact(r)]
    parts = []
    if len(exact) < len(natives):
        misses = "; ".join(f"{case_label(r)}: {describe(r['results'].get(web))}" for r in natives if not is_exact(r))
        parts.append(f"**Native op in {name}**: exact in {len(exact)} of {len(natives)} cases; not in: {misses}.")
    else:
        parts.append(f"**Native op in {name}**: exact in all {len(natives)} cases of section 3, as in "
                     "onnxruntime-node and ONNX Runtime CPU: the WebAssembly build runs ONNX Runtime's CPU GRU kernel "
                     "(float16 through the casts to float32 ONNX Runtime inserts).")  # fmt: skip

    def cell(activation: str, seq: int, form: str, key: str = web) -> dict | None:
        return next((r for r in seqs if (r["activation"], r["T"], r["form"], r["runtime"]) ==
                     (activation, seq, form, key) and "fused" in r), None)  # fmt: skip

    native_vs = []
    for r in seqs:
        if r["form"] == "native" and r["runtime"] == web and "fused" in r:
            others = [o for o in (cell(r["activation"], r["T"], f) for f in ("unrolled", "loop (static T)")) if o]
            if others:
                best = min(others, key=lambda o: o["fused"]["median"])
                native_vs.append(f"T={r['T']}: {r['fused']['median']:.2f}x against {best['form']} "
                                 f"{best['fused']['median']:.2f}x")  # fmt: skip
    if native_vs:
        parts.append(f"**Native against the standard-op forms** (relu, {name}, ratio to the fused op; the native "
                     "file is the fused op, so about 1x): " + "; ".join(native_vs) + ".")  # fmt: skip
    limit, seen = crossover_limit(seqs, web)
    by_length: dict[int, list[str]] = {}
    for activation, seq, ratio in seen:
        by_length.setdefault(seq, []).append(f"{activation} {ratio:.2f}")
    ratios = "; ".join(f"T={seq}: {', '.join(cells)}" for seq, cells in by_length.items())
    if limit is None:
        parts.append(f"**Unrolled against loop** ({name}, unrolled / loop with a static T): {ratios}; unrolled "
                     "was not faster at the shortest length measured.")  # fmt: skip
    else:
        past = [seq for seq in by_length if seq > limit]
        after = (f"; at T={past[0]} it is not ({', '.join(by_length[past[0]])})" if past
                 else "; it was at every length measured")  # fmt: skip
        parts.append(f"**Unrolled against loop** ({name}, unrolled / loop with a static T, below 1: unrolled "
                     f"faster): {ratios}. Unrolled is at least as fast at every length up to T={limit} "
                     f"({', '.join(by_length[limit])}){after}.")  # fmt: skip
    fixed = [f"{RUNTIMES[k]} {c['ms']:.3f} ms" for k in keys if (c := cell("relu", min(r["T"] for r in seqs),
                                                                          "fused", k))]  # fmt: skip
    if fixed:
        sums = [f"{RUNTIMES[r['runtime']]} {r['us']:.0f} us" for r in frames
                if r["form"].startswith("fused GRU ops") and "us" in r]  # fmt: skip
        parts.append(f"**Fixed cost per run**: the fused GRU op at the shortest length (hidden {HIDDEN}) takes "
                     + ", ".join(fixed) + "; the Denoiser's three small fused ops, one run each, take "
                     + ", ".join(sums) + ". In the JavaScript runtimes most of a short run is the fixed cost of "
                     "`session.run`, whatever the form: a frame in the browser costs at least that.")  # fmt: skip
    frame_rows = {r["form"]: r for r in frames if r["runtime"] == web and "us" in r}
    frame_best = None
    if frame_rows:
        forms = [f for f in FRAME_FORMS if f in frame_rows]
        frame_best = min(forms, key=lambda f: frame_rows[f]["us"])
        cmp = ", ".join(f"{f} {frame_rows[f]['us']:.0f} us ({fmt_ratio(frame_rows[f].get('loop'))}x loop)"
                        for f in forms)  # fmt: skip
        parts.append(f"**Per frame** (Denoiser, {name}): {cmp}; fastest: {frame_best}.")
    unrolled_frame = frame_rows.get("unrolled (chunk=1)", {}).get("loop")
    frame_rule = (f"unrolled with chunk=1 ({unrolled_frame['median']:.2f}x the loop's time per frame)"
                  if unrolled_frame and unrolled_frame["median"] < 1 else "loop")  # fmt: skip
    dtypes = " and ".join(sorted({r["dtype"] for r in exact}))
    if len(exact) == len(natives):
        where = (f"wherever the native strategy accepts the activations (exact in {name} in all {len(natives)} "
                 f"cases measured, {dtypes})")  # fmt: skip
    else:
        where = f"in the {len(exact)} cases above where it is exact in {name} (of {len(natives)} measured)"
    parts.append(
        f"**Recommended rule for `target='web'` in auto**: the native GRU op {where}; else unrolled up to a static "
        "length of "
        + (f"{limit}" if limit else "(none: never unrolled)")
        + f", else loop. For per-frame streaming files: native where exact, else {frame_rule}."
    )
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts; print only")
    parser.add_argument("--runs", type=int, default=60, help="interleaved rounds per block (whole sequences)")
    parser.add_argument("--frame-runs", type=int, default=300, help="interleaved rounds per block (per frame)")
    parser.add_argument("--repeats", type=int, default=3, help="blocks per configuration")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "web.md")
    args = parser.parse_args()
    start = time.perf_counter()
    keys = [k for k in RUNTIMES if unavailable_reason(k) is None]
    for k in RUNTIMES:
        if reason := unavailable_reason(k):
            say(f"skipping {k}: {reason}")
    if not keys:
        raise SystemExit("no runtime to measure")
    if args.quick:
        runs, frame_runs, repeats, lengths, activations = 5, 10, 1, (4,), ("relu",)
    else:
        runs, frame_runs, repeats = args.runs, args.frame_runs, args.repeats
        lengths, activations = LENGTHS, ("relu", "gelu")
    torch.set_num_threads(1)
    held = Runners()
    keep = browser.acquire() if "web" in keys else None  # one Chromium for every page of the run
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            frames = per_frame(keys, frame_runs, repeats, folder, held)
            say(f"per frame done at {time.perf_counter() - start:.0f} s")
            seqs = sequences(keys, activations, lengths, runs, repeats, folder, held)
            say(f"whole sequences done at {time.perf_counter() - start:.0f} s")
            natives = exactness(keys, args.quick, folder, held)
    finally:
        if keep is not None:
            browser.release(keep)
    seconds = time.perf_counter() - start
    text = render(frames, seqs, natives, keys, held.notes, runs, frame_runs, repeats, seconds)
    say(f"wall time {seconds:.0f} s")
    if args.quick:
        print(text)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    say(f"wrote {args.out}")


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def render(frames, seqs, natives, keys, notes, runs, frame_runs, repeats, seconds) -> str:
    v = versions()
    runtimes = "; ".join(f"{RUNTIMES[k]}: {notes[k]}" for k in keys if k in notes)
    lines = [
        "# target=web: forms of a GRU in onnxruntime-web (WebAssembly) and onnxruntime-node",
        "",
        f"Machine: {machine()}; shared with other sessions, so noisy: only ratios measured in one process, "
        "interleaved round by round, are compared.  ",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + f", Node.js {node_version()}.  ",
        f"Runtimes: {runtimes}.  ",
        f"Produced by `python benchmarks/web.py` on {time.strftime('%Y-%m-%d')} in {seconds / 60:.1f} minutes.",
        "",
        "All runtimes with 1 thread. The JavaScript runtimes time each run inside themselves (`performance.now` "
        "around `session.run`: 5 us steps in the cross-origin isolated page), so the trip from Python is not "
        "counted; ONNX Runtime CPU is timed around `InferenceSession.run` in Python. The runners of a table row "
        "group run one call each per round, runtime by runtime, in a fresh random order each round "
        "(`gru_onnx.bench.interleaved` over that order: a fixed order, or runtimes mixed in one round, put the same "
        "entry after another process's call every round, which made it up to 3x slower on ONNX Runtime CPU here); "
        "a ratio is the median of the per-round ratios within one runtime, then the median over "
        f"{repeats} blocks [range].",
        "",
        "## 1. Per frame: the Denoiser as a streaming file, one frame per call",
        "",
        "RNNoise-shaped model of `examples/streaming_denoiser.py` (input 42; relu GRUs of 24/48/96 units, sigmoid "
        "gates, reset-before), batch 1, one frame per call with the three states fed in (zeros: the work per frame "
        f"does not depend on their values). {frame_runs} rounds per block. x fused: against the sum of the three "
        "stacks' fused GRU ops (same weights, each its own session run, so three runs' fixed cost against one: "
        "below 1 is possible). x loop: against the loop file in the same runtime. Max error: gains of the frame "
        "against PyTorch.",
        "",
        *frame_table(frames, keys),
        "",
        "## 2. Whole sequences: a lone CustomGRU",
        "",
        f"Input {INPUT}, hidden {HIDDEN}, 1 layer, batch 1, sigmoid gates, reset-before; a static length T "
        f"(`loop (dynamic T)`: exported with `dynamic_seq`). {runs} rounds per block. x fused op: against ONNX "
        "Runtime's fused GRU op in the same runtime (relu: same weights, native form; gelu has no native form: a "
        "sigmoid/tanh op of the same sizes as a yardstick). Max error: output against PyTorch (float32).",
        "",
    ]
    for activation in sorted({r["activation"] for r in seqs}, key=lambda a: a != "relu"):
        lines += [f"### {activation}", "", *sequence_table(seqs, keys, activation), ""]
    lines += [
        "### Unrolled against loop (static T): the crossover",
        "",
        "Median per-round ratio unrolled / loop (static T) in each runtime; below 1: unrolled faster.",
        "",
        *crossover_table(seqs, keys),
        "",
        "## 3. Exactness of the native GRU op",
        "",
        'CustomGRU(16, 32), T=8, batch 2, exported with `strategy="native"` (float16: `dtype="float16"`, '
        "inputs and weights in float16). Reference: the CustomGRU in float64 (float16 cases: with the weights "
        "rounded to float16, as the file holds them) on the same inputs; both outputs (sequence and final state) "
        "compared. Exact: |out - ref| <= atol + rtol * |ref| everywhere (float32: 1e-5 + 1e-4; float16: 1e-2 + "
        "1e-2); the number is the largest |out - ref|.",
        "",
        *native_table(natives, keys),
        "",
        "## Reading",
        "",
        reading(frames, seqs, natives, keys),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
