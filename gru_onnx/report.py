"""Rendering a ParityReport: a table for people, JSON for machines, a PNG of error over time.

The JSON follows ``gru_onnx/report.schema.json`` (JSON Schema, draft 2020-12), which is
shipped with the package and documented in docs/guides/parity-check.md ("Report").
"""

from __future__ import annotations

import io
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

from gru_onnx.check.compare import OutputComparison
from gru_onnx.check.results import ParityReport
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import atomic_write

SCHEMA_ID = "gru-onnx/parity-report/1"


def schema() -> dict[str, Any]:
    """The JSON Schema the report follows."""
    return json.loads(resources.files("gru_onnx").joinpath("report.schema.json").read_text())


def _number(value: float) -> float | str:
    """JSON has no infinity or NaN: write them as strings."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _output(o: OutputComparison) -> dict[str, Any]:
    return {
        "name": o.name,
        "shape": list(o.shape),
        "passed": o.passed,
        "max_abs": _number(o.max_abs),
        "mean_abs": _number(o.mean_abs),
        "max_rel": _number(o.max_rel),
        "worst_index": list(o.worst_index),
        "worst_sample": o.worst_sample,
        "mismatches": o.mismatches,
        "nan_mismatch": list(o.nan_mismatch) if o.nan_mismatch is not None else None,
        "time_axis": o.time_axis,
        "first_failing_step": o.first_failing_step,
        "per_step_max_abs": [_number(v) for v in o.per_step_max_abs] if o.per_step_max_abs is not None else None,
    }


def to_json(report: ParityReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (see ``report.schema.json``)."""
    return {
        "schema": SCHEMA_ID,
        "file": report.file,
        "passed": report.passed,
        "dtype": report.dtype,
        "reference": report.reference,
        "tolerance": {"atol": report.atol, "rtol": report.rtol},
        "samples": report.samples,
        "warnings": list(report.warnings),
        "weights": [
            {
                "stack": w.stack,
                "layout": w.layout,
                "passed": w.passed,
                "compared": w.compared,
                "method": w.method,
                "wiring": list(w.wiring),
                "mismatches": [
                    {"name": m.name, "max_abs": _number(m.max_abs), "index": list(m.index), "count": m.count}
                    for m in w.mismatches
                ],
            }
            for w in report.weights
        ],
        "runtimes": [
            {
                "runtime": r.runtime,
                "status": r.status,
                "reason": r.reason,
                "notes": list(r.notes),
                "outputs": [_output(o) for o in r.outputs],
            }
            for r in report.results
        ],
    }


def write_json(report: ParityReport, path: str | os.PathLike[str]) -> None:
    """Write the report as JSON, atomically (a symbolic link at ``path`` is replaced, not followed)."""
    atomic_write(path, json.dumps(to_json(report), indent=2) + "\n")


def table(report: ParityReport) -> Any:
    """A rich renderable: one table row per runtime and output, then reasons and notes."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    title = (
        f"{Path(report.file).name} vs PyTorch ({report.reference}), {report.dtype}, {report.rule()}, "
        f"{len(report.samples)} sample(s)" + _scales(report)
    )
    out = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    out.add_column("runtime", no_wrap=True)
    out.add_column("output", no_wrap=True)
    for column in ("max abs", "mean abs", "max rel"):
        out.add_column(column, justify="right", no_wrap=True)
    out.add_column("worst at")
    out.add_column("result")
    lines = []
    for r in report.results:
        if r.status in ("skipped", "error"):
            colour = "yellow" if r.status == "skipped" else "red"
            out.add_row(_short(r.runtime), "-", "", "", "", "", f"[{colour}]{r.status}[/]")
            lines.append(f"[{colour}]{r.runtime} {r.status}[/]: {escape(r.reason)}")
        for o in r.outputs:
            if o.passed:
                verdict = "[green]pass[/]"
            else:
                verdict = f"[red]FAIL[/] {o.mismatches} el."
                if o.first_failing_step is not None:
                    verdict += f", from step {o.first_failing_step}"
                if o.nan_mismatch is not None:
                    verdict += escape(f", NaN at {list(o.nan_mismatch)}")
            worst = "[" + ",".join(map(str, o.worst_index)) + "]"
            worst += f" s{o.worst_sample}" if len(report.samples) > 1 else ""
            out.add_row(
                _short(r.runtime),
                escape(o.name),
                f"{o.max_abs:.1e}",
                f"{o.mean_abs:.1e}",
                f"{o.max_rel:.1e}",
                escape(worst),
                verdict,
            )
        lines.extend(f"[dim]{r.runtime}: {escape(note)}[/]" for note in r.notes)
    untimed = sorted({o.name for r in report.results for o in r.outputs if o.time_axis is None})
    if untimed:
        lines.append(f"[dim]no time axis (no per-step error): {escape(', '.join(untimed))}[/]")
    for w in report.weights:
        lines.append(escape(w.describe()) if w.passed else f"[red]{escape(w.describe())}[/]")
    lines.extend(f"[yellow]warning[/]: {escape(w)}" for w in report.warnings)
    return Group(out, *(Text.from_markup(line) for line in lines))


def _scales(report: ParityReport) -> str:
    scales = sorted({s.get("scale", 1.0) for s in report.samples})
    if not scales or scales == [1.0]:
        return ""
    return f" at input scale {', '.join(f'x{v:g}' for v in scales)}"


def _short(runtime: str) -> str:
    """Table label: 'onnxruntime-cuda' -> 'ort-cuda' (the report and JSON keep full names)."""
    return runtime.replace("onnxruntime-", "ort-")


def render_text(report: ParityReport, width: int = 140) -> str:
    """The table as plain text (for assertion messages and logs)."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(table(report))
    return buffer.getvalue()


def plot(report: ParityReport, path: str | os.PathLike[str]) -> None:
    """PNG: max absolute error per time step, one line per runtime and time-indexed output."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise GruOnnxUsageError("--plot needs matplotlib: pip install gru-onnx[plot]") from None
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    curves = [
        (f"{r.runtime}: {o.name}", [v if math.isfinite(v) else float("nan") for v in o.per_step_max_abs])
        for r in report.results
        for o in r.outputs
        if o.per_step_max_abs
    ]
    positive = [v for _, values in curves for v in values if v > 0]
    # A log axis cannot show 0: exact agreement is drawn as hollow markers on a floor line below
    # every non-zero error, and the legend says so (no invented small errors).
    smallest = min(positive + ([report.atol] if report.atol > 0 else []), default=1e-6)
    floor = 10 ** math.floor(math.log10(smallest)) / 10
    exact_drawn = False
    for label, values in curves:
        line = ax.plot(range(len(values)), [v if v > 0 else float("nan") for v in values], marker=".", label=label)
        zeros = [i for i, v in enumerate(values) if v == 0]
        if zeros:
            ax.plot(
                zeros,
                [floor] * len(zeros),
                linestyle="none",
                marker="o",
                markerfacecolor="none",
                color=line[0].get_color(),
                label=None if exact_drawn else f"exactly 0 (drawn at {floor:.0e})",
            )
            exact_drawn = True
    drawn = len(curves)
    ax.axhline(report.atol, color="grey", linestyle="--", linewidth=1, label=f"atol {report.atol:g}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time step")
    ax.set_ylabel("max |onnx - torch|")
    ax.set_title(f"{Path(report.file).name}: error per time step" + ("" if drawn else " (no time-indexed output)"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
