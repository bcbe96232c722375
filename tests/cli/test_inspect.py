"""``gru-onnx inspect``: what a file is, and one line for what is not a readable file."""

from __future__ import annotations

import pytest


def test_inspect(run_cli, tmp_path):
    assert run_cli("export", "--strategy", "native", "--activation", "relu", "--lengths").exit_code == 0
    result = run_cli("inspect", "gru.onnx")
    assert result.exit_code == 0, result.output
    for text in ("native", "1-layer GRU(16->32, relu/sigmoid", "[20, batch, 16]", "lengths", "int64",
                 "GRU 1", "onnxruntime-cuda", "fallback", "RNNNeedFallbackToCPU", "ai.onnx 18"):  # fmt: skip
        assert text in result.output, text


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file: missing.onnx"), (b"not onnx at all", "is not a readable ONNX file"), ("truncate", "is not")],
)
def test_inspect_bad_files_exit_2(run_cli, tmp_path, content, message):
    name = "missing.onnx"
    if content == "truncate":
        assert run_cli("export", "--no-check").exit_code == 0
        (tmp_path / "cut.onnx").write_bytes((tmp_path / "gru.onnx").read_bytes()[:200])
        name = "cut.onnx"
    elif content is not None:
        (tmp_path / "junk.onnx").write_bytes(content)
        name = "junk.onnx"
    result = run_cli("inspect", name)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
