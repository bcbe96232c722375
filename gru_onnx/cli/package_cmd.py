"""``gru-onnx package``: a Triton Inference Server model repository entry for a file."""

from __future__ import annotations

from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli
from gru_onnx.cli.groups import Given


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--triton",
    "repo",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Triton model repository to write REPO/NAME/config.pbtxt and REPO/NAME/1/model.onnx into.",
)
@groups.TRITON
def package(path: Path, repo: Path, given: Given) -> None:
    """Package a file for Triton Inference Server's onnxruntime backend (streaming files get
    sequence batching with implicit state)."""
    from gru_onnx.options import TritonOptions
    from gru_onnx.triton import package_triton

    result = package_triton(path, repo, TritonOptions(**given.values))
    click.echo(f"wrote {result.config_path} and {result.model_dir / '1' / 'model.onnx'}")
    batching = "sequence batching, implicit state" if result.states else "dynamic batching"
    if result.max_batch_size == 0:
        batching = "no batching"
    click.echo(f"max_batch_size {result.max_batch_size}; {batching}")
    for state_in, state_out in result.states:
        click.echo(f"state: {state_in} -> {state_out} (zero at the start of each sequence)")
    for note in result.notes:
        click.echo(f"note: {note}")
