"""The command group (``gru_onnx.cli.app``) as the console script runs it: exit codes, one-line
errors on stderr, never a traceback."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU

from helpers import graph_export


@pytest.mark.skipif(shutil.which("gru-onnx") is None, reason="console script not installed")
def test_console_script_readme_command(tmp_path):
    proc = subprocess.run(["gru-onnx", "export", "--activation", "relu"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "gru.onnx").exists()
    bad = subprocess.run(["gru-onnx", "export", "--activation", "nope"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("Error: unknown activation") and "Traceback" not in bad.stderr


@pytest.mark.skipif(shutil.which("gru-onnx") is None, reason="console script not installed")
def test_console_usage_errors_are_one_line(tmp_path):
    proc = subprocess.run(["gru-onnx", "export", "--hidden-size", "-3"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "Error: Invalid value for '--hidden-size': -3 is not in the range x>=1. (see 'gru-onnx export --help')"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "s.onnx", "--streaming", "--chunks", "1,x"], "not a comma-separated list"),
        (["check", "s.onnx", "--streaming", "--chunks", "3"], "chunks of exactly 2 steps"),
        (["export", "--streaming", "--chunk", "0"], "--chunk"),
        (["export", "--streaming", "--bidirectional", "-o", "b.onnx"], "bidirectional and cannot stream"),
        (["export", "--chunk", "2", "-o", "b.onnx"], "--streaming"),
        (["export", "--import", "x", "-o", "b.onnx"], "needs --keras"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args, message, tmp_path, run_main):
    if args[0] == "check":
        graph_export(CustomGRU(3, 4), (torch.randn(4, 2, 3),), tmp_path / "s.onnx", strategy="unrolled",
                     streaming=True, chunk=2, check=False)  # fmt: skip
    proc = run_main(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b.onnx").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["export", "-o", ""],
        ["quantize", "m.onnx", "-o", ""],
        ["package", "m.onnx", "--triton", ""],
        ["package", "m.onnx", "--web", ""],
        ["check", "m.onnx", "--report", ""],
        ["bench", ""],
        ["inspect", ""],
        ["setup", "web", "--cache", ""],
    ],
    ids=lambda a: " ".join(a[:1] + [x for x in a[1:] if x.startswith("-")]),
)
def test_an_empty_path_is_refused_not_read_as_the_working_folder(args, run_cli, tmp_path):
    """``-o "$OUT"`` with OUT unset: ``export -o ""`` exited 3 and ``package --triton ""`` wrote its
    entry into the working folder (``Path("")`` is ``.``)."""
    graph_export(CustomGRU(3, 4), (torch.randn(4, 2, 3),), tmp_path / "m.onnx", strategy="unrolled", check=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(*args)
    assert result.exit_code == 2 and "the path is empty" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_api_refuses_an_empty_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph_export(CustomGRU(3, 4), (torch.randn(4, 2, 3),), tmp_path / "m.onnx", strategy="unrolled", check=False)
    with pytest.raises(gru_onnx.GruOnnxUsageError, match="empty path"):
        gru_onnx.package_triton(tmp_path / "m.onnx", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
