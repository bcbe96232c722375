"""``gru-onnx bench``: a file's latency beside ONNX Runtime's fused GRU op and PyTorch eager."""

from __future__ import annotations

from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli, fail, show
from gru_onnx.cli.groups import Given


@cli.command()
@click.argument("path", type=groups.path())
@groups.BENCH
@groups.MODEL
@click.option(
    "--json",
    "json_path",
    type=groups.path(),
    help="Write the results as JSON (schema: gru_onnx/bench.schema.json).",
)
def bench(path: Path, json_path: Path | None, given: Given) -> None:
    """Time a file beside ONNX Runtime's fused GRU op and PyTorch eager, interleaved in one process."""
    from gru_onnx import bench as benchmod
    from gru_onnx.files import refuse_aliases
    from gru_onnx.metadata import data_file_paths
    from gru_onnx.options import BenchOptions
    from gru_onnx.runners import unavailable_reason
    from gru_onnx.saving import writable_target

    if json_path is not None:
        writable_target(json_path, create_parents=False)
        inputs = [("timed file", path), *(("timed file's data", d) for d in data_file_paths(path))]
        refuse_aliases([("JSON report", json_path)], inputs)
    options = BenchOptions(**{k: given.values[k] for k in groups.BENCH.fields})
    for key in options.providers:  # a runtime asked for by name must be usable here
        if reason := unavailable_reason(key):
            fail(reason, 2)
    model = None
    if given.values["factory"] is not None:
        from gru_onnx.cli.factory import load_factory

        model = load_factory(given.values["factory"])[0]
    report = benchmod.bench(path, options, model=model)
    show(benchmod.table(report))
    for reason in report.skipped:
        click.echo(f"skipped: {reason}")
    if json_path is not None:
        benchmod.write_json(report, json_path)
