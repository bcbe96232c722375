"""``gru-onnx export``: the embedded default model, your own (``--model``) or a Keras one (``--keras``).

Every source takes the same option groups (graph, shapes, streaming, check, saving, quantize),
so a flag is honoured on each path by construction; the flags of one source (the embedded
model's sizes, say) given with another are refused with one line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from gru_onnx.cli import groups
from gru_onnx.cli.app import cli, fail, show
from gru_onnx.cli.groups import Given

#: The fields every export takes, by group.
EXPORT_FIELDS = (
    groups.GRAPH.fields + groups.SHAPES.fields + groups.STREAMING.fields + groups.EXPORT_CHECK.fields
    + groups.SAVING.fields + groups.QUANTIZE.fields
)  # fmt: skip
#: Time steps of a Keras example when the Keras time axis is free (``None``).
KERAS_SEQ_LEN = 16


@cli.command()
@groups.EMBEDDED
@groups.EXAMPLE
@groups.CHECKPOINT
@groups.MODEL
@groups.KERAS
@groups.GRAPH
@groups.SHAPES
@groups.STREAMING
@groups.QUANTIZE
@groups.SAVING
@groups.EXPORT_CHECK
@click.option(
    "-o",
    "--output",
    type=groups.path(),
    help="The ONNX file to write (default: gru.onnx; with --keras the Keras file's name with .onnx).",
)
def export(output: Path | None, given: Given) -> None:
    """Export a CustomGRU (or a whole model) to ONNX and check it against PyTorch.

    With no options it exports the embedded default: a 1-layer GRU, input 16, hidden 32,
    sequence length 20, seed 0, to gru.onnx.
    """
    if given.values["keras_path"] is not None:
        return _export_keras(output, given)
    given.refuse(["imports"], "needs --keras (it imports the modules a Keras file's custom classes come from)")
    import torch

    from gru_onnx.exporting import export as run_export
    from gru_onnx.loading import load_checkpoint
    from gru_onnx.options import groups_from_flat

    torch.manual_seed(given.values["seed"])
    factory_options: dict[str, Any] = {}
    if given.values["factory"] is not None:
        from gru_onnx.cli.factory import load_factory

        given.refuse(groups.EMBEDDED.fields, "cannot be combined with --model (the factory builds the model)")
        given.refuse(["example_seq_len", "example_batch"], "cannot be combined with --model (the factory gives "
                     "the example)")  # fmt: skip
        model, args, factory_options = load_factory(given.values["factory"])
    else:
        model, args = _embedded(given)
    if given.values["checkpoint"] is not None:
        load_checkpoint(model, given.values["checkpoint"])
    options = groups_from_flat(given.flat(EXPORT_FIELDS, factory_options))
    target = output or Path("gru.onnx")
    _refuse_aliases(target, [("checkpoint", given.values["checkpoint"])])
    existed = target.exists()
    result = run_export(model, args, target, **options.as_kwargs())
    show(_summary(result))
    if not result.passed:
        fail(_failed(result, target, existed), 1)


def _refuse_aliases(target: Path, inputs: list[tuple[str, Path | None]]) -> None:
    """The output (and where a failed one would go) must not be an input."""
    from gru_onnx.exporting import failed_path
    from gru_onnx.files import refuse_aliases

    refuse_aliases([("output", target), ("failed output", failed_path(target))], inputs)


def _failed(result: Any, target: Path, existed: bool, against: str = "PyTorch") -> str:
    """The one line a failed export ends with: where the file went, that the target is untouched,
    and the PyTorch check's hint (a streaming file failing only chunk by chunk: the frame-local rule)."""
    left = "left as it was" if existed else "not written"
    hint = result.parity.hint if against == "PyTorch" and result.parity is not None else ""
    line = (f"parity check failed against {against}; the file was written as {result.path} for inspection, "
            f"{target} {left}")  # fmt: skip
    return f"{line}; {hint}" if hint else line


def _summary(result: Any) -> Any:
    from gru_onnx.cli.render import export_summary

    return export_summary(result)


def _embedded(given: Given) -> tuple[Any, tuple[Any, ...]]:
    """The embedded default model (its flags applied) and its seeded example."""
    import torch

    from gru_onnx.module import CustomGRU

    v = given.values
    batch = v["example_batch"]
    seq_len = v["example_seq_len"] or groups.DEFAULTS["seq_len"]
    if batch < 2 and v["dynamic_batch"]:
        raise click.BadParameter(
            f"{batch} needs --static-batch (a dynamic batch axis needs an example batch of at least 2)",
            param_hint="--batch",
        )
    model = CustomGRU(**{f: v[f] for f in groups.EMBEDDED.fields if f not in ("with_h0", "with_lengths")})
    spec = model.spec
    shape = (batch, seq_len, spec.input_size) if spec.batch_first else (seq_len, batch, spec.input_size)
    x = torch.randn(*shape)
    h0 = 0.5 * torch.randn(spec.num_layers * spec.num_directions, batch, spec.hidden_size) if v["with_h0"] else None
    if not v["with_lengths"]:
        return model, ((x, h0) if v["with_h0"] else (x,))
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0] = seq_len
    return model, (x, h0, lengths)


def _export_keras(output: Path | None, given: Given) -> None:
    """``--keras FILE``: convert, export with every group honoured, check against the module and Keras."""
    given.refuse(groups.EMBEDDED.fields, "cannot be combined with --keras (it describes the embedded model)")
    given.refuse(["checkpoint"], "cannot be combined with --keras (the weights are the Keras model's)")
    given.refuse(["factory"], "cannot be combined with --keras")
    from gru_onnx.exporting import stage_export
    from gru_onnx.keras import from_keras, load_keras_model
    from gru_onnx.keras.check import keras_lengths, keras_parity, print_keras_reports
    from gru_onnx.options import KerasOptions, groups_from_flat

    path: Path = given.values["keras_path"]
    keras_model, notes = load_keras_model(path, KerasOptions(imports=given.values["imports"] or ()))
    module = from_keras(keras_model)
    flat = given.flat(EXPORT_FIELDS)
    streaming = bool(flat.get("streaming"))
    if "dynamic_seq" not in given.given and not streaming:  # a free Keras time axis stays free
        flat["dynamic_seq"] = module.dynamic_time and flat.get("strategy") != "unrolled"
    options = groups_from_flat(flat)
    seq_len = given.values["example_seq_len"] or KERAS_SEQ_LEN
    batch = given.values["example_batch"]
    args = module.example_inputs(batch=batch, seq_len=seq_len, seed=given.values["seed"])
    for note in notes:
        click.echo(f"note: {note}")
    target = output or Path(path.stem + ".onnx")
    _refuse_aliases(target, [("Keras model", path)])
    existed = target.exists()
    staged = stage_export(module, args, target, **options.as_kwargs())
    try:
        module_ok = staged.run_check().passed if staged.check is not None else True
        keras_ok, reports = True, []
        if staged.check is not None and module_ok:
            time_len = int(args[0].shape[1]) if args[0].dim() > 1 else seq_len
            dynamic = bool(staged.result.metadata.get("dynamic_seq")) and module.dynamic_time
            report = staged.result.parity
            check = dataclasses.replace(staged.check, atol=report.atol, rtol=report.rtol) if report else staged.check
            reports = keras_parity(
                keras_model, module, staged.candidate, keras_lengths(time_len, 3, dynamic), batch=batch,
                seed=given.values["seed"], check=check,
            )  # fmt: skip
            keras_ok = all(r.passed for _, r in reports)
    except BaseException:
        staged.discard()
        raise
    result = staged.finish(passed=module_ok and keras_ok)
    show(_summary(result))
    if not module_ok:
        fail(_failed(result, target, existed), 1)
    if reports:
        print_keras_reports(click.echo, result.path, reports)
    if not keras_ok:
        fail(_failed(result, target, existed, "Keras"), 1)
