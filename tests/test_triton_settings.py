"""gru_onnx.triton: the sequence-batcher settings a production stream needs and the ONNX Runtime
backend's accelerators (issue 20), one test per option; every config parses with Triton's schema.
(No Triton server runs here: the settings are validated by the schema only.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, GraphOptions, ShapeOptions, StreamingOptions

pb = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="needs tritonclient (gru-onnx[triton])")
from google.protobuf import text_format  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("triton")
    torch.manual_seed(0)
    gru = CustomGRU(4, 6, batch_first=True, activation="relu")
    x = torch.randn(2, 5, 4)
    names = ("stream", "loop", "unrolled_static", "plain", "linear", "batched")
    paths = {name: folder / f"{name}.onnx" for name in names}

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = CustomGRU(4, 6, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gru(x)[0]

    gru_onnx.export(Tagger(), (x,), paths["batched"], check=None)
    gru_onnx.export(gru, (x,), paths["stream"], streaming=StreamingOptions(enabled=True), check=None)
    gru_onnx.export(gru, (x,), paths["loop"], graph=GraphOptions(strategy="loop"), check=None)
    gru_onnx.export(gru, (x,), paths["unrolled_static"], graph=GraphOptions(strategy="unrolled"),
                    shapes=ShapeOptions(dynamic_batch=False), check=None)  # fmt: skip
    gru_onnx.export(gru, (x,), paths["plain"], graph=GraphOptions(strategy="unrolled"), check=None)
    gru_onnx.export(CustomGRU(4, 6, batch_first=True, activation="linear"), (x,), paths["linear"],
                    graph=GraphOptions(strategy="native"), check=None)  # fmt: skip
    return paths


def _config(repo: Path, name: str) -> object:
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), pb.ModelConfig())


def test_a_streaming_file_keeps_silent_streams_a_minute_by_default(files, tmp_path, run_cli):
    """Triton's default (1 s) frees the state of a stream that pauses for a second."""
    result = run_cli("package", str(files["stream"]), "--triton", str(tmp_path / "repo"))
    assert result.exit_code == 0, result.output
    batching = _config(tmp_path / "repo", "stream").sequence_batching
    assert batching.max_sequence_idle_microseconds == 60_000_000
    assert batching.WhichOneof("strategy_choice") == "direct"


def test_the_idle_time_and_the_oldest_strategy(files, tmp_path, run_cli):
    result = run_cli(
        "package", str(files["stream"]), "--triton", str(tmp_path / "repo"), "--max-sequence-idle-us", "5000000",
        "--sequence-strategy", "oldest", "--max-candidate-sequences", "16", "--preferred-batch-size", "4",
        "--preferred-batch-size", "8", "--max-queue-delay-us", "200",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    batching = _config(tmp_path / "repo", "stream").sequence_batching
    assert batching.max_sequence_idle_microseconds == 5_000_000
    assert batching.WhichOneof("strategy_choice") == "oldest"
    assert batching.oldest.max_candidate_sequences == 16 and list(batching.oldest.preferred_batch_size) == [4, 8]
    assert batching.oldest.max_queue_delay_microseconds == 200


def test_the_direct_strategy_takes_a_queue_delay(files, tmp_path, run_cli):
    result = run_cli("package", str(files["stream"]), "--triton", str(tmp_path / "repo"), "--max-queue-delay-us", "50")
    assert result.exit_code == 0
    assert _config(tmp_path / "repo", "stream").sequence_batching.direct.max_queue_delay_microseconds == 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-candidate-sequences", "4"], "belong to the oldest sequence strategy"),
        (["--preferred-batch-size", "4"], "belong to the oldest sequence strategy"),
    ],
)
def test_oldest_settings_need_the_oldest_strategy(files, tmp_path, run_cli, args, message):
    result = run_cli("package", str(files["stream"]), "--triton", str(tmp_path / "repo"), *args)
    assert result.exit_code == 2 and message in result.output


def test_sequence_settings_for_a_file_without_states_are_refused(files, tmp_path, run_cli):
    result = run_cli("package", str(files["plain"]), "--triton", str(tmp_path / "repo"), "--sequence-strategy",
                     "oldest")  # fmt: skip
    assert result.exit_code == 2 and "sequence-batcher setting" in result.output
    unbatched = run_cli("package", str(files["plain"]), "--triton", str(tmp_path / "r1"), "--max-queue-delay-us", "9")
    assert unbatched.exit_code == 2 and "packaged without (max_batch_size 0)" in unbatched.output
    delayed = run_cli("package", str(files["batched"]), "--triton", str(tmp_path / "r2"), "--max-queue-delay-us", "100")
    assert delayed.exit_code == 0, delayed.output
    assert _config(tmp_path / "r2", "batched").dynamic_batching.max_queue_delay_microseconds == 100


def test_cuda_graphs_for_a_static_file_without_control_flow(files, tmp_path, run_cli):
    result = run_cli("package", str(files["unrolled_static"]), "--triton", str(tmp_path / "repo"), "--device", "gpu",
                     "--cuda-graph", "--max-batch-size", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    accelerators = _config(tmp_path / "repo", "unrolled_static").optimization.execution_accelerators
    (accelerator,) = accelerators.gpu_execution_accelerator
    assert accelerator.name == "cuda" and accelerator.parameters["enable_cuda_graph"] == "1"
    assert "Triton 24.06 or newer" in result.output  # older onnxruntime backends refuse the "cuda" accelerator


@pytest.mark.parametrize(
    ("file", "args", "message"),
    [
        ("loop", ["--device", "gpu", "--max-batch-size", "0"], "it has control flow (Scan)"),
        ("plain", ["--device", "gpu"], "static shapes"),
        ("unrolled_static", ["--max-batch-size", "0"], "add --device gpu"),
    ],
    ids=["control-flow", "dynamic", "cpu"],
)
def test_cuda_graphs_are_refused_where_they_cannot_capture(files, tmp_path, run_cli, file, args, message):
    result = run_cli("package", str(files[file]), "--triton", str(tmp_path / "repo"), "--cuda-graph", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_the_tensorrt_accelerator_where_tensorrt_runs_the_file(files, tmp_path, run_cli):
    result = run_cli("package", str(files["loop"]), "--triton", str(tmp_path / "repo"), "--device", "gpu",
                     "--tensorrt", "FP16")  # fmt: skip
    assert result.exit_code == 0, result.output
    (accelerator,) = _config(tmp_path / "repo", "loop").optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    assert "half precision" in result.output
    refused = run_cli("package", str(files["linear"]), "--triton", str(tmp_path / "r2"), "--device", "gpu",
                      "--tensorrt", "FP32")  # fmt: skip
    assert refused.exit_code == 2 and "TensorRT does not run this file as intended" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-batch-size", "2147483648"], "beyond what Triton's config holds"),
        (["--instances", "100000000000"], "beyond what Triton's config holds"),
        (["--max-sequence-idle-us", "99999999999999999999999"], "beyond what Triton's config holds"),
        (["--sequence-strategy", "oldest", "--preferred-batch-size", "16"], "larger than max_batch_size 8"),
    ],
    ids=["max-batch-int32", "instances-int32", "idle-uint64", "preferred-above-max"],
)
def test_values_triton_would_refuse_are_refused_here(files, tmp_path, run_cli, args, message):
    """Guards: numbers beyond the config's protobuf integers exited 3, and a preferred batch size
    above max_batch_size wrote a config Triton refuses at load (attack review)."""
    result = run_cli("package", str(files["stream"]), "--triton", str(tmp_path / "repo"), *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "repo" / "stream").exists()


def test_a_sequence_setting_typed_at_its_default_is_still_refused_without_states(files, tmp_path, run_cli):
    result = run_cli("package", str(files["plain"]), "--triton", str(tmp_path / "repo"), "--sequence-strategy",
                     "direct")  # fmt: skip
    assert result.exit_code == 2 and "sequence_strategy is a sequence-batcher setting" in result.output


@pytest.mark.parametrize("kind", ["user folder", "plain file", "symlink"])
def test_force_replaces_a_triton_entry_only(files, tmp_path, run_cli, kind):
    """Guards: --force deleted any REPO/NAME, a folder of somebody's files included (attack review)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    target = repo / "mine"
    if kind == "user folder":
        target.mkdir()
        (target / "thesis.tex").write_text("keep")
    elif kind == "plain file":
        target.write_text("keep")
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    result = run_cli("package", str(files["plain"]), "--triton", str(repo), "--name", "mine", "--force")
    assert result.exit_code == 2 and "not a Triton model entry" in result.output, result.output
    assert sorted(p.name for p in repo.iterdir()) == ["mine"]  # nothing renamed aside, nothing added
    if kind == "user folder":
        assert (target / "thesis.tex").read_text() == "keep"
    elif kind == "plain file":
        assert target.read_text() == "keep"
    first = run_cli("package", str(files["plain"]), "--triton", str(repo), "--name", "entry")
    again = run_cli("package", str(files["plain"]), "--triton", str(repo), "--name", "entry", "--force")
    assert first.exit_code == again.exit_code == 0, again.output


def test_external_data_named_like_the_model_is_refused(files, tmp_path, run_cli):
    """Guards: data saved as model.onnx landed on 1/model.onnx, over the model (attack review)."""
    import onnx

    model = onnx.load(str(files["plain"]))
    folder = tmp_path / "src"
    folder.mkdir()
    onnx.save_model(model, str(folder / "m.onnx"), save_as_external_data=True, location="model.onnx",
                    size_threshold=0)  # fmt: skip
    result = run_cli("package", str(folder / "m.onnx"), "--triton", str(tmp_path / "repo"))
    assert result.exit_code == 2 and "named model.onnx" in result.output, result.output
    assert not (tmp_path / "repo" / "m").exists()
