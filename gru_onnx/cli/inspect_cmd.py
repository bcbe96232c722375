"""``gru-onnx inspect``: describe a file (the rendering of :func:`gru_onnx.describe`)."""

from __future__ import annotations

from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli, show


@cli.command()
@click.argument("path", type=groups.path())
def inspect(path: Path) -> None:
    """Describe an ONNX file: strategy, GRU stacks, inputs/outputs, nodes, runtimes."""
    from gru_onnx.cli.render import description
    from gru_onnx.description import describe

    for part in description(describe(path)):
        show(part)
