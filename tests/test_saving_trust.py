"""gru_onnx.saving, gru_onnx.metadata and gru_onnx.triton against hostile files and names (trust
review II, items 6 and 7): locations hidden in sparse initializers, hard-linked data files, files
from the future, Triton names that are no folder name, repositories that cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

import gru_onnx
from gru_onnx import CustomGRU


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("saving") / "g.onnx"
    gru_onnx.export(CustomGRU(3, 4, batch_first=True), (torch.randn(2, 5, 3),), path, check=None)
    return path


def _escaping_sparse(src: Path, dst: Path) -> None:
    """A sparse initializer whose values live in an external file outside the model's folder."""
    model = onnx.load(src)
    values = numpy_helper.from_array(np.ones(4, np.float32), "sparse_values")
    values.data_location = onnx.TensorProto.EXTERNAL
    values.ClearField("raw_data")
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        values.external_data.add(key=key, value=value)
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "sparse_indices")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [8]))
    onnx.save(model, dst)


@pytest.mark.parametrize("command", ["check", "inspect", "package", "quantize"])
def test_a_location_hidden_in_a_sparse_initializer_is_refused(exported, tmp_path, run_cli, command):
    """package copied the escaping model into the repository."""
    _escaping_sparse(exported, tmp_path / "s.onnx")
    args = {"check": [], "inspect": [], "package": ["--triton", "repo"], "quantize": ["-o", "q.onnx"]}[command]
    result = run_cli(command, str(tmp_path / "s.onnx"), *args)
    assert result.exit_code == 2 and "points outside the model's folder" in result.output, result.output
    assert not (tmp_path / "repo").exists() and not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("command", ["check", "quantize", "package"])
def test_a_hard_linked_data_file_is_refused_with_exit_2(tmp_path, run_cli, command):
    gru_onnx.export(CustomGRU(16, 32), (torch.randn(5, 2, 16),), tmp_path / "m.onnx",
                    saving=gru_onnx.SavingOptions(external_data=True), check=None)  # fmt: skip
    (data,) = tmp_path.glob("m.onnx.*.data")
    os.link(data, tmp_path / "elsewhere.data")
    args = {"check": [], "quantize": ["-o", "q.onnx"], "package": ["--triton", "repo"]}[command]
    result = run_cli(command, str(tmp_path / "m.onnx"), *args)
    assert result.exit_code == 2 and "more than one hard link" in result.output, result.output
    assert run_cli("inspect", str(tmp_path / "m.onnx")).exit_code == 0


@pytest.mark.parametrize("field", ["ir_version", "opset"])
@pytest.mark.parametrize("command", ["check", "quantize", "package", "bench"])
def test_files_from_the_future_are_refused(exported, tmp_path, run_cli, field, command):
    """quantize and package wrote files from opset/IR 99 inputs that no runtime loads; bench exited 3."""
    model = onnx.load(exported)
    if field == "ir_version":
        model.ir_version = 99
    else:
        model.opset_import[0].version = 99
    onnx.save(model, tmp_path / "future.onnx")
    args = {"check": [], "quantize": ["-o", "q.onnx"], "package": ["--triton", "repo"], "bench": ["--runs", "1"]}
    result = run_cli(command, str(tmp_path / "future.onnx"), *args[command])
    assert result.exit_code == 2 and "newer than" in result.output, result.output
    assert not (tmp_path / "q.onnx").exists() and not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("nl\n", "not a valid Triton model name"), ("x" * 300, "at most 200"), ("../up", "not a valid Triton model name")],
    ids=["trailing-newline", "300-chars", "dot-dot"],
)
def test_triton_names_must_match_the_whole_pattern(exported, tmp_path, run_cli, name, message):
    """--name $'nl\\n' made a folder whose name ends in a newline ($ matched before it)."""
    result = run_cli("package", str(exported), "--triton", str(tmp_path / "repo"), "--name", name)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "repo").exists() or not list((tmp_path / "repo").iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_repository_is_exit_2(exported, tmp_path, run_cli):
    repo = tmp_path / "repo"
    repo.mkdir()
    repo.chmod(0o555)
    try:
        result = run_cli("package", str(exported), "--triton", str(repo))
        assert result.exit_code == 2 and "cannot write into" in result.output
    finally:
        repo.chmod(0o755)


def test_a_read_only_repository_is_exit_2_even_for_root(exported, tmp_path, monkeypatch, run_cli):
    """Root ignores the permission bits; the same failure, simulated where the entry is assembled."""
    from gru_onnx import triton

    def refuse(path: Path, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(triton.Path, "mkdir", refuse)
    result = run_cli("package", str(exported), "--triton", str(tmp_path / "repo"))
    assert result.exit_code == 2 and "cannot write into" in result.output and "Permission denied" in result.output


def test_inspect_into_a_closed_pipe_ends_quietly(exported):
    """`gru-onnx inspect f.onnx | head -2` ended with "internal error ... BrokenPipeError", exit 3."""
    proc = subprocess.run(
        f"{sys.executable} -m gru_onnx.cli inspect {exported} | head -2", shell=True, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert len(proc.stdout.splitlines()) == 2
    assert "Error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check", "{model}", "--report", "{data}"],
        ["check", "{model}", "--plot", "{data}"],
        ["bench", "{model}", "--json", "{data}"],
        ["quantize", "{model}", "-o", "{data}"],
    ],
    ids=["check-report", "check-plot", "bench-json", "quantize-output"],
)
def test_no_output_is_written_over_the_inputs_data_file(pair, run_cli, args):
    """Guards: outputs pointed at the input's external data file overwrote it (attack review of
    issue 21's wave): the data files were listed from a model already loaded with its weights
    inline, which names none."""
    (data,) = [p for p in pair.parent.iterdir() if p != pair]
    before = data.read_bytes()
    result = run_cli(*[a.format(model=pair, data=data) for a in args])
    assert result.exit_code == 2, result.output
    assert "data" in result.output and len(result.output.strip().splitlines()) == 1
    assert data.read_bytes() == before


def test_external_data_without_a_length_runs_to_the_end_of_its_file(tmp_path, run_cli):
    """A missing ``length`` means the data runs to the end of the file: 18432 bytes read into a
    [96, 16] float tensor ended in exit 3; it is refused naming the tensor, and a tensor that does
    end the file keeps passing."""
    gru_onnx.export(CustomGRU(16, 32), (torch.randn(5, 2, 16),), tmp_path / "m.onnx",
                    saving=gru_onnx.SavingOptions(external_data=True), check=None)  # fmt: skip
    model = onnx.load(tmp_path / "m.onnx", load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    for tensor, target in ((external[0], "first.onnx"), (external[-1], "last.onnx")):
        forged = onnx.ModelProto()
        forged.CopyFrom(model)
        (copy,) = [t for t in forged.graph.initializer if t.name == tensor.name]
        kept = [(e.key, e.value) for e in copy.external_data if e.key != "length"]
        del copy.external_data[:]
        for key, value in kept:
            copy.external_data.add(key=key, value=value)
        onnx.save(forged, tmp_path / target)
    offsets = {t.name: int(next(e.value for e in t.external_data if e.key == "offset")) for t in external}
    assert offsets[external[0].name] < offsets[external[-1].name]  # the first tensor does not end the file
    for command in (["check"], ["bench", "--runs", "1"]):
        result = run_cli(*command[:1], str(tmp_path / "first.onnx"), *command[1:])
        assert result.exit_code == 2, result.output
        assert f"tensor {external[0].name!r} has no external length" in result.output
        assert "its data does not match its dims" in result.output
    assert run_cli("check", str(tmp_path / "last.onnx")).exit_code == 0
