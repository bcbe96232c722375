"""gru_onnx.cli.groups: every flag of ``export`` and ``check`` reaches the API objects, or is refused
with one line, on every path (the embedded model, --model, --keras; a checkpoint, --model, --keras).

Three hand-wired copies of the flags once drifted: ``export --keras m.keras --quantize weights
--target cuda --static-batch`` wrote a float file with target any and a dynamic batch axis. The
table below runs each flag on each path with the export (or check) replaced by a recorder, so it
is fast; one real export pins that case end to end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"

FACTORY = '''
import torch
from gru_onnx import CustomGRU

def make():
    torch.manual_seed(0)
    return CustomGRU(3, 4, batch_first=True), (torch.randn(2, 5, 3),)
'''


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Keras GRU model file, a factory module and a checkpoint for the factory's GRU."""
    folder = tmp_path_factory.mktemp("sources")
    (folder / "groupfactory.py").write_text(FACTORY)
    torch.save(CustomGRU(3, 4, batch_first=True).state_dict(), folder / "gru.pt")
    torch.save(CustomGRU(16, 32).state_dict(), folder / "default.pt")
    found = {"folder": folder, "checkpoint": folder / "gru.pt", "default_checkpoint": folder / "default.pt"}
    keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install gru-onnx[keras])")
    if keras.backend.backend() == "torch":
        inputs = keras.Input((None, 3), name="signal")
        model = keras.Model(inputs, keras.layers.GRU(4, activation="relu", return_sequences=True)(inputs))
        model.save(folder / "m.keras")
        found["keras"] = folder / "m.keras"
    return found


class _Recorded(Exception):
    pass


@pytest.fixture
def recorder(monkeypatch):
    """Replace the export (and the check) by a recorder of the option groups they get."""
    from gru_onnx import exporting, parity
    from gru_onnx.keras import check as keras_check

    calls: dict = {}

    def stage_export(model, args, f, **groups):
        calls.update(model=model, args=args, path=Path(f), **groups)
        raise click.exceptions.Exit(0)

    def check_parity(model, path, args=None, *, check, checkpoint=None):
        calls.update(model=model, args=args, check=check, checkpoint=checkpoint)
        raise click.exceptions.Exit(0)

    monkeypatch.setattr(exporting, "stage_export", stage_export)
    monkeypatch.setattr(parity, "check_parity", check_parity)
    monkeypatch.setattr(keras_check, "check_parity", check_parity)
    return calls


def _path_args(path: str, sources: dict[str, Path]) -> list[str]:
    if path == "keras":
        if "keras" not in sources:
            pytest.skip("Keras is not available on the torch backend here")
        return ["--keras", str(sources["keras"])]
    if path == "model":
        return ["--model", "groupfactory:make"]
    return []


#: export flag -> (arguments, where the value lands, expected value); ``needs`` are extra arguments.
EXPORT_FLAGS = {
    "--strategy": (["--strategy", "loop"], lambda c: c["graph"].strategy, "loop"),
    "--opset": (["--opset", "20"], lambda c: c["graph"].opset, 20),
    "--dtype": (["--dtype", "float16"], lambda c: c["graph"].dtype, "float16"),
    "--target": (["--target", "cuda"], lambda c: c["graph"].target, "cuda"),
    "--static-batch": (["--static-batch"], lambda c: c["shapes"].dynamic_batch, False),
    "--dynamic-seq": (["--dynamic-seq", "--strategy", "loop"], lambda c: c["shapes"].dynamic_seq, True),
    "--streaming": (["--streaming"], lambda c: c["streaming"].enabled, True),
    "--chunk": (["--streaming", "--chunk", "2"], lambda c: c["streaming"].chunk, 2),
    "--streaming-exclude": (["--streaming", "--streaming-exclude", "nothing"], None, "names 'nothing'"),
    "--no-check": (["--no-check"], lambda c: c["check"], None),
    "--provider": (["--provider", "cpu", "--provider", "all"], lambda c: c["check"].providers, ("cpu", "all")),
    "--skip-unavailable": (["--skip-unavailable"], lambda c: c["check"].skip_unavailable, True),
    "--atol": (["--atol", "0.5"], lambda c: c["check"].atol, 0.5),
    "--rtol": (["--rtol", "0.25"], lambda c: c["check"].rtol, 0.25),
    "--samples": (["--samples", "5"], lambda c: c["check"].samples, 5),
    "--scale": (["--scale", "3", "--scale", "7"], lambda c: c["check"].scales, (3.0, 7.0)),
    "--external-data": (["--external-data"], lambda c: c["saving"].external_data, True),
    "--ir-version": (["--ir-version", "9"], lambda c: c["saving"].ir_version, 9),
    "--quantize": (["--quantize", "weights"], lambda c: c["quantize"].mode, "weights"),
    "--per-tensor": (["--quantize", "dynamic", "--per-tensor"], lambda c: c["quantize"].per_channel, False),
    "-o": (["-o", "named.onnx"], lambda c: c["path"].name, "named.onnx"),
}
#: The embedded model's flags: honoured there, refused with --model and --keras.
EMBEDDED_FLAGS = {
    "--activation": (["--activation", "relu"], lambda c: str(c["model"].spec.activation), "relu"),
    "--recurrent-activation": (["--recurrent-activation", "hard_sigmoid"],
                               lambda c: c["model"].spec.recurrent_activation.name, "hard_sigmoid"),
    "--reset-before": (["--reset-before"], lambda c: c["model"].spec.reset_after, False),
    "--input-size": (["--input-size", "5"], lambda c: c["model"].spec.input_size, 5),
    "--hidden-size": (["--hidden-size", "7"], lambda c: c["model"].spec.hidden_size, 7),
    "--num-layers": (["--num-layers", "2"], lambda c: c["model"].spec.num_layers, 2),
    "--no-bias": (["--no-bias"], lambda c: c["model"].spec.bias, False),
    "--batch-first": (["--batch-first"], lambda c: c["model"].spec.batch_first, True),
    "--bidirectional": (["--bidirectional"], lambda c: c["model"].spec.bidirectional, True),
    "--dropout": (["--dropout", "0.3"], lambda c: c["model"].spec.dropout, 0.3),
    "--with-h0": (["--with-h0"], lambda c: len(c["args"]), 2),
    "--lengths": (["--lengths"], lambda c: len(c["args"]), 3),
}  # fmt: skip


@pytest.mark.parametrize("path", ["embedded", "model", "keras"])
@pytest.mark.parametrize("flag", sorted(EXPORT_FLAGS))
def test_every_export_flag_reaches_the_export_on_every_path(flag, path, sources, recorder, run_cli, monkeypatch):
    monkeypatch.syspath_prepend(str(sources["folder"]))
    args, where, expected = EXPORT_FLAGS[flag]
    result = run_cli("export", *_path_args(path, sources), *args)
    if where is None:  # refused by the export's own rules, with the reason
        assert result.exit_code in (0, 2), result.output
        return
    assert result.exit_code == 0, result.output
    assert where(recorder) == expected


@pytest.mark.parametrize("path", ["embedded", "model", "keras"])
@pytest.mark.parametrize("flag", sorted(EMBEDDED_FLAGS))
def test_the_embedded_models_flags_are_honoured_there_and_refused_elsewhere(
    flag, path, sources, recorder, run_cli, monkeypatch
):
    monkeypatch.syspath_prepend(str(sources["folder"]))
    args, where, expected = EMBEDDED_FLAGS[flag]
    result = run_cli("export", *_path_args(path, sources), *args)
    if path == "embedded":
        assert result.exit_code == 0, result.output
        assert where(recorder) == (pytest.approx(expected) if isinstance(expected, float) else expected)
    else:
        assert result.exit_code == 2 and f"{flag} cannot be combined with --{path}" in result.output, result.output


@pytest.mark.parametrize(
    ("args", "honoured_on", "check"),
    [
        (["--seq-len", "9"], ("embedded", "keras"), lambda c: c["args"][0].shape[1 if c["args"][0].dim() == 3 and
                                                                                  c["args"][0].shape[0] == 2 else 0]),
        (["--batch", "3"], ("embedded", "keras"), lambda c: 3 in tuple(c["args"][0].shape)),
        (["--seed", "4"], ("embedded", "model", "keras"), None),
        (["--checkpoint", "{checkpoint}"], ("embedded", "model"), None),
        (["--import", "json"], ("keras",), None),
    ],
    ids=["seq-len", "batch", "seed", "checkpoint", "import"],
)
@pytest.mark.parametrize("path", ["embedded", "model", "keras"])
def test_example_and_source_flags_are_honoured_or_refused(args, honoured_on, check, path, sources, recorder,
                                                          run_cli, monkeypatch):  # fmt: skip
    monkeypatch.syspath_prepend(str(sources["folder"]))
    checkpoint = sources["default_checkpoint"] if path == "embedded" else sources["checkpoint"]
    args = [a.format(checkpoint=checkpoint) for a in args]
    result = run_cli("export", *_path_args(path, sources), *args)
    if path in honoured_on:
        assert result.exit_code == 0, result.output
        if check is not None and args[0] == "--seq-len":
            assert 9 in tuple(recorder["args"][0].shape)
        elif check is not None:
            assert check(recorder)
    else:
        assert result.exit_code == 2 and args[0] in result.output, result.output


def test_a_checkpoint_reaches_the_model(sources, recorder, run_cli, monkeypatch):
    monkeypatch.syspath_prepend(str(sources["folder"]))
    result = run_cli("export", "--model", "groupfactory:make", "--checkpoint", str(sources["checkpoint"]))
    assert result.exit_code == 0
    saved = torch.load(sources["checkpoint"])
    torch.testing.assert_close(recorder["model"].state_dict()["weight_hh_l0"], saved["weight_hh_l0"])


#: check flag -> (arguments, where the value lands, expected value)
CHECK_FLAGS = {
    "--provider": (["--provider", "all"], lambda c: c["check"].providers, ("all",)),
    "--skip-unavailable": (["--skip-unavailable"], lambda c: c["check"].skip_unavailable, True),
    "--atol": (["--atol", "0.5"], lambda c: c["check"].atol, 0.5),
    "--rtol": (["--rtol", "0.25"], lambda c: c["check"].rtol, 0.25),
    "--samples": (["--samples", "4"], lambda c: c["check"].samples, 4),
    "--scale": (["--scale", "2"], lambda c: c["check"].scales, (2.0,)),
    "--seed": (["--seed", "3"], lambda c: c["check"].seed, 3),
    "--streaming": (["--streaming"], lambda c: c["check"].streaming, True),
    "--chunks": (["--streaming", "--chunks", "1,2"], lambda c: c["check"].chunks, (1, 2)),
    "--allow-nonfinite": (["--allow-nonfinite"], lambda c: c["check"].allow_nonfinite, True),
    "--memory-budget": (["--memory-budget", "1000000"], lambda c: c["check"].memory_budget, 1000000),
    "--seq-len": (["--seq-len", "6"], lambda c: c["check"].seq_len, 6),
    "--batch": (["--batch", "5"], lambda c: c["check"].batch, 5),
}
#: Refused on purpose on the --keras path (the Keras check draws its inputs per length, one report per length).
KERAS_REFUSED = {"--inputs", "--report", "--plot"}


@pytest.fixture(scope="module")
def checked_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checked") / "g.onnx"
    torch.manual_seed(0)
    gru_onnx.export(CustomGRU(3, 4, batch_first=True), (torch.randn(2, 5, 3),), path,
                    shapes=gru_onnx.ShapeOptions(dynamic_seq=True), graph=gru_onnx.GraphOptions(strategy="loop"),
                    check=None)  # fmt: skip
    return path


@pytest.mark.parametrize("path", ["file", "checkpoint", "model", "keras"])
@pytest.mark.parametrize("flag", sorted(CHECK_FLAGS))
def test_every_check_flag_reaches_the_check_on_every_path(flag, path, sources, checked_file, recorder, run_cli,
                                                          monkeypatch):  # fmt: skip
    monkeypatch.syspath_prepend(str(sources["folder"]))
    source = {"file": [], "checkpoint": ["--checkpoint", str(sources["checkpoint"])],
              "model": ["--model", "groupfactory:make"]}.get(path) or _path_args(path, sources)  # fmt: skip
    args, where, expected = CHECK_FLAGS[flag]
    result = run_cli("check", str(checked_file), *source, *args)
    assert result.exit_code == 0, result.output
    if path == "keras" and flag in ("--batch", "--seq-len"):  # they shape the Keras example
        assert expected in tuple(recorder["args"][0].shape)
    else:
        assert where(recorder) == expected


@pytest.mark.parametrize("flag", sorted(KERAS_REFUSED))
def test_check_flags_the_keras_path_refuses_say_so(flag, sources, checked_file, run_cli, tmp_path):
    args = {"--inputs": ["--inputs", str(tmp_path / "x.npz")], "--report": ["--report", str(tmp_path / "r.json")],
            "--plot": ["--plot", str(tmp_path / "p.png")]}[flag]  # fmt: skip
    if flag == "--inputs":
        import numpy as np

        np.savez(tmp_path / "x.npz", signal=np.zeros((2, 5, 3), np.float32))
    result = run_cli("check", str(checked_file), *_path_args("keras", sources), *args)
    assert result.exit_code == 2 and f"{flag} cannot be combined with --keras" in result.output, result.output


def test_the_keras_case_of_the_review_reaches_the_written_file(sources, tmp_path, run_cli):
    """``export --keras m.keras --quantize weights --target cuda --static-batch`` exited 0 with a float
    file, target any and a dynamic batch axis."""
    if "keras" not in sources:
        pytest.skip("Keras is not available on the torch backend here")
    result = run_cli("export", "--keras", str(sources["keras"]), "--quantize", "weights", "--target", "cuda",
                     "--static-batch", "-o", str(tmp_path / "k.onnx"))  # fmt: skip
    assert result.exit_code == 0, result.output
    metadata = gru_onnx.read_metadata(tmp_path / "k.onnx")
    assert metadata["quantization"]["mode"] == "weights" and metadata["target"] == "cuda"
    assert metadata["dynamic_batch"] is False
    description = gru_onnx.describe(tmp_path / "k.onnx")
    assert description.tensors[0].dims[0] == 2  # the example's batch, static
