"""Bench baselines (``gru_onnx.bench``): the fused-op file holds the file's own weights where
the activations have a native form, a labelled sigmoid/tanh yardstick where they do not."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.bench import _pytorch_call, bench, fused_op_files, interleaved
from gru_onnx.metadata import state_inputs
from gru_onnx.samples import timing_feeds

from helpers import graph_export, numpy_reference, run_ort


def test_the_fused_op_baseline_holds_the_files_weights(loop_file, tmp_path):
    gru, path = loop_file
    model = onnx.load(path)
    ((_, kind, fused, _),) = fused_op_files(model, gru_onnx.read_metadata(model), 2, 6, tmp_path)
    assert kind == "fused-op"
    assert [n.op_type for n in onnx.load(fused).graph.node].count("GRU") == 1
    x = torch.randn(6, 2, 3)
    y, _ = run_ort(fused, {"input": x.numpy()})
    np.testing.assert_allclose(y, numpy_reference(gru, x)[0], rtol=1e-4, atol=1e-5)


def test_activations_without_a_native_form_get_a_labelled_yardstick(tmp_path, run_cli):
    gru = CustomGRU(3, 4, activation="gelu")
    graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "g.onnx", strategy="unrolled", check=False)
    result = run_cli("bench", "g.onnx", "--runs", "2", "--warmup", "0", "--json", "g.json")
    assert result.exit_code == 0, result.output
    timings = json.loads((tmp_path / "g.json").read_text())["timings"]
    assert timings[1]["kind"] == "yardstick" and "sigmoid/tanh" in timings[1]["name"]
    assert json.loads((tmp_path / "g.json").read_text())["seq_len"] == 5  # the file's static length


def test_cuda_graphs_refuse_control_flow_before_any_runtime_opens(loop_file):
    # ONNX Runtime runs Scan/Loop/If from the CPU, so a capture would fail on the GPU: refused
    # from the file's content, here on a machine without CUDA as on one with it.
    _, path = loop_file
    with pytest.raises(gru_onnx.GruOnnxUsageError, match=r"control flow \((Loop|Scan)\).*unrolled"):
        bench(path, gru_onnx.BenchOptions(providers=("cuda",), cuda_graph=True))


def test_cuda_graph_timing_on_the_cuda_provider(tmp_path):
    from gru_onnx.runners import unavailable_reason

    if reason := unavailable_reason("cuda"):
        pytest.skip(reason)
    path = tmp_path / "u.onnx"
    graph_export(CustomGRU(3, 4, activation="relu"), (torch.randn(5, 2, 3),), path, strategy="unrolled", check=False)
    report = bench(path, gru_onnx.BenchOptions(providers=("cuda",), cuda_graph=True, runs=5, warmup=2))
    file = report.timings[0]
    assert file.note == "CUDA graph" and file.median_ms > 0


def test_runtimes_that_time_themselves_report_their_own_seconds():
    # A runtime in another process (Node.js, a browser page) returns the seconds it measured
    # around its own run; the round trip around it is not counted. The others are timed here.
    calls = {"inside": 0, "here": 0}

    def inside() -> float:
        calls["inside"] += 1
        return 0.25

    def here() -> None:
        calls["here"] += 1

    times = interleaved([inside, here], warmup=2, runs=5, inside=[True, False])
    assert times[0] == [0.25] * 5 and all(0 <= t < 0.25 for t in times[1])
    assert calls == {"inside": 7, "here": 7}


@pytest.mark.parametrize("names", [None, ("audio", "start", "valid")])
@pytest.mark.parametrize("streaming", [False, True])
def test_the_pytorch_baseline_computes_what_the_file_computes(tmp_path, names, streaming):
    """The rebuilt CustomGRU gets the file's feeds by role, not name (a factory's ``input_names``
    made ``bench`` exit with "unexpected keyword 'audio'"), and a streaming file's state as its
    ``hx`` ([batch, layers, hidden] -> [layers, batch, hidden]): same outputs as the file on ORT."""
    torch.manual_seed(0)
    gru = CustomGRU(4, 5, num_layers=2, activation="relu", batch_first=True)
    x = torch.randn(3, 6, 4)
    args = (x,) if streaming else (x, torch.randn(2, 3, 5), torch.tensor([6, 2, 1]))
    shapes = gru_onnx.ShapeOptions(input_names=names[: len(args)] if names else None)
    stream = gru_onnx.StreamingOptions(enabled=streaming)
    gru_onnx.export(gru, args, tmp_path / "f.onnx", shapes=shapes, streaming=stream, check=None)
    model = onnx.load(tmp_path / "f.onnx")
    metadata = gru_onnx.read_metadata(model)
    feeds, _ = timing_feeds(model, metadata, 3, 6)
    for state in state_inputs(metadata):
        feeds[state] = np.random.default_rng(1).standard_normal(feeds[state].shape).astype(np.float32)
    call, note = _pytorch_call(model, metadata, feeds, None)
    assert note == "CustomGRU rebuilt from the file"
    output, h_n = call()
    got = run_ort(tmp_path / "f.onnx", feeds)
    np.testing.assert_allclose(output.numpy(), got[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h_n.numpy(), got[1], rtol=1e-5, atol=1e-5)
