"""``gru-onnx quantize``: an int8 copy of a gru-onnx file."""

from __future__ import annotations

from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli
from gru_onnx.cli.groups import Given


@cli.command()
@click.argument("path", type=groups.path())
@click.option("-o", "--output", type=groups.path(), required=True, help="int8 file.")
@groups.QUANTIZE_MODE
@groups.SAVING
def quantize(path: Path, output: Path, given: Given) -> None:
    """Write an int8 copy of a gru-onnx file (see the int8 guide)."""
    from gru_onnx.cli.render import size
    from gru_onnx.options import QuantizeOptions, SavingOptions
    from gru_onnx.quantization import quantize as run_quantize

    v = given.values
    options = QuantizeOptions(mode=v["quantize"], per_channel=v["per_channel"])
    saving = SavingOptions(external_data=v["external_data"], ir_version=v["ir_version"])
    result = run_quantize(path, output, options, saving=saving)
    granularity = "per channel" if options.per_channel else "per tensor"
    click.echo(
        f"wrote {output}: {len(result.quantized)} weight(s) int8 ({options.mode}, {granularity}), "
        f"{size(result.size_after)} ({result.size_after / result.size_before:.2f}x {size(result.size_before)})"
    )
    for name, why in result.left_float.items():
        click.echo(f"left float: {name}: {why}")
