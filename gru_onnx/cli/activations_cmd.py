"""``gru-onnx activations``: the activation registry as a table."""

from __future__ import annotations

import click

from gru_onnx import registry
from gru_onnx.cli.app import cli, show


@cli.command()
@click.option(
    "--opset",
    type=click.IntRange(registry.MIN_OPSET, registry.MAX_OPSET),
    default=registry.DEFAULT_OPSET,
    show_default=True,
    help="Opset the ONNX ops are listed for.",
)
@click.option("--definitions", is_flag=True, help="Add a column with each activation's definition.")
def activations(opset: int, definitions: bool) -> None:
    """List the activation registry: parameters, ONNX ops used, native ONNX-GRU equivalent."""
    from rich.table import Table

    from gru_onnx.activations import list_activations, onnx_ops

    table = Table(title=f"activations (ONNX ops at opset {opset})")
    columns = ["name", "parameters", "ONNX ops", "native ONNX GRU"] + (["definition"] if definitions else [])
    for column in columns:
        table.add_column(column, no_wrap=column == "name", overflow="fold")
    for name, entry, aliases in list_activations():
        bound = entry.bind()
        native = bound.native()
        native_text = "-"
        if native is not None:
            extras = [f"{k}={v:.4g}" for k, v in (("alpha", native.alpha), ("beta", native.beta)) if v is not None]
            native_text = native.name + (f" ({', '.join(extras)})" if extras else "")
        label = name + (f" ({', '.join(aliases)})" if aliases else "")
        params = ", ".join(f"{k}={v:g}" for k, v in entry.defaults.items()) or "-"
        ops = ", ".join(dict.fromkeys(onnx_ops(bound, opset)))
        table.add_row(label, params, ops, native_text, *([entry.doc] if definitions else []))
    show(table)
