"""``gru-onnx package --triton``: its flags, and bad input one line with exit 2, nothing written."""

from __future__ import annotations

import pytest

from helpers import triton_config

pytest.importorskip("tritonclient.grpc", reason="needs the [triton] extra (tritonclient's model config schema)")
from tritonclient.grpc import model_config_pb2 as pb


def test_options_name_instances_device_and_batch_size(run_cli, tmp_path, tagger_file):
    result = run_cli(
        "package", str(tagger_file), "--triton", "repo", "--name", "tagger-v2", "--instances", "3",
        "--device", "gpu", "--max-batch-size", "64",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = triton_config(tmp_path / "repo", "tagger-v2")
    (group,) = config.instance_group
    assert (group.kind, group.count, config.max_batch_size) == (pb.ModelInstanceGroup.KIND_GPU, 3, 64)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda p: p.write_text("not onnx"), ["bad.onnx", "--triton", "repo"], "is not a readable ONNX file"),
        (lambda p: None, ["missing.onnx", "--triton", "repo"], "no such file"),
        (None, ["tagger", "--triton", "repo", "--name", "../escape"], "not a valid Triton model name"),
        (None, ["tagger", "--triton", "repo", "--name", ".hidden"], "not a valid Triton model name"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run_cli, tmp_path, tagger_file, setup, args, message):
    if setup is not None:
        setup(tmp_path / args[0])
    else:
        args = [str(tagger_file), *args[1:]]
    result = run_cli("package", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())
