"""``gru-onnx export --keras`` and ``gru-onnx check --keras``: Keras models, checked against Keras.

Kept apart from :mod:`gru_onnx.cli` so the command module only gains options and a branch.
The parity reference here is the Keras model itself (run on the torch backend with
``training=False``), not only the converted module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gru_onnx.errors import GruOnnxUsageError

#: Time steps of the example input when the Keras time axis is free (``None``).
DEFAULT_KERAS_SEQ_LEN = 16
#: export options that describe the embedded CustomGRU or another source: not with --keras.
_OTHER_SOURCES = (
    "activation", "recurrent_activation", "reset_after", "input_size", "hidden_size", "num_layers", "bias",
    "batch_first", "bidirectional", "dropout", "with_h0", "with_lengths", "checkpoint", "factory",
)  # fmt: skip


def _lengths(first: int, count: int, dynamic: bool) -> list[int]:
    """Sequence lengths to compare at: the example's, then (dynamic files) 1 and ones between."""
    if not dynamic:
        return [first] * count
    return list(dict.fromkeys([first, 1, max(1, first // 2), max(1, first // 3)]))[: max(count, 2 if first > 1 else 1)]


def keras_parity(
    keras_model: Any,
    module: Any,
    path: Path,
    lengths: Sequence[int],
    *,
    batch: int,
    seed: int,
    providers: Sequence[str],
    atol: float | None,
    rtol: float | None,
) -> list[tuple[int, Any]]:
    """Run ``path`` and the Keras model on the same seeded inputs, one report per length."""
    from gru_onnx.keras import KerasReference
    from gru_onnx.parity import check_parity

    reference = KerasReference(keras_model)
    reports = []
    for i, length in enumerate(lengths):
        args = module.example_inputs(batch=batch, seq_len=length, seed=seed + i)
        report = check_parity(reference, path, args, providers=providers, atol=atol, rtol=rtol)
        report.reference = "keras"
        reports.append((int(args[0].shape[1]) if args[0].dim() > 1 else length, report))
    return reports


def _print_keras_reports(echo: Any, path: Path, reports: list[tuple[int, Any]]) -> bool:
    """Print the comparison with Keras; return whether every length passed."""
    import keras

    first = reports[0][1]
    echo(
        f"{Path(path).name} vs Keras (the Keras model itself, keras {keras.__version__}, torch backend), "
        f"pass if |onnx - keras| <= {first.atol:g} + {first.rtol:g}*|keras|"
    )
    passed = True
    for length, report in reports:
        for line in report.summary().splitlines():
            echo(f"keras T={length:<4} {line}")
        passed = passed and report.passed
    echo(f"result    {'PASS' if passed else 'FAIL'} against Keras")
    return passed


def export_keras(ctx: click.Context, opts: dict[str, Any], print_summary: Any, fail: Any) -> None:
    """``gru-onnx export --keras FILE``: convert, export, check against the module and Keras."""
    import gru_onnx
    from gru_onnx.keras import load_keras_model

    given = [n for n in _OTHER_SOURCES if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(
            f"--{given[0].replace('_', '-').replace('factory', 'model')} cannot be combined with --keras"
        )
    keras_model, notes = load_keras_model(opts["keras_path"])
    module = gru_onnx.from_keras(keras_model)
    dynamic = opts["dynamic_seq"] or (module.dynamic_time and opts["strategy"] != "unrolled")
    seq_given = ctx.get_parameter_source("seq_len") == click.core.ParameterSource.COMMANDLINE
    seq_len = opts["seq_len"] if seq_given else DEFAULT_KERAS_SEQ_LEN
    args = module.example_inputs(batch=opts["batch"], seq_len=seq_len, seed=opts["seed"])
    for note in notes:
        click.echo(f"note: {note}")
    result = gru_onnx.export(
        module, args, opts["output"], strategy=opts["strategy"], opset=opts["opset"], dtype=opts["dtype"],
        dynamic_seq=dynamic, dynamic_shapes=module.dynamic_shapes(seq=dynamic), check=opts["check"],
        providers=opts["providers"], atol=opts["atol"], rtol=opts["rtol"], external_data=opts["external_data"],
    )  # fmt: skip
    print_summary(result)
    if not result.passed:
        fail(f"parity check failed; {result.path} was written for inspection", 1)
    if not opts["check"]:
        return
    time_len = int(args[0].shape[1]) if args[0].dim() > 1 else seq_len
    reports = keras_parity(
        keras_model, module, result.path, _lengths(time_len, 3, dynamic and module.dynamic_time),
        batch=opts["batch"], seed=opts["seed"], providers=opts["providers"],
        atol=result.parity.atol, rtol=result.parity.rtol,
    )  # fmt: skip
    if not _print_keras_reports(click.echo, result.path, reports):
        fail(f"parity check against Keras failed; {result.path} was written for inspection", 1)


def check_keras(path: Path, providers: tuple[str, ...], opts: dict[str, Any], fail: Any) -> None:
    """``gru-onnx check FILE --keras MODEL``: run FILE and the Keras model on the same inputs."""
    import gru_onnx
    from gru_onnx.keras import load_keras_model
    from gru_onnx.metadata import load_model
    from gru_onnx.samples import graph_inputs

    if opts["report_path"] or opts["plot_path"] or opts["inputs"]:
        raise click.UsageError("--report, --plot and --inputs are not available with --keras yet")
    proto = load_model(path)
    keras_model, notes = load_keras_model(opts["keras_path"])
    module = gru_onnx.from_keras(keras_model)
    inputs = graph_inputs(proto)
    if len(inputs) != len(module.input_specs):
        raise GruOnnxUsageError(
            f"{path} takes {len(inputs)} input(s), the Keras model {len(module.input_specs)}: not this model's file"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    static = dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else None
    if static is not None and opts["seq_len"] is not None and opts["seq_len"] != static:
        raise GruOnnxUsageError(
            f"the file's sequence length is fixed at {static}; --seq-len {opts['seq_len']} cannot run"
        )
    first = static or opts["seq_len"] or DEFAULT_KERAS_SEQ_LEN
    for note in notes:
        click.echo(f"note: {note}")
    reports = keras_parity(
        keras_model, module, path, _lengths(first, opts["samples"], static is None and module.dynamic_time),
        batch=opts["batch"] or 2, seed=opts["seed"], providers=providers, atol=opts["atol"], rtol=opts["rtol"],
    )  # fmt: skip
    if "all" not in providers:
        for _, report in reports:
            for result in report.results:
                if result.status == "skipped":
                    fail(result.reason, 2)
    if not _print_keras_reports(click.echo, path, reports):
        lines = [line for _, report in reports for line in report.failures()]
        fail("parity check against Keras failed: " + "; ".join(lines[:3]), 1)
