"""``gru-onnx setup web``: the JavaScript runtimes (onnxruntime-web, onnxruntime-node) in an npm cache."""

from __future__ import annotations

from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli


@cli.group()
def setup() -> None:
    """Install what optional runtimes need outside Python."""


@setup.command("web")
@click.option(
    "--cache",
    type=groups.path(folder=True),
    help="npm cache folder (default: $GRU_ONNX_WEB_CACHE, else $XDG_CACHE_HOME or ~/.cache, /gru-onnx/web).",
)
@click.option("--force", is_flag=True, help="Reinstall even when the cache holds the pinned versions.")
def web(cache: Path | None, force: bool) -> None:
    """Install the pinned onnxruntime-web and onnxruntime-node with npm (scripts off: the CPU
    binaries ship in the package); report Node.js, Chromium and Playwright as found."""
    from gru_onnx.web.setup import setup_web

    result = setup_web(cache, force=force)
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items())
    done = "installed" if result.installed else "already there"
    click.echo(f"{result.cache}: {versions} ({done}, {result.seconds:.1f} s)")
    click.echo(f"Node.js {result.node or 'not found'}; Chromium {result.chromium or 'not found'}")
    for line in result.missing:
        click.echo(f"missing: {line}")
