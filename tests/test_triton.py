"""Triton model repository entries (``gru_onnx.triton``): configs parsed back with Triton's own
schema and held against the file; batching, states, replacing entries, external data."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU

from flat import export
from helpers import TOKENS, external_tensors, graph_export, run_ort, triton_config

pytest.importorskip("tritonclient.grpc", reason="needs the [triton] extra (tritonclient's model config schema)")
from tritonclient.grpc import model_config_pb2 as pb


def test_batch_first_model_gets_dynamic_batching_and_dims_without_the_batch(run_cli, tmp_path, tagger_file):
    result = run_cli("package", str(tagger_file), "--triton", "repo")
    assert result.exit_code == 0, result.output
    config = triton_config(tmp_path / "repo", "tagger")
    assert config.name == "tagger" and config.backend == "onnxruntime"
    assert config.max_batch_size == 8
    assert config.HasField("dynamic_batching") and not config.HasField("sequence_batching")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [("feats", pb.TYPE_FP32, [-1, 4])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("tags", [-1, 3]), ("pooled", [6])]
    assert (tmp_path / "repo" / "tagger" / "1" / "model.onnx").read_bytes() == tagger_file.read_bytes()
    (group,) = config.instance_group
    assert group.kind == pb.ModelInstanceGroup.KIND_CPU and group.count == 1


def test_lone_gru_state_is_not_batch_first_so_no_batching(run_cli, tmp_path):
    path = tmp_path / "gru.onnx"
    graph_export(CustomGRU(4, 6, batch_first=True), (torch.randn(2, 5, 4),), path, check=False)
    result = run_cli("package", str(path), "--triton", "repo")
    assert result.exit_code == 0, result.output
    assert "h_n not batch-first" in result.output
    config = triton_config(tmp_path / "repo", "gru")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    file_dims = {
        v.name: [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        for v in [*onnx.load(path).graph.input, *onnx.load(path).graph.output]
    }
    assert {t.name: list(t.dims) for t in [*config.input, *config.output]} == file_dims
    refused = run_cli("package", str(path), "--triton", "repo2", "--max-batch-size", "4")
    assert refused.exit_code == 2 and "cannot batch it" in refused.output
    assert not (tmp_path / "repo2" / "gru").exists()


@pytest.mark.parametrize("names", [None, ("frames", "init")])
def test_h0_input_is_packaged_stateless_and_says_so(run_cli, tmp_path, names):
    """The note came only for an input literally named h0 or hx; a lone GRU's h0 is found by place."""
    path = tmp_path / "gru.onnx"
    gru_onnx.export(CustomGRU(4, 6), (torch.randn(5, 2, 4), torch.zeros(1, 2, 6)), path, check=None,
                    shapes=gru_onnx.ShapeOptions(input_names=names))  # fmt: skip
    result = run_cli("package", str(path), "--triton", "repo")
    assert result.exit_code == 0, result.output
    assert "packaged stateless" in result.output and "--streaming" in result.output
    assert f"ordinary input ({names[1] if names else 'h0'})" in result.output
    assert not triton_config(tmp_path / "repo", "gru").HasField("sequence_batching")


def test_existing_entry_is_refused_unless_forced(run_cli, tmp_path, tagger_file):
    assert run_cli("package", str(tagger_file), "--triton", "repo").exit_code == 0
    marker = tmp_path / "repo" / "tagger" / "1" / "model.onnx"
    marker.write_bytes(b"old")
    refused = run_cli("package", str(tagger_file), "--triton", "repo")
    assert refused.exit_code == 2 and "--force" in refused.output
    assert marker.read_bytes() == b"old"
    assert run_cli("package", str(tagger_file), "--triton", "repo", "--force").exit_code == 0
    assert marker.read_bytes() == tagger_file.read_bytes()
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["tagger"]  # no staging left


def test_a_failure_while_writing_leaves_the_old_entry_and_no_staging(tmp_path, tagger_file, monkeypatch):
    from flat import package_triton

    package_triton(tagger_file, tmp_path / "repo")
    before = (tmp_path / "repo" / "tagger" / "config.pbtxt").read_text()

    def broken_copy(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", broken_copy)
    with pytest.raises(OSError):
        package_triton(tagger_file, tmp_path / "repo", name="tagger", force=True)
    assert (tmp_path / "repo" / "tagger" / "config.pbtxt").read_text() == before
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["tagger"]


def test_packaged_model_runs_as_configured(tmp_path, tagger_file):
    """What the config says about shapes holds for the copied file on ONNX Runtime."""
    import onnxruntime as ort

    from flat import package_triton

    package_triton(tagger_file, tmp_path / "repo")
    config = triton_config(tmp_path / "repo", "tagger")
    session = ort.InferenceSession(str(tmp_path / "repo" / "tagger" / "1" / "model.onnx"))
    batch = config.max_batch_size
    feats = np.zeros((batch, 9, 4), np.float32)
    outputs = session.run(None, {"feats": feats})
    for spec, value in zip(config.output, outputs, strict=True):
        assert value.shape[0] == batch
        assert all(d == -1 or d == s for d, s in zip(spec.dims, value.shape[1:], strict=True))


class ThreeGRUs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.vad = CustomGRU(6, 4, batch_first=True, activation="relu", reset_after=False)
        self.noise = CustomGRU(10, 5, batch_first=True, activation="relu", reset_after=False)
        self.denoise = CustomGRU(15, 6, num_layers=2, batch_first=True, activation="relu", reset_after=False)
        self.gain = nn.Linear(6, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        v, _ = self.vad(features)
        n, _ = self.noise(torch.cat([v, features], dim=-1))
        d, _ = self.denoise(torch.cat([v, n, features], dim=-1))
        return torch.sigmoid(self.gain(d))


def test_streaming_model_gets_one_implicit_state_per_pair(run_cli, tmp_path):
    from gru_onnx import read_metadata

    path = tmp_path / "denoiser.onnx"
    export(ThreeGRUs(), (torch.randn(2, 5, 6),), path, streaming=True, check=False)
    result = run_cli("package", str(path), "--triton", "repo")
    assert result.exit_code == 0, result.output
    config = triton_config(tmp_path / "repo", "denoiser")
    assert config.max_batch_size == 8 and config.HasField("sequence_batching")
    assert not config.HasField("dynamic_batching")
    pairs = read_metadata(path)["streaming"]["states"]
    states = list(config.sequence_batching.state)
    assert [(s.input_name, s.output_name) for s in states] == [(p["input"], p["output"]) for p in pairs]
    assert [list(s.dims) for s in states] == [p["shape"][1:] for p in pairs] == [[1, 4], [1, 5], [2, 6]]
    assert all(s.initial_state[0].zero_data and list(s.initial_state[0].dims) == list(s.dims) for s in states)
    listed = {t.name for t in [*config.input, *config.output]}
    assert listed == {"features", "output"}  # state tensors stay inside Triton


def test_lone_streaming_gru_leaves_out_h_n_and_batches(run_cli, tmp_path):
    path = tmp_path / "gru.onnx"
    graph_export(CustomGRU(4, 6, batch_first=True), (torch.randn(2, 5, 4),), path, streaming=True, check=False)
    result = run_cli("package", str(path), "--triton", "repo")
    assert result.exit_code == 0, result.output
    assert "h_n left out of the config" in result.output
    config = triton_config(tmp_path / "repo", "gru")
    assert config.max_batch_size == 8
    assert [o.name for o in config.output] == ["output"]
    assert [(s.input_name, s.output_name, list(s.dims)) for s in config.sequence_batching.state] == [
        ("state_in", "state_out", [1, 6])
    ]


def test_package_copies_the_data_file_into_the_version_folder(run_cli, tmp_path, pair, tagger):
    pytest.importorskip("tritonclient.grpc", reason="needs the [triton] extra")
    result = run_cli("package", str(pair), "--triton", "repo")
    assert result.exit_code == 0, result.output
    version = tmp_path / "repo" / "tagger" / "1"
    (data,) = external_tensors(pair)[:1]
    location = onnx.external_data_helper.ExternalDataInfo(data).location
    assert sorted(p.name for p in version.iterdir()) == sorted(["model.onnx", location])
    assert (version / location).read_bytes() == (pair.parent / location).read_bytes()
    with torch.no_grad():
        expected = tagger(TOKENS).numpy()
    np.testing.assert_allclose(run_ort(version / "model.onnx", {"tokens": TOKENS.numpy()})[0], expected, atol=1e-5)
