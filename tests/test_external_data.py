"""External data (issue #13): the model + data file pair, written atomically and reproducibly,
read back by every command, and refused with one line when the data is missing, truncated or
lies outside the model's folder. Small models with ``external_data=True`` stand in for >2 GiB ones."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
import torch
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU, saving
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.metadata import load_model
from gru_onnx.rebuild import reference_from_file

import flat
from conftest import run_ort


class Tagger(nn.Module):
    """The issue's tagger in miniature: an embedding in front of a CustomGRU and a head."""

    def __init__(self, vocab: int = 50, embed: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = CustomGRU(embed, hidden, batch_first=True, activation="relu")
        self.head = nn.Linear(hidden, 5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.embed(tokens))
        return self.head(y)


TOKENS = torch.tensor([[1, 7, 3, 9, 2], [4, 4, 0, 49, 11]])


def _export(model: nn.Module, path: Path, **options) -> gru_onnx.ExportResult:
    options = {"check": False, "external_data": True, **options}
    return flat.export(model, (TOKENS,), path, dynamic_seq=True, strategy="loop", **options)


def _external_tensors(path: Path) -> list[onnx.TensorProto]:
    """Every tensor of the model at ``path`` stored in external data (loop bodies included)."""
    model = onnx.load(str(path), load_external_data=False)
    tensors = onnx.external_data_helper._get_all_tensors(model)
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def _set_location(path: Path, location: str) -> None:
    """Point every external tensor of the model at ``path`` to ``location`` (a crafted file)."""
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(path))


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    torch.manual_seed(0)
    return Tagger().eval()


@pytest.fixture
def pair(tmp_path, tagger) -> Path:
    """A fresh exported pair in ``tmp_path/out``."""
    return _export(tagger, tmp_path / "out" / "tagger.onnx").path


@pytest.fixture
def no_reads(monkeypatch):
    """Fail the test if ONNX Runtime or ONNX's loader opens a model's external data."""

    def refuse(*args, **kwargs):
        raise AssertionError("external data was read although it should have been refused first")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_tensor", refuse)
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_model", refuse)


# ---------------------------------------------------------------------------------------------
# Writing


def test_pair_is_named_by_its_data_hash_and_runs_like_the_model(tmp_path, tagger):
    result = _export(tagger, tmp_path / "tagger.onnx")
    data = result.data_path
    assert data is not None and data.parent == tmp_path
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert data.name == f"tagger.onnx.{digest[:16]}.data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tagger.onnx", data.name])
    assert result.data_size == data.stat().st_size
    external = _external_tensors(result.path)
    # Tensors over 1 KiB (the embedding, GRU weights) live in the data file, at its name.
    assert {t.name for t in external} >= {"embed.weight"}
    for tensor in external:
        info = onnx.external_data_helper.ExternalDataInfo(tensor)
        assert info.location == data.name
    infos = [onnx.external_data_helper.ExternalDataInfo(t) for t in external]
    assert max(int(i.offset or 0) + int(i.length) for i in infos) == data.stat().st_size
    inline = onnx.load(str(result.path), load_external_data=False).graph.initializer
    assert all(len(t.raw_data) <= saving.INLINE_TENSOR_BYTES for t in inline if t not in external)
    with torch.no_grad():
        expected = tagger(TOKENS).numpy()
    (actual,) = run_ort(result.path, {"tokens": TOKENS.numpy()})
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)
    onnx.checker.check_model(str(result.path), full_check=True)


def test_export_check_runs_on_the_pair(tmp_path, tagger):
    result = _export(tagger, tmp_path / "tagger.onnx", check=True)
    assert result.data_path is not None
    assert result.passed, result.parity.summary()
    assert result.parity.max_abs < 1e-5
    (weights,) = result.parity.weights  # the GRU weights were read back from the data file
    assert weights.passed


def test_two_exports_give_identical_bytes(tmp_path, tagger):
    first = _export(tagger, tmp_path / "a" / "tagger.onnx")
    second = _export(tagger, tmp_path / "b" / "tagger.onnx")
    assert first.data_path.name == second.data_path.name
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.data_path.read_bytes() == second.data_path.read_bytes()


def test_overwrite_replaces_the_pair_and_removes_the_old_data(tmp_path, tagger):
    path = tmp_path / "tagger.onnx"
    old = _export(tagger, path).data_path
    torch.manual_seed(1)
    other = Tagger().eval()
    new = _export(other, path).data_path
    assert new != old and not old.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tagger.onnx", new.name])
    with torch.no_grad():
        np.testing.assert_allclose(run_ort(path, {"tokens": TOKENS.numpy()})[0], other(TOKENS).numpy(), atol=1e-5)
    # Exporting the same weights again keeps the same data file; inline removes it.
    assert _export(other, path).data_path == new and new.exists()
    assert _export(other, path, external_data=False).data_path is None
    assert [p.name for p in tmp_path.iterdir()] == ["tagger.onnx"]


def test_a_failed_overwrite_leaves_the_old_pair_intact(tmp_path, tagger, monkeypatch):
    path = tmp_path / "tagger.onnx"
    old = _export(tagger, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_check = onnx.checker.check_model

    def failing_check(model, *args, **kwargs):
        if isinstance(model, str):  # the check on the written file, the last step before the rename
            raise onnx.checker.ValidationError("injected failure")
        return real_check(model, *args, **kwargs)

    monkeypatch.setattr(onnx.checker, "check_model", failing_check)
    torch.manual_seed(1)
    with pytest.raises(gru_onnx.errors.InternalError, match="injected failure"):
        _export(Tagger().eval(), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no new data, no temporary file
    with torch.no_grad():
        np.testing.assert_allclose(run_ort(old.path, {"tokens": TOKENS.numpy()})[0], tagger(TOKENS).numpy(), atol=1e-5)


def test_a_failed_data_write_leaves_nothing_behind(tmp_path, tagger, monkeypatch):
    """Disk full half-way through the data file: one-line error, the old pair as it was."""
    path = tmp_path / "tagger.onnx"
    _export(tagger, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_unload = ir.external_data.unload_from_model

    def disk_full(model, base_dir, relative_path, **kwargs):
        real_unload(model, base_dir, relative_path, **kwargs)  # the data is written, then the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ir.external_data, "unload_from_model", disk_full)
    torch.manual_seed(1)
    with pytest.raises(GruOnnxUsageError, match=r"^cannot write .*tagger.onnx: No space left on device$"):
        _export(Tagger().eval(), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_overwrite_keeps_data_files_not_named_like_ours(tmp_path, tagger):
    """A data file the old model shares under another name (weights.bin) is not ours to delete."""
    path = tmp_path / "tagger.onnx"
    data = _export(tagger, path).data_path
    os.replace(data, tmp_path / "weights.bin")
    _set_location(path, "weights.bin")
    new = _export(tagger, path).data_path
    assert (tmp_path / "weights.bin").exists() and new.exists()


def test_automatic_choice_follows_the_protobuf_limit(tmp_path, tagger, monkeypatch):
    inline = _export(tagger, tmp_path / "inline.onnx", external_data=None)
    assert inline.data_path is None and not _external_tensors(inline.path)
    # The estimate the choice rests on is not below the real serialized size.
    assert saving.estimated_size(ir.load(inline.path)) >= inline.path.stat().st_size
    monkeypatch.setattr(saving, "PROTOBUF_LIMIT", inline.path.stat().st_size)
    auto = _export(tagger, tmp_path / "auto.onnx", external_data=None)
    assert auto.data_path is not None and auto.data_path.exists()
    with pytest.raises(GruOnnxUsageError, match="over protobuf's 2 GiB limit"):
        _export(tagger, tmp_path / "refused.onnx", external_data=False)
    assert not (tmp_path / "refused.onnx").exists()


# ---------------------------------------------------------------------------------------------
# Commands


def test_cli_export_check_inspect_on_a_lone_gru(run_cli, tmp_path):
    result = run_cli("export", "--external-data", "--no-check", "-o", "gru.onnx")
    assert result.exit_code == 0, result.output
    (data,) = [p for p in tmp_path.iterdir() if p.name.endswith(".data")]
    assert f"{data.name} (" in result.output and "external data" in result.output
    # check rebuilds the reference from the file: its GRU weights are read from the data file.
    checked = run_cli("check", "gru.onnx")
    assert checked.exit_code == 0, checked.output
    verdicts = [line.split()[-1] for line in checked.output.splitlines() if line.strip().startswith("ort-cpu")]
    assert verdicts == ["pass", "pass"]
    torch.manual_seed(0)  # the CLI's default model, seed 0
    source = CustomGRU(16, 32)
    rebuilt = reference_from_file(load_model(tmp_path / "gru.onnx"), gru_onnx.read_metadata(tmp_path / "gru.onnx"))
    for name, tensor in source.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[name], tensor, rtol=0, atol=0)
    shown = run_cli("inspect", "gru.onnx")
    assert shown.exit_code == 0, shown.output
    assert f"external data  {data.name} (" in shown.output
    default = run_cli("export", "--no-check", "-o", "inline.onnx")
    assert default.exit_code == 0 and not list(tmp_path.glob("inline.onnx.*"))


def test_package_copies_the_data_file_into_the_version_folder(run_cli, tmp_path, pair, tagger):
    pytest.importorskip("tritonclient.grpc", reason="needs the [triton] extra")
    result = run_cli("package", str(pair), "--triton", "repo")
    assert result.exit_code == 0, result.output
    version = tmp_path / "repo" / "tagger" / "1"
    (data,) = _external_tensors(pair)[:1]
    location = onnx.external_data_helper.ExternalDataInfo(data).location
    assert sorted(p.name for p in version.iterdir()) == sorted(["model.onnx", location])
    assert (version / location).read_bytes() == (pair.parent / location).read_bytes()
    with torch.no_grad():
        expected = tagger(TOKENS).numpy()
    np.testing.assert_allclose(run_ort(version / "model.onnx", {"tokens": TOKENS.numpy()})[0], expected, atol=1e-5)


def test_read_metadata_and_inspect_work_without_the_data_file(run_cli, pair, no_reads):
    data = next(pair.parent.glob("*.data"))
    data.unlink()
    assert gru_onnx.read_metadata(pair)["stacks"][0]["path"] == "rnn"
    shown = run_cli("inspect", str(pair))
    assert shown.exit_code == 0, shown.output
    assert f"{data.name} (MISSING" in shown.output


def test_missing_data_file(run_cli, pair, no_reads):
    data = next(pair.parent.glob("*.data"))
    data.unlink()
    line = _one_line_error(run_cli("check", str(pair), "--model", "nothing:here"))
    assert f"external data {data.name!r} is missing" in line
    line = _one_line_error(run_cli("package", str(pair), "--triton", "repo"))
    assert "is missing" in line
    with pytest.raises(GruOnnxUsageError, match="is missing"):
        flat.check_parity(Tagger(), pair, (TOKENS,))


def test_truncated_data_file(run_cli, tmp_path, pair, no_reads):
    data = next(pair.parent.glob("*.data"))
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size - 4)
    line = _one_line_error(run_cli("check", str(pair)))
    assert f"is truncated: {size - 4} bytes, the model needs {size}" in line
    assert "truncated" in _one_line_error(run_cli("package", str(pair), "--triton", "repo"))
    assert not (tmp_path / "repo" / "tagger").exists()
    shown = run_cli("inspect", str(pair))
    assert shown.exit_code == 0 and "TRUNCATED" in shown.output


def _outside_cases(pair: Path, tmp_path: Path) -> list[tuple[str, str]]:
    """(location, message) pairs that each lead outside the model's folder to a real copy of
    the data, so that only the check (not a missing file) can stop them."""
    data = next(pair.parent.glob("*.data"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copyfile(data, outside / "x.data")
    (pair.parent / "link.data").symlink_to(outside / "x.data")
    (pair.parent / "linked").symlink_to(outside)
    return [
        ("../elsewhere/x.data", "points outside the model's folder"),
        (str(outside / "x.data"), "points outside the model's folder"),
        ("link.data", "leads outside the model's folder through a symbolic link"),
        ("linked/x.data", "leads outside the model's folder through a symbolic link"),
    ]


def test_locations_outside_the_folder_are_refused_without_reading(run_cli, tmp_path, pair, no_reads):
    for location, message in _outside_cases(pair, tmp_path):
        _set_location(pair, location)
        for command in (("check", str(pair)), ("package", str(pair), "--triton", "repo"), ("inspect", str(pair))):
            line = _one_line_error(run_cli(*command))
            assert f"external data {location!r} {message}" in line, (command, line)
        with pytest.raises(GruOnnxUsageError, match="refusing to read it"):
            flat.check_parity(Tagger(), pair, (TOKENS,))
        assert gru_onnx.read_metadata(pair)["stacks"][0]["path"] == "rnn"  # reads no data, refuses nothing
    assert not (tmp_path / "repo").exists()


def test_a_symlink_inside_the_folder_is_refused_too(run_cli, pair, no_reads):
    """ONNX reads only regular files; the link is named before any loader trips over it."""
    data = next(pair.parent.glob("*.data"))
    (pair.parent / "inner").mkdir()
    os.replace(data, pair.parent / "inner" / data.name)
    data.symlink_to(pair.parent / "inner" / data.name)
    line = _one_line_error(run_cli("check", str(pair)))
    assert f"external data {data.name!r} is a symbolic link" in line


# ---------------------------------------------------------------------------------------------
# int8 (gru_onnx.quantize) with external data


def test_quantize_reads_an_external_pair_and_writes_one(run_cli, tmp_path, pair, tagger):
    """Source and target pairs both: the int8 file stays within 5% of the float model."""
    result = run_cli("quantize", str(pair), "-o", "int8.onnx", "--mode", "weights", "--external-data")
    assert result.exit_code == 0, result.output
    (data,) = tmp_path.glob("int8.onnx.*.data")
    assert data.name == f"int8.onnx.{hashlib.sha256(data.read_bytes()).hexdigest()[:16]}.data"
    with torch.no_grad():
        expected = tagger(TOKENS).numpy()
    (got,) = run_ort(tmp_path / "int8.onnx", {"tokens": TOKENS.numpy()})
    assert 0 < np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()
    inline = run_cli("quantize", str(pair), "-o", "inline.onnx", "--mode", "weights")
    assert inline.exit_code == 0 and not list(tmp_path.glob("inline.onnx.*"))
    np.testing.assert_array_equal(run_ort(tmp_path / "inline.onnx", {"tokens": TOKENS.numpy()})[0], got)


def test_quantize_refuses_a_pair_whose_data_is_missing(run_cli, tmp_path, pair, no_reads):
    next(pair.parent.glob("*.data")).unlink()
    assert "is missing" in _one_line_error(run_cli("quantize", str(pair), "-o", "int8.onnx"))
    assert not list(tmp_path.glob("int8.onnx*"))


def test_int8_export_with_external_data_checks_from_the_pair(tmp_path):
    """The check rebuilds the dequantized reference from int8 values and scales in the data file
    (hidden 96: 288 per-channel scales, over the 1 KiB that sends a tensor there)."""
    torch.manual_seed(0)
    result = _export(Tagger(embed=32, hidden=96).eval(), tmp_path / "int8.onnx", quantize="weights", check=True)
    assert result.data_path is not None and result.passed, result.parity.summary()
    record = gru_onnx.read_metadata(result.path)["quantization"]["tensors"]["rnn.weight_ih_l0"]
    external = {t.name for t in _external_tensors(result.path)}
    assert record["values"] in external and record["scale"] in external
    assert result.parity.weights and all(w.passed for w in result.parity.weights)


def test_openvino_reads_the_pair_from_the_model_path(pair, tagger):
    pytest.importorskip("openvino", reason="needs the [openvino] extra")
    report = flat.check_parity(tagger, pair, (TOKENS,), providers=("openvino",))
    (result,) = report.results
    assert result.status == "passed", report.summary()
    assert report.max_abs < 1e-5
