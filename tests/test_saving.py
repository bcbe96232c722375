"""Writing files (``gru_onnx.saving``): atomically, with ordinary permissions, refused early
when the path cannot be written; model + data pairs (issue 13) named by their data's hash,
reproducible, overwritten safely, and refused with one line when the data is missing,
truncated or outside the model's folder. Small models with ``external_data=True`` stand in
for >2 GiB ones."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch

import gru_onnx
from gru_onnx import GruOnnxUsageError, saving

import flat
from helpers import TOKENS, TokenTagger, export_pair, external_tensors, one_line_error, run_ort, set_location


def test_pair_is_named_by_its_data_hash_and_runs_like_the_model(tmp_path, tagger):
    result = export_pair(tagger, tmp_path / "tagger.onnx")
    data = result.data_path
    assert data is not None and data.parent == tmp_path
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert data.name == f"tagger.onnx.{digest[:16]}.data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tagger.onnx", data.name])
    assert result.data_size == data.stat().st_size
    external = external_tensors(result.path)
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
    result = export_pair(tagger, tmp_path / "tagger.onnx", check=True)
    assert result.data_path is not None
    assert result.passed, result.parity.summary()
    assert result.parity.max_abs < 1e-5
    (weights,) = result.parity.weights  # the GRU weights were read back from the data file
    assert weights.passed


def test_two_exports_give_identical_bytes(tmp_path, tagger):
    first = export_pair(tagger, tmp_path / "a" / "tagger.onnx")
    second = export_pair(tagger, tmp_path / "b" / "tagger.onnx")
    assert first.data_path.name == second.data_path.name
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.data_path.read_bytes() == second.data_path.read_bytes()


def test_overwrite_replaces_the_pair_and_removes_the_old_data(tmp_path, tagger):
    path = tmp_path / "tagger.onnx"
    old = export_pair(tagger, path).data_path
    torch.manual_seed(1)
    other = TokenTagger().eval()
    new = export_pair(other, path).data_path
    assert new != old and not old.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tagger.onnx", new.name])
    with torch.no_grad():
        np.testing.assert_allclose(run_ort(path, {"tokens": TOKENS.numpy()})[0], other(TOKENS).numpy(), atol=1e-5)
    # Exporting the same weights again keeps the same data file; inline removes it.
    assert export_pair(other, path).data_path == new and new.exists()
    assert export_pair(other, path, external_data=False).data_path is None
    assert [p.name for p in tmp_path.iterdir()] == ["tagger.onnx"]


def test_a_failed_overwrite_leaves_the_old_pair_intact(tmp_path, tagger, monkeypatch):
    path = tmp_path / "tagger.onnx"
    old = export_pair(tagger, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_check = onnx.checker.check_model

    def failing_check(model, *args, **kwargs):
        if isinstance(model, str):  # the check on the written file, the last step before the rename
            raise onnx.checker.ValidationError("injected failure")
        return real_check(model, *args, **kwargs)

    monkeypatch.setattr(onnx.checker, "check_model", failing_check)
    torch.manual_seed(1)
    with pytest.raises(gru_onnx.errors.InternalError, match="injected failure"):
        export_pair(TokenTagger().eval(), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no new data, no temporary file
    with torch.no_grad():
        np.testing.assert_allclose(run_ort(old.path, {"tokens": TOKENS.numpy()})[0], tagger(TOKENS).numpy(), atol=1e-5)


def test_a_failed_data_write_leaves_nothing_behind(tmp_path, tagger, monkeypatch):
    """Disk full half-way through the data file: one-line error, the old pair as it was."""
    path = tmp_path / "tagger.onnx"
    export_pair(tagger, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_unload = ir.external_data.unload_from_model

    def disk_full(model, base_dir, relative_path, **kwargs):
        real_unload(model, base_dir, relative_path, **kwargs)  # the data is written, then the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ir.external_data, "unload_from_model", disk_full)
    torch.manual_seed(1)
    with pytest.raises(GruOnnxUsageError, match=r"^cannot write .*tagger.onnx: No space left on device$"):
        export_pair(TokenTagger().eval(), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_overwrite_keeps_data_files_not_named_like_ours(tmp_path, tagger):
    """A data file the old model shares under another name (weights.bin) is not ours to delete."""
    path = tmp_path / "tagger.onnx"
    data = export_pair(tagger, path).data_path
    os.replace(data, tmp_path / "weights.bin")
    set_location(path, "weights.bin")
    new = export_pair(tagger, path).data_path
    assert (tmp_path / "weights.bin").exists() and new.exists()


def test_automatic_choice_follows_the_protobuf_limit(tmp_path, tagger, monkeypatch):
    inline = export_pair(tagger, tmp_path / "inline.onnx", external_data=None)
    assert inline.data_path is None and not external_tensors(inline.path)
    # The estimate the choice rests on is not below the real serialized size.
    assert saving.estimated_size(ir.load(inline.path)) >= inline.path.stat().st_size
    monkeypatch.setattr(saving, "PROTOBUF_LIMIT", inline.path.stat().st_size)
    auto = export_pair(tagger, tmp_path / "auto.onnx", external_data=None)
    assert auto.data_path is not None and auto.data_path.exists()
    with pytest.raises(GruOnnxUsageError, match="over protobuf's 2 GiB limit"):
        export_pair(tagger, tmp_path / "refused.onnx", external_data=False)
    assert not (tmp_path / "refused.onnx").exists()


def test_missing_data_file(run_cli, pair, no_reads):
    data = next(pair.parent.glob("*.data"))
    data.unlink()
    line = one_line_error(run_cli("check", str(pair), "--model", "nothing:here"))
    assert f"external data {data.name!r} is missing" in line
    line = one_line_error(run_cli("package", str(pair), "--triton", "repo"))
    assert "is missing" in line
    with pytest.raises(GruOnnxUsageError, match="is missing"):
        flat.check_parity(TokenTagger(), pair, (TOKENS,))


def test_truncated_data_file(run_cli, tmp_path, pair, no_reads):
    data = next(pair.parent.glob("*.data"))
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size - 4)
    line = one_line_error(run_cli("check", str(pair)))
    assert f"is truncated: {size - 4} bytes, the model needs {size}" in line
    assert "truncated" in one_line_error(run_cli("package", str(pair), "--triton", "repo"))
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
        set_location(pair, location)
        for command in (("check", str(pair)), ("package", str(pair), "--triton", "repo"), ("inspect", str(pair))):
            line = one_line_error(run_cli(*command))
            assert f"external data {location!r} {message}" in line, (command, line)
        with pytest.raises(GruOnnxUsageError, match="refusing to read it"):
            flat.check_parity(TokenTagger(), pair, (TOKENS,))
        assert gru_onnx.read_metadata(pair)["stacks"][0]["path"] == "rnn"  # reads no data, refuses nothing
    assert not (tmp_path / "repo").exists()


def test_a_symlink_inside_the_folder_is_refused_too(run_cli, pair, no_reads):
    """ONNX reads only regular files; the link is named before any loader trips over it."""
    data = next(pair.parent.glob("*.data"))
    (pair.parent / "inner").mkdir()
    os.replace(data, pair.parent / "inner" / data.name)
    data.symlink_to(pair.parent / "inner" / data.name)
    line = one_line_error(run_cli("check", str(pair)))
    assert f"external data {data.name!r} is a symbolic link" in line


def test_output_path_problems_exit_2_early(run_cli, tmp_path):
    (tmp_path / "adir").mkdir()
    result = run_cli("export", "-o", "adir")
    assert result.exit_code == 2 and "is a directory" in result.output
    result = run_cli("export", "-o", "/proc/gru.onnx")
    assert result.exit_code == 2 and "cannot write to /proc" in result.output


def test_written_file_has_ordinary_permissions(run_cli, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        assert run_cli("export", "--no-check").exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "gru.onnx").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["gru.onnx"]  # no temporary files left
