"""gru_onnx.files and the writers on it: no output destroys an input or a good file, every file is
written atomically, leftovers of killed runs are cleaned (trust review II, items 3, 4 and 8)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, GruOnnxUsageError, QuantizeOptions
from gru_onnx.files import TEMP_MARK, atomic_write, refuse_aliases, remove_stale_temps


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    gru = CustomGRU(4, 6, activation="relu")
    torch.save(gru.state_dict(), tmp_path / "src.pt")
    gru_onnx.export(gru, (torch.randn(5, 2, 4),), tmp_path / "m.onnx", check=None)
    return tmp_path / "m.onnx", tmp_path / "src.pt"


# ---------------------------------------------------------------- item 3: outputs that alias inputs


def test_quantize_onto_its_input_is_refused(exported, run_cli):
    path, _ = exported
    before = _digest(path)
    result = run_cli("quantize", str(path), "-o", str(path))
    assert result.exit_code == 2 and "would be destroyed" in result.output
    assert _digest(path) == before


@pytest.mark.parametrize("link", ["same", "hard", "symlink"])
@pytest.mark.parametrize("flag", ["--report", "--plot"])
def test_check_reports_onto_the_checked_file_are_refused(exported, run_cli, tmp_path, link, flag):
    path, _ = exported
    before = _digest(path)
    target = {"same": path, "hard": tmp_path / "hard.json", "symlink": tmp_path / "sym.json"}[link]
    if link == "hard":
        os.link(path, target)
    elif link == "symlink":
        target.symlink_to(path)
    result = run_cli("check", str(path), flag, str(target))
    assert result.exit_code == 2 and "would be destroyed" in result.output, result.output
    assert _digest(path) == before


def test_bench_json_onto_the_timed_file_is_refused(exported, run_cli):
    path, _ = exported
    before = _digest(path)
    result = run_cli("bench", str(path), "--json", str(path), "--runs", "1")
    assert result.exit_code == 2 and "would be destroyed" in result.output
    assert _digest(path) == before


def test_export_onto_its_checkpoint_is_refused(exported, run_cli):
    _, checkpoint = exported
    before = _digest(checkpoint)
    result = run_cli("export", "--checkpoint", str(checkpoint), "--input-size", "4", "--hidden-size", "6",
                     "--activation", "relu", "-o", str(checkpoint))  # fmt: skip
    assert result.exit_code == 2 and "would be destroyed" in result.output
    assert _digest(checkpoint) == before


def test_refuse_aliases_sees_through_links(tmp_path):
    (tmp_path / "a").write_text("x")
    os.link(tmp_path / "a", tmp_path / "b")
    with pytest.raises(GruOnnxUsageError, match="would be destroyed"):
        refuse_aliases([("output", tmp_path / "b")], [("input", tmp_path / "a")])
    refuse_aliases([("output", tmp_path / "c")], [("input", tmp_path / "a")])  # a new file is fine


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
def test_a_failing_export_never_replaces_a_good_file(tmp_path, run_cli, external):
    """Exact tolerances make the check fail: the good file stays, the new one is NAME.failed.onnx."""
    flags = ["--external-data"] if external else []
    good = run_cli("export", "--activation", "relu", "-o", "m.onnx", *flags)
    assert good.exit_code == 0
    before = {p.name: _digest(p) for p in tmp_path.iterdir() if p.name.startswith("m.onnx")}
    failed = run_cli("export", "--activation", "relu", "--seed", "1", "--atol", "0", "--rtol", "0", "-o", "m.onnx",
                     *flags)  # fmt: skip
    assert failed.exit_code == 1
    assert "the file was written as m.failed.onnx for inspection, m.onnx left as it was" in failed.output
    after = {p.name: _digest(p) for p in tmp_path.iterdir() if p.name.startswith("m.onnx")}
    assert after == before
    assert (tmp_path / "m.failed.onnx").is_file()
    if external:  # the set-aside file names its own data file, beside it
        assert [p.name for p in tmp_path.glob("m.failed.onnx.*.data")]
        assert gru_onnx.describe(tmp_path / "m.failed.onnx").data_files[0].problem is None
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]


def test_a_failing_export_without_a_previous_file_writes_only_the_failed_one(tmp_path, run_cli):
    result = run_cli("export", "--activation", "relu", "--atol", "0", "--rtol", "0", "-o", "new.onnx")
    assert result.exit_code == 1 and "new.onnx not written" in result.output
    assert not (tmp_path / "new.onnx").exists() and (tmp_path / "new.failed.onnx").is_file()


# ---------------------------------------------------------------- item 4: atomic, links replaced


@pytest.mark.parametrize("flag", ["--report", "--plot"])
def test_a_symlink_at_a_report_path_is_replaced_not_followed(exported, run_cli, tmp_path, flag):
    path, _ = exported
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out").symlink_to(victim)
    result = run_cli("check", str(path), flag, str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "out").is_symlink() and (tmp_path / "out").stat().st_size > 100


def test_atomic_write_leaves_no_temporary_and_usual_permissions(tmp_path):
    atomic_write(tmp_path / "x.json", "{}")
    assert (tmp_path / "x.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------- item 8: leftovers of kill -9


def test_a_later_export_removes_what_a_killed_one_left(tmp_path, run_cli):
    dead = _dead_pid()
    stale_model = tmp_path / f".m.onnx.{TEMP_MARK}.{dead}.0bad.onnx"
    stale_model.write_bytes(b"x" * 1024)
    orphan = tmp_path / "m.onnx.0123456789abcdef.data"  # renamed into place, then the writer died
    orphan.write_bytes(b"y" * 1024)
    result = run_cli("export", "--activation", "relu", "-o", "m.onnx")
    assert result.exit_code == 0
    assert not stale_model.exists() and not orphan.exists()


def test_a_live_writers_temporaries_are_kept(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as live:
        try:
            theirs = tmp_path / f".m.onnx.{TEMP_MARK}.{live.pid}.0abc.onnx"
            theirs.write_bytes(b"in progress")
            ours_dead = tmp_path / f".m.onnx.{TEMP_MARK}.{_dead_pid()}.0def.onnx"
            ours_dead.write_bytes(b"left")
            removed = remove_stale_temps(tmp_path / "m.onnx")
            assert removed == [ours_dead] and theirs.exists()
            orphan = tmp_path / "m.onnx.0123456789abcdef.data"
            orphan.write_bytes(b"maybe theirs")
            gru_onnx.export(CustomGRU(4, 6), (torch.randn(5, 2, 4),), tmp_path / "m.onnx", check=None)
            assert orphan.exists()  # a live writer of m.onnx may be about to name it
        finally:
            live.kill()


def test_a_package_removes_a_killed_packages_staging_folder(exported, tmp_path, run_cli):
    path, _ = exported
    repo = tmp_path / "repo"
    stale = repo / f".m.{TEMP_MARK}.{_dead_pid()}.0abc"
    (stale / "1").mkdir(parents=True)
    (stale / "1" / "model.onnx").write_bytes(b"x" * 4096)
    result = run_cli("package", str(path), "--triton", str(repo), "--max-batch-size", "0")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in repo.iterdir()) == ["m"]


def test_quantize_output_is_atomic_and_checked(exported, tmp_path):
    path, _ = exported
    result = gru_onnx.quantize(path, tmp_path / "q.onnx", QuantizeOptions(mode="weights"))
    assert result.path.is_file() and not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]
