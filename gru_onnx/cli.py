"""The ``gru-onnx`` command line: a thin layer over the Python API.

Exit codes: 0 done, 1 parity failed, 2 bad usage or bad input. User errors are one line on
stderr, never a traceback (set ``GRU_ONNX_DEBUG=1`` to see one for unexpected errors).
Heavy imports (torch, onnx) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from gru_onnx.errors import GruOnnxError

#: The embedded default model of ``gru-onnx export`` (documented in the README).
DEFAULTS = {"input_size": 16, "hidden_size": 32, "num_layers": 1, "seq_len": 20, "batch": 2, "seed": 0}
CONSTRUCTOR_OPTIONS = (
    "activation", "recurrent_activation", "reset_after", "input_size", "hidden_size",
    "num_layers", "bias", "batch_first", "bidirectional", "dropout",
)  # fmt: skip


def _require_providers(providers: tuple[str, ...]) -> None:
    """A runtime asked for by name must be usable here (under 'all' missing ones are skipped)."""
    from gru_onnx.runners import unavailable_reason

    for key in providers:
        if key != "all" and (reason := unavailable_reason(key)):
            _fail(reason, 2)


def _print(renderable: Any) -> None:
    """Print a rich renderable without the trailing padding rich adds to every line."""
    from rich.console import Console

    console = Console(highlight=False)
    with console.capture() as captured:
        console.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def _provider_option(help_text: str) -> Any:
    return click.option(
        "--provider",
        "providers",
        multiple=True,
        default=("cpu",),
        show_default=True,
        type=click.Choice(["cpu", "cuda", "tensorrt", "openvino", "all"]),
        help=help_text,
    )


def _tolerance_options(command: Any) -> Any:
    for name, kind in (("--rtol", "Relative"), ("--atol", "Absolute")):
        command = click.option(name, type=click.FloatRange(min=0.0), help=f"{kind} tolerance (default per dtype).")(
            command
        )
    return command


def _model_option(help_text: str) -> Any:
    return click.option("--model", "factory", metavar="PKG.MODULE:FACTORY", help=help_text)


class _Group(click.Group):
    """Turns gru-onnx's own errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GruOnnxError as exc:
            _fail(str(exc), exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("GRU_ONNX_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            _fail(f"internal error, please report: {type(exc).__name__}: {first} (GRU_ONNX_DEBUG=1 shows more)", 3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gru-onnx")
def cli() -> None:
    """Export GRUs with custom activations from PyTorch to ONNX, checked for parity."""


@cli.command()
@click.option(
    "--activation",
    default="tanh",
    show_default=True,
    help="Candidate activation, e.g. relu, gelu, 'leaky_relu(alpha=0.2)'. See `gru-onnx activations`.",
)
@click.option("--recurrent-activation", default="sigmoid", show_default=True, help="Gate activation.")
@click.option(
    "--reset-after/--reset-before",
    default=True,
    show_default=True,
    help="Reset gate after the recurrent matmul (PyTorch/cuDNN) or before it (Cho et al.).",
)
@click.option("--input-size", type=click.IntRange(min=1), default=DEFAULTS["input_size"], show_default=True)
@click.option("--hidden-size", type=click.IntRange(min=1), default=DEFAULTS["hidden_size"], show_default=True)
@click.option("--num-layers", type=click.IntRange(min=1), default=DEFAULTS["num_layers"], show_default=True)
@click.option("--bias/--no-bias", default=True, show_default=True)
@click.option("--batch-first", is_flag=True, help="Input is [batch, seq, feature].")
@click.option("--bidirectional", is_flag=True)
@click.option(
    "--dropout",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Training-time dropout between layers (no effect on the export).",
)
@click.option(
    "--seq-len",
    type=click.IntRange(min=1),
    default=DEFAULTS["seq_len"],
    show_default=True,
    help="Sequence length of the example input (fixed in an unrolled export).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=DEFAULTS["batch"],
    show_default=True,
    help="Batch size of the example input (at least 2 unless --static-batch: the batch axis stays dynamic).",
)
@click.option(
    "--static-batch",
    is_flag=True,
    help="Fix the batch axis at the example's --batch (any size, 1 included) instead of leaving it dynamic.",
)
@click.option("--with-h0", is_flag=True, help="Give the exported graph an initial-state input h0.")
@click.option(
    "--lengths", "with_lengths", is_flag=True, help="Give the graph a lengths input (int64 [batch]) for padded batches."
)
@click.option(
    "--strategy",
    default="auto",
    show_default=True,
    help="auto, unrolled, loop or native (see the README's strategy table).",
)
@click.option("--dynamic-seq", is_flag=True, help="Leave the sequence length dynamic (loop, native, auto).")
@click.option(
    "--streaming",
    is_flag=True,
    help="Give every CustomGRU call a state input and output ([batch, layers, hidden]) to run chunk by chunk.",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    help="With --streaming: fix the chunk length (time steps per call) for the fastest file.",
)
@click.option(
    "--streaming-exclude",
    multiple=True,
    metavar="MODULE",
    help="With --streaming: a module path whose CustomGRUs keep their state inside the model (repeatable).",
)
@click.option(
    "--target",
    type=click.Choice(["any", "cpu", "cuda", "tensorrt", "openvino"]),
    default="any",
    show_default=True,
    help="Runtime the file is for: auto picks the fastest form exact there (any: exact everywhere).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16"]),
    default="float32",
    show_default=True,
    help="Weights and compute type of the exported file.",
)
@click.option("--opset", type=int, default=18, show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("gru.onnx"), show_default=True
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULTS["seed"],
    show_default=True,
    help="Seed for the weights (without --checkpoint) and the example input.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A state_dict saved with torch.save, loaded with weights_only=True.",
)
@_model_option("Export your own model: FACTORY() returns (module, example_args).")
@click.option(
    "--keras",
    "keras_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A Keras 3 model (.keras or legacy .h5) to export and check against Keras itself (gru-onnx[keras]).",
)
@click.option(
    "--quantize",
    type=click.Choice(["weights", "dynamic"]),
    help="Write an int8 file (see gru-onnx quantize), checked against the float model.",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Run the file and compare with PyTorch (see --provider).",
)
@_provider_option("Runtime(s) for the check; unavailable ones are reported as skipped.")
@_tolerance_options
@click.option(
    "--external-data/--no-external-data",
    default=None,
    help="Write the tensors to a data file beside the model (default: only when the model reaches 2 GiB).",
)
@click.pass_context
def export(ctx: click.Context, **opts: Any) -> None:
    """Export a CustomGRU (or a whole model) to ONNX and check it against PyTorch.

    With no options it exports the embedded default: a 1-layer GRU, input 16, hidden 32,
    sequence length 20, seed 0, to gru.onnx.
    """
    import torch

    import gru_onnx
    from gru_onnx.loading import load_checkpoint, load_factory

    if opts["check"]:
        _require_providers(opts["providers"])
    if opts["keras_path"]:
        if opts["streaming"] or opts["chunk"] or opts["streaming_exclude"]:
            raise click.UsageError("--streaming cannot be combined with --keras yet: export the Keras model, or "
                                   "convert it with gru_onnx.from_keras and export that with streaming=True")
        from gru_onnx._keras_cli import export_keras

        return export_keras(ctx, opts, _print_export_summary, _fail)
    torch.manual_seed(opts["seed"])
    options: dict[str, Any] = {}
    if opts["factory"]:
        given = [
            n for n in CONSTRUCTOR_OPTIONS if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(f"--{given[0].replace('_', '-')} cannot be combined with --model")
        model, args, options = load_factory(opts["factory"])
    else:
        if opts["batch"] < 2 and not opts["static_batch"]:
            raise click.BadParameter(
                f"{opts['batch']} needs --static-batch (a dynamic batch axis needs an example batch of at least 2)",
                param_hint="--batch",
            )
        model = gru_onnx.CustomGRU(**{n: opts[n] for n in CONSTRUCTOR_OPTIONS})
        args = _example_args(model, opts["seq_len"], opts["batch"], opts["with_h0"], opts["with_lengths"])
    if opts["checkpoint"]:
        load_checkpoint(model, opts["checkpoint"])
    result = gru_onnx.export(model, args, opts["output"], **_export_options(ctx, opts, options))
    _print_export_summary(result)
    if not result.passed:
        _fail(f"parity check failed; {result.path} was written for inspection", 1)


#: ``gru-onnx export`` options that are ``gru_onnx.export`` keyword arguments (CLI name ->
#: (keyword, conversion)); a factory's options give the defaults, flags given on the command
#: line win.
EXPORT_FLAGS: dict[str, tuple[str, Any]] = {
    "strategy": ("strategy", None),
    "opset": ("opset", None),
    "dtype": ("dtype", None),
    "dynamic_seq": ("dynamic_seq", None),
    "target": ("target", None),
    "static_batch": ("dynamic_batch", lambda v: not v),
    "streaming": ("streaming", None),
    "chunk": ("chunk", None),
    "streaming_exclude": ("streaming_exclude", tuple),
    "check": ("check", None),
    "providers": ("providers", tuple),
    "atol": ("atol", None),
    "rtol": ("rtol", None),
    "quantize": ("quantize", None),
    "external_data": ("external_data", None),
}


def _export_options(ctx: click.Context, opts: dict[str, Any], factory_options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``gru_onnx.export``: the factory's, overridden by flags given on the
    command line, then the flags' defaults for what neither says."""
    options = dict(factory_options)
    for flag, (keyword, convert) in EXPORT_FLAGS.items():
        given = ctx.get_parameter_source(flag) == click.core.ParameterSource.COMMANDLINE
        if given or keyword not in options:
            options[keyword] = convert(opts[flag]) if convert else opts[flag]
    return options


def _example_args(model: Any, seq_len: int, batch: int, with_h0: bool, with_lengths: bool) -> tuple[Any, ...]:
    """Seeded example inputs; lengths (when asked) span 1..seq_len with one full sequence."""
    import torch

    spec = model.spec
    shape = (batch, seq_len, spec.input_size) if spec.batch_first else (seq_len, batch, spec.input_size)
    x = torch.randn(*shape)
    h0 = 0.5 * torch.randn(spec.num_layers * spec.num_directions, batch, spec.hidden_size) if with_h0 else None
    if not with_lengths:
        return (x, h0) if with_h0 else (x,)
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0] = seq_len
    return (x, h0, lengths)


def _print_export_summary(result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gru_onnx.spec import GRUSpec

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("file", f"{result.path} ({_size(result.file_size)})")
    if result.data_path is not None:
        table.add_row("data", f"{result.data_path} ({_size(result.data_size)}, external data)")
    meta = result.metadata
    table.add_row("strategy", f"{result.strategy}, opset {result.opset}, {meta['dtype']}")
    for stack in meta["stacks"]:
        label = stack["path"] or "model"
        table.add_row("GRU", f"{label}: {GRUSpec.from_json(stack['spec']).describe()}")
        requested = stack["reason"] == f"{stack['strategy']} requested"
        table.add_row(
            "", f"{stack['strategy']} (requested)" if requested else f"{stack['strategy']}: {stack['reason']}"
        )
    _add_state_rows(table, meta)
    _add_support_rows(table, meta)
    counts = sorted(result.node_counts.items(), key=lambda kv: -kv[1])
    more = ", ..." if len(counts) > 6 else ""
    table.add_row("nodes", f"{result.num_nodes} (" + ", ".join(f"{k} {v}" for k, v in counts[:6]) + more + ")")
    table.add_row("time", f"{result.seconds:.1f} s")
    if result.parity is None:
        table.add_row("parity", "not checked (--no-check)")
    else:
        report = result.parity
        for line in report.summary().splitlines():
            table.add_row("parity", escape(line))
        verdict = "[green]PASS[/]" if report.passed else "[red]FAIL[/]"
        table.add_row("result", f"{verdict} (atol {report.atol:g}, rtol {report.rtol:g})")
    _print(table)


def _add_state_rows(table: Any, metadata: dict[str, Any]) -> None:
    """A streaming file's state pairs, one row each, and its chunk length."""
    from rich.markup import escape

    from gru_onnx.streaming import state_pairs

    pairs = state_pairs(metadata)
    if not pairs:
        return
    chunk = metadata.get("chunk")
    table.add_row("streaming", f"chunks of {chunk} steps" if chunk else "chunks of any length")
    for pair in pairs:
        shape = escape(f"[{', '.join(str(d) for d in pair.shape)}]")
        table.add_row("state", f"{pair.input} -> {pair.output}: {pair.module or 'model'} {shape}")


def _add_support_rows(table: Any, metadata: dict[str, Any]) -> None:
    """Runtimes that do not run the file as intended (native GRU nodes), one row each."""
    from gru_onnx.compat import file_support

    for row in file_support(metadata):
        if row.status != "yes":
            table.add_row("[yellow]runtime[/]", f"{row.runtime}: {row.status} ({row.note})")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


@cli.command()
@click.option("--opset", type=int, default=18, show_default=True, help="Opset the ONNX ops are listed for.")
@click.option("--definitions", is_flag=True, help="Add a column with each activation's definition.")
def activations(opset: int, definitions: bool) -> None:
    """List the activation registry: parameters, ONNX ops used, native ONNX-GRU equivalent."""
    from rich.table import Table

    from gru_onnx._export import MAX_OPSET, MIN_OPSET
    from gru_onnx.activations import list_activations, onnx_ops

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise click.BadParameter(f"use {MIN_OPSET} to {MAX_OPSET}", param_hint="--opset")
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
    _print(table)


def _parse_chunks(value: str | None) -> tuple[int, ...] | None:
    """``--chunks 1,5`` -> (1, 5); anything else is a one-line usage error."""
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a comma-separated list of chunk sizes", param_hint="--chunks"
        ) from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{value!r}: chunk sizes must be positive", param_hint="--chunks")
    return sizes


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check against these source weights (a state_dict) instead of the file's own.",
)
@_model_option("Check against your model: FACTORY() returns (module, example_args).")
@click.option(
    "--keras",
    "keras_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check against this Keras 3 model (.keras or .h5) itself, run by Keras (gru-onnx[keras]).",
)
@_provider_option("Runtime(s) to check on; repeat the option, or 'all' (missing ones are skipped).")
@click.option("--seq-len", type=click.IntRange(min=1), help="Longest sequence of the random samples.")
@click.option("--batch", type=click.IntRange(min=1), help="Batch size of the random samples.")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Number of seeded random samples (dynamic files get lengths from 1 to --seq-len).",
)
@click.option(
    "--inputs",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inputs from an .npz whose keys are the file's input names.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--scale",
    "scales",
    type=click.FloatRange(min=0.0, min_open=True),
    multiple=True,
    help="Input magnitude of the random samples, cycled (repeat the option); default x1, x10, x100 "
    "(float16: x1, x4).",
)
@_tolerance_options
@click.option(
    "--streaming",
    is_flag=True,
    help="Run the file chunk by chunk, carrying its states, against PyTorch on the whole sequence "
    "(streaming files are always checked so).",
)
@click.option(
    "--chunks",
    callback=lambda ctx, param, value: _parse_chunks(value),
    metavar="N,N,...",
    help="With --streaming: chunk sizes to try (default: whole, 1 and an uneven split; a --chunk file: its chunk).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report as JSON (schema: gru_onnx/report.schema.json).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw error against time step as a PNG (needs gru-onnx[plot]).",
)
def check(path: Path, checkpoint: Path | None, factory: str | None, providers: tuple[str, ...], **opts: Any) -> None:
    """Check an exported file against PyTorch on one or more runtimes.

    Without --checkpoint or --model the PyTorch reference is rebuilt from the file's metadata
    and weights. Exit code 0: every runtime that ran passed; 1: a mismatch; 2: bad usage,
    an unreadable file, or a requested runtime that is not available.
    """
    from gru_onnx.loading import load_factory
    from gru_onnx.metadata import load_model
    from gru_onnx.parity import check_parity
    from gru_onnx.report import plot, table, write_json

    if checkpoint and factory:
        raise click.UsageError("--checkpoint and --model cannot be combined")
    if opts["plot_path"] and importlib.util.find_spec("matplotlib") is None:
        _fail("--plot needs matplotlib: pip install gru-onnx[plot]", 2)
    for option in ("report_path", "plot_path"):
        target = opts[option]
        if target is not None and not os.access(target.parent if str(target.parent) else ".", os.W_OK):
            _fail(f"cannot write {target}: its folder does not exist or is not writable", 2)
    _require_providers(providers)
    if opts["keras_path"]:
        if checkpoint or factory:
            raise click.UsageError("--keras cannot be combined with --checkpoint or --model")
        from gru_onnx._keras_cli import check_keras

        return check_keras(path, providers, opts, _fail)
    load_model(path)  # unreadable files fail here, before any model is built
    model, args, options = None, None, {}
    if factory:
        model, args, options = load_factory(factory)
    for key in ("atol", "rtol"):  # a factory's tolerances serve its checks too, unless given here
        if opts[key] is None and options.get(key) is not None:
            opts[key] = options[key]
    report = check_parity(
        model, path, args, providers=providers, checkpoint=checkpoint, samples=opts["samples"],
        seq_len=opts["seq_len"], batch=opts["batch"], inputs=opts["inputs"], seed=opts["seed"],
        scales=opts["scales"] or None, atol=opts["atol"], rtol=opts["rtol"],
        streaming=opts["chunks"] or opts["streaming"],
    )  # fmt: skip
    if "all" not in providers:
        for result in report.results:
            if result.status == "skipped":  # e.g. ONNX Runtime fell back to the CPU after all
                _fail(result.reason, 2)
    _print(table(report))
    if opts["report_path"]:
        write_json(report, opts["report_path"])
    if opts["plot_path"]:
        plot(report, opts["plot_path"])
    if not report.passed:
        lines = report.failures()
        _fail("parity check failed: " + "; ".join(lines), 1)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def inspect(path: Path) -> None:
    """Describe an ONNX file: strategy, GRU stacks, inputs/outputs, nodes, runtimes."""
    import onnx
    from rich.markup import escape
    from rich.table import Table

    from gru_onnx.compat import file_support
    from gru_onnx.errors import GruOnnxUsageError
    from gru_onnx.metadata import find_metadata, load_model
    from gru_onnx.samples import time_axes
    from gru_onnx.saving import validate_data_files
    from gru_onnx.spec import GRUSpec

    model = load_model(path, weights="none")
    found = validate_data_files(model, path, allow=("missing", "truncated"))  # refuses locations outside
    meta = find_metadata(model)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_row("file", f"{path} ({_size(path.stat().st_size)})")
    for data in found:
        if data.problem == "missing":
            state = "MISSING: check, package and runtimes need it beside the model"
        elif data.problem == "truncated":
            state = f"{_size(data.size or 0)}, TRUNCATED: the model needs {data.needed} bytes, it has {data.size}"
        else:
            state = _size(data.size or 0)
        head.add_row("external data", escape(f"{data.location} ({state})"))
    head.add_row("opset", opsets)
    head.add_row("producer", f"{model.producer_name} {model.producer_version}".strip())
    if meta is None:
        head.add_row("gru-onnx", "no gru-onnx metadata: not exported by gru-onnx")
    else:
        head.add_row("strategy", f"{meta['strategy']} (requested: {meta.get('requested_strategy', '-')})")
        head.add_row("target", meta.get("target", "any"))
        head.add_row("dtype", meta.get("dtype", "float32"))
        head.add_row("exported by", f"gru-onnx {meta.get('version', '?')}")
        if meta.get("quantization"):
            q = meta["quantization"]
            floats = f"; left float: {', '.join(q['left_float'])}" if q.get("left_float") else ""
            head.add_row(
                "int8", f"{q['mode']}, {q['granularity'].replace('_', ' ')}: {len(q['tensors'])} weight(s){floats}"
            )
        static = "static: runs only at the {} shown below"
        if "dynamic_batch" in meta:
            head.add_row("batch axis", "dynamic" if meta["dynamic_batch"] else static.format("batch size"))
        head.add_row("sequence axis", "dynamic" if meta.get("dynamic_seq") else static.format("length"))
        for stack in meta["stacks"]:
            label = stack["path"] or "model"
            try:
                described = GRUSpec.from_json(stack["spec"]).describe()
            except GruOnnxUsageError as exc:  # an activation this installation does not know
                described = f"unreadable spec ({exc})"
            head.add_row("GRU", f"{label}: {described}")
            seq = stack["seq_len"] if stack["seq_len"] is not None else "dynamic"
            extras = [f"seq_len {seq}"] + [n for n in ("has_h0", "has_lengths") if stack.get(n)]
            head.add_row("", f"{stack['strategy']} ({stack['reason']}); {', '.join(extras)}")
        _add_state_rows(head, meta)
    _print(head)

    io = Table(title="inputs and outputs", caption="named axes are dynamic, numbers are static")
    for column in ("", "name", "type", "shape", "time axis"):
        io.add_column(column)
    initializers = {i.name for i in model.graph.initializer}
    output_time = dict(zip([o.name for o in model.graph.output], time_axes(model, meta), strict=True))
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
            dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
            axis = output_time.get(value.name) if kind == "output" and meta is not None else None
            when = "" if kind == "input" or meta is None else ("none" if axis is None else str(axis))
            io.add_row(kind, value.name, dtype, escape(f"[{', '.join(dims)}]"), when)
    _print(io)

    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    ops = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    click.echo(f"nodes: {len(model.graph.node)} ({ops})")
    if meta is not None:
        runtimes = Table(title="runtimes (from their sources; see gru_onnx/compat.py)")
        for column in ("runtime", "runs as intended", "note"):
            runtimes.add_column(column)
        for row in file_support(meta):
            runtimes.add_row(row.runtime, row.status, row.note)
        _print(runtimes)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="int8 file.")
@click.option(
    "--mode",
    type=click.Choice(["weights", "dynamic"]),
    default="dynamic",
    show_default=True,
    help="weights: int8 storage, float compute; dynamic: int8 MatMuls, activations quantized at run time.",
)
@click.option(
    "--per-channel/--per-tensor",
    default=True,
    show_default=True,
    help="One scale per output channel, or one per weight.",
)
@click.option(
    "--external-data/--no-external-data",
    default=None,
    help="Write the tensors to a data file beside the output (default: only when it reaches 2 GiB).",
)
def quantize(path: Path, output: Path, mode: str, per_channel: bool, external_data: bool | None) -> None:
    """Write an int8 copy of a gru-onnx file (see the README's int8 section)."""
    from gru_onnx.quantize import quantize as run_quantize

    result = run_quantize(path, output, mode=mode, per_channel=per_channel, external_data=external_data)
    granularity = "per channel" if per_channel else "per tensor"
    click.echo(
        f"wrote {output}: {len(result.quantized)} weight(s) int8 ({mode}, {granularity}), "
        f"{_size(result.size_after)} ({result.size_after / result.size_before:.2f}x {_size(result.size_before)})"
    )
    for name, why in result.left_float.items():
        click.echo(f"left float: {name}: {why}")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--triton",
    "repo",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Triton model repository to write REPO/NAME/config.pbtxt and REPO/NAME/1/model.onnx into.",
)
@click.option("--name", help="Model name in the repository (default: the file's name without .onnx).")
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=0),
    help="Triton's max_batch_size (default: 8 with a dynamic batch axis first on every tensor, else 0).",
)
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True, help="Instances per device.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing REPO/NAME.")
def package(path: Path, repo: Path, name: str | None, **opts: Any) -> None:
    """Package a file for Triton Inference Server's onnxruntime backend (streaming files get
    sequence batching with implicit state)."""
    from gru_onnx.triton import package_triton

    result = package_triton(path, repo, name=name, **opts)
    click.echo(f"wrote {result.config_path} and {result.model_dir / '1' / 'model.onnx'}")
    batching = "sequence batching, implicit state" if result.states else "dynamic batching"
    if result.max_batch_size == 0:
        batching = "no batching"
    click.echo(f"max_batch_size {result.max_batch_size}; {batching}")
    for state_in, state_out in result.states:
        click.echo(f"state: {state_in} -> {state_out} (zero at the start of each sequence)")
    for note in result.notes:
        click.echo(f"note: {note}")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--provider",
    "providers",
    multiple=True,
    default=("cpu",),
    show_default=True,
    type=click.Choice(["cpu", "cuda", "tensorrt", "openvino"]),
    help="Runtime(s) to time the file on (repeat the option); OpenVINO is given static shapes.",
)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seq-len", type=click.IntRange(min=1), help="Sequence length (default: the file's, else 200).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Intra-op threads.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True, help="Timed runs per runner.")
@_model_option("PyTorch baseline for a whole-model file: FACTORY() returns (module, example_args).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results as JSON (schema: gru_onnx/bench.schema.json).",
)
def bench(path: Path, providers: tuple[str, ...], factory: str | None, json_path: Path | None, **opts: Any) -> None:
    """Time a file beside ONNX Runtime's fused GRU op and PyTorch eager, interleaved in one process."""
    from gru_onnx import bench as benchmod
    from gru_onnx.loading import load_factory

    if json_path is not None and not os.access(json_path.parent if str(json_path.parent) else ".", os.W_OK):
        _fail(f"cannot write {json_path}: its folder does not exist or is not writable", 2)
    _require_providers(providers)
    model = load_factory(factory)[0] if factory else None
    report = benchmod.bench(path, providers=providers, model=model, **opts)
    _print(benchmod.table(report))
    for reason in report.skipped:
        click.echo(f"skipped: {reason}")
    if json_path is not None:
        benchmod.write_json(report, json_path)


def main() -> None:
    """Console-script entry point: click's usage errors become one line, exit code 2."""
    try:
        cli.main(prog_name="gru-onnx", standalone_mode=False)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
