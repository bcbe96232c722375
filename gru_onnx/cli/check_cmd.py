"""``gru-onnx check``: a file against its source, rebuilt from the file, a checkpoint, ``--model`` or ``--keras``.

Every source takes the check group in full; what one source cannot honour is refused with
one line (``--inputs`` with ``--keras``: the Keras check draws its own inputs per length).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli, fail, show
from gru_onnx.cli.groups import Given


@cli.command()
@click.argument("path", type=groups.path())
@groups.CHECKPOINT
@groups.MODEL
@groups.KERAS
@groups.CHECK
@groups.REPORT
def check(path: Path, given: Given) -> None:
    """Check an exported file against PyTorch on one or more runtimes.

    Without --checkpoint, --model or --keras the PyTorch reference is rebuilt from the file's
    metadata and weights. Exit code 0: every runtime that ran passed; 1: a mismatch; 2: bad
    usage, an unreadable file, or a requested runtime that is not available.
    """
    v = given.values
    if v["checkpoint"] is not None and v["factory"] is not None:
        raise click.UsageError("--checkpoint and --model cannot be combined")
    if v["plot_path"] is not None and importlib.util.find_spec("matplotlib") is None:
        fail("--plot needs matplotlib: pip install gru-onnx[plot]", 2)
    from gru_onnx.files import refuse_aliases
    from gru_onnx.metadata import data_file_paths, load_model
    from gru_onnx.options import CheckOptions
    from gru_onnx.saving import writable_target

    for target in (v["report_path"], v["plot_path"]):
        if target is not None:
            writable_target(target, create_parents=False)
    load_model(path)  # unreadable files (and their data files) fail here, before any model is built
    refuse_aliases(
        [("report", v["report_path"]), ("plot", v["plot_path"])],
        [("checked file", path), ("checkpoint", v["checkpoint"]), ("inputs", v["inputs"]),
         ("Keras model", v["keras_path"]), *(("checked file's data", d) for d in data_file_paths(path))],
    )  # fmt: skip
    if v["keras_path"] is not None:
        return _check_keras(path, given)
    given.refuse(["imports"], "needs --keras (it imports the modules a Keras file's custom classes come from)")
    from gru_onnx.parity import check_parity
    from gru_onnx.report import plot, table, write_json

    model, args, factory_options = None, None, {}
    if v["factory"] is not None:
        from gru_onnx.cli.factory import load_factory

        model, args, factory_options = load_factory(v["factory"])
    # A factory's check options (its tolerances, say) serve its checks too, unless given here.
    check_fields = {k: val for k, val in given.flat(groups.CHECK.fields, factory_options).items()
                    if k in groups.CHECK.fields}  # fmt: skip
    report = check_parity(model, path, args, check=CheckOptions(**check_fields), checkpoint=v["checkpoint"])
    show(table(report))
    if v["report_path"] is not None:
        write_json(report, v["report_path"])
    if v["plot_path"] is not None:
        plot(report, v["plot_path"])
    if not report.passed:
        fail("parity check failed: " + "; ".join(report.failures()), 1)


def _check_keras(path: Path, given: Given) -> None:
    """``check FILE --keras MODEL``: the file and the Keras model on the same seeded inputs."""
    given.refuse(["inputs"], "cannot be combined with --keras: the Keras check draws its inputs per length")
    given.refuse(["report_path", "plot_path"], "cannot be combined with --keras yet (one report per length)")
    from gru_onnx.errors import GruOnnxUsageError
    from gru_onnx.keras import from_keras, load_keras_model
    from gru_onnx.keras.check import keras_lengths, keras_parity, print_keras_reports
    from gru_onnx.metadata import load_model
    from gru_onnx.options import CheckOptions, KerasOptions
    from gru_onnx.samples import graph_inputs

    v = given.values
    proto = load_model(path)
    keras_model, notes = load_keras_model(v["keras_path"], KerasOptions(imports=v["imports"] or ()))
    module = from_keras(keras_model)
    inputs = graph_inputs(proto)
    if len(inputs) != len(module.input_specs):
        raise GruOnnxUsageError(
            f"{path} takes {len(inputs)} input(s), the Keras model {len(module.input_specs)}: not this model's file"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    static = dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else None
    if static is not None and v["seq_len"] is not None and v["seq_len"] != static:
        raise GruOnnxUsageError(f"the file's sequence length is fixed at {static}; --seq-len {v['seq_len']} cannot run")
    first = static or v["seq_len"] or 16
    for note in notes:
        click.echo(f"note: {note}")
    check = CheckOptions(**{k: v[k] for k in groups.CHECK.fields})
    reports = keras_parity(
        keras_model, module, path, keras_lengths(first, v["samples"], static is None and module.dynamic_time),
        batch=v["batch"] or 2, seed=v["seed"], check=check,
    )  # fmt: skip
    if not print_keras_reports(click.echo, path, reports):
        lines = [line for _, report in reports for line in report.failures()]
        fail("parity check against Keras failed: " + "; ".join(lines[:3]), 1)
