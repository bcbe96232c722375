"""The ``gru-onnx`` command group: one-line errors with exit codes, and printing.

Exit codes: 0 done, 1 parity failed, 2 bad usage or bad input, 3 a bug of ours ("internal
error, please report"; ``GRU_ONNX_DEBUG=1`` shows the traceback). A closed pipe (``| head``)
ends the command quietly, as other command-line tools do.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, NoReturn, TextIO

import click

from gru_onnx.errors import GruOnnxError

#: Exit status after a closed pipe (``| head``): quiet, as click ends a command whose output closed.
BROKEN_PIPE = 1


def fail(message: str, code: int) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def show(renderable: Any) -> None:
    """Print a rich renderable without the trailing padding rich adds to every line."""
    from rich.console import Console

    console = Console(highlight=False)
    with console.capture() as captured:
        console.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


class _Group(click.Group):
    """Turns gru-onnx's own errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GruOnnxError as exc:
            fail(str(exc), exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, BrokenPipeError):
            raise
        except MemoryError:
            fail("not enough memory for this input (lower --batch or --seq-len)", 2)
        except Exception as exc:
            if os.environ.get("GRU_ONNX_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            fail(f"internal error, please report: {type(exc).__name__}: {first} (GRU_ONNX_DEBUG=1 shows more)", 3)


def _warning_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
    line: str | None = None,
) -> None:  # fmt: skip
    """Warnings (torch's, NumPy's, ours) as one line without a source path: ``warning: ...``."""
    text = (str(message).strip().splitlines() or [category.__name__])[0]
    click.echo(f"warning: {text}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gru-onnx")
def cli() -> None:
    """Export GRUs with custom activations from PyTorch to ONNX, checked for parity."""
    if not os.environ.get("GRU_ONNX_DEBUG"):
        warnings.showwarning = _warning_line


def _quiet_broken_pipe() -> NoReturn:
    """Stop writing to a closed pipe without a traceback (Python's advice for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(BROKEN_PIPE)


def main() -> None:
    """Console-script entry point: click's usage errors become one line, exit code 2."""
    try:
        cli.main(prog_name="gru-onnx", standalone_mode=False)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"Error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
