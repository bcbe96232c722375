"""``gru-onnx package``: a file as a Triton model repository entry, or as a static web bundle."""

from __future__ import annotations

from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli
from gru_onnx.cli.groups import Given


@cli.command()
@click.argument("path", type=groups.path())
@click.option(
    "--triton",
    "repo",
    type=groups.path(folder=True),
    help="Triton model repository to write REPO/NAME/config.pbtxt and REPO/NAME/1/model.onnx into.",
)
@click.option(
    "--web",
    "web_dir",
    type=groups.path(folder=True),
    help="Folder for a static bundle that runs the file in a browser (onnxruntime-web), page and check included.",
)
@groups.PACKAGE
@groups.TRITON
@groups.WEB
def package(path: Path, repo: Path | None, web_dir: Path | None, given: Given) -> None:
    """Package a file for Triton Inference Server's onnxruntime backend (--triton; streaming files
    get sequence batching with implicit state) or for the browser (--web; see `gru-onnx setup web`)."""
    if (repo is None) == (web_dir is None):
        raise click.UsageError("give exactly one of --triton REPO and --web DIR")
    if web_dir is not None:
        given.refuse(groups.TRITON.fields, "is a Triton setting; --web writes a static bundle")
        _package_web(path, web_dir, given)
    else:
        assert repo is not None
        given.refuse(groups.WEB.fields, "is a web bundle setting; --triton writes a model repository entry")
        _package_triton(path, repo, given)


def _package_triton(path: Path, repo: Path, given: Given) -> None:
    from gru_onnx.options import TritonOptions
    from gru_onnx.triton import package_triton

    fields = (*groups.PACKAGE.fields, *groups.TRITON.fields)
    result = package_triton(path, repo, TritonOptions(**{k: given.values[k] for k in fields}))
    click.echo(f"wrote {result.config_path} and {result.model_dir / '1' / 'model.onnx'}")
    batching = "sequence batching, implicit state" if result.states else "dynamic batching"
    if result.max_batch_size == 0:
        batching = "no batching"
    click.echo(f"max_batch_size {result.max_batch_size}; {batching}")
    for state_in, state_out in result.states:
        click.echo(f"state: {state_in} -> {state_out} (zero at the start of each sequence)")
    for note in result.notes:
        click.echo(f"note: {note}")


def _package_web(path: Path, out_dir: Path, given: Given) -> None:
    from gru_onnx.options import WebOptions
    from gru_onnx.web.bundle import package_web

    fields = (*groups.PACKAGE.fields, *groups.WEB.fields)
    bundle = package_web(path, out_dir, WebOptions(**{k: given.values[k] for k in fields}))
    reference = bundle.manifest["reference"]
    states = bundle.manifest["states"]
    click.echo(f"wrote {bundle.path} ({len(bundle.files)} files, {bundle.size / 2**20:.1f} MiB)")
    click.echo(f"reference: {reference['frames']} frames, {reference['source']}; tolerance atol {reference['atol']:g} "
               f"rtol {reference['rtol']:g}")  # fmt: skip
    if states:
        click.echo(f"states: {', '.join(s['input'] + ' -> ' + s['output'] for s in states)} (carried by gru-stream.js)")
    for note in bundle.notes:
        click.echo(f"note: {note}")
    click.echo(f"open: python -m http.server --directory {bundle.path} 8000, then http://localhost:8000/index.html")
