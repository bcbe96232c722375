"""The description every file carries (``gru_onnx.metadata``): read without the external data,
and what a file without it gets."""

from __future__ import annotations

import onnx
import pytest

import gru_onnx
from gru_onnx import GruOnnxUsageError, read_metadata


def test_read_metadata_and_inspect_work_without_the_data_file(run_cli, pair, no_reads):
    data = next(pair.parent.glob("*.data"))
    data.unlink()
    assert gru_onnx.read_metadata(pair)["stacks"][0]["path"] == "rnn"
    shown = run_cli("inspect", str(pair))
    assert shown.exit_code == 0, shown.output
    assert f"{data.name} (MISSING" in shown.output


def test_a_file_without_metadata_is_named_as_such(exported, tmp_path):
    from gru_onnx.metadata import find_metadata

    _, _, path = exported
    model = onnx.load(path)
    assert find_metadata(model)["stacks"][0]["path"] == "" and read_metadata(path) == find_metadata(model)
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "plain.onnx")
    assert find_metadata(onnx.load(tmp_path / "plain.onnx")) is None
    with pytest.raises(GruOnnxUsageError, match="no gru-onnx metadata"):
        read_metadata(tmp_path / "plain.onnx")
