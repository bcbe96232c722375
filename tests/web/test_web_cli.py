"""The JavaScript runtimes from the command line: check and export on ``--provider node|web``
(streaming files chunk by chunk), bench timed inside the runtime beside its own fused op, and
``setup web``; they never join ``--provider all``."""

from __future__ import annotations

import json
import os
import subprocess

import onnx
import pytest
import torch
from webtools import export_file, lone_gru

from gru_onnx import CustomGRU, registry
from gru_onnx.web.setup import chromium_problem, node_problem, package_problem, playwright_problem

import flat


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "stream.onnx"
    return export_file(lone_gru(), (torch.randn(2, 4, 5),), path, strategy="loop", streaming=True)


def test_check_runs_a_streaming_file_chunk_by_chunk_in_node_and_the_browser(stream_file, node_ready, web_ready,
                                                                            run_cli):  # fmt: skip
    result = run_cli("check", str(stream_file), "--provider", "node", "--provider", "web", "--chunks", "1,3")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-node" in result.output and "onnxruntime-web" in result.output
    assert "WebAssembly backend, Chromium" in result.output  # the runner says where it ran


def test_check_and_bench_in_the_browser_take_a_file_name_with_hash_and_percent(web_ready, tmp_path, run_cli):
    path = export_file(lone_gru(), (torch.randn(2, 4, 5),), tmp_path / "p#x%41.onnx", strategy="loop",
                       dynamic_seq=True, external_data=True)  # fmt: skip
    result = run_cli("check", str(path), "--provider", "web")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-web" in result.output
    result = run_cli("bench", str(path), "--provider", "web", "--runs", "3", "--warmup", "1", "--seq-len", "4")
    assert result.exit_code == 0, result.output


def test_export_checks_on_node(node_ready, run_cli):
    result = run_cli("export", "--activation", "gelu", "--provider", "node", "-o", "g.onnx")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-node" in result.output


def test_all_means_the_in_process_runtimes():
    assert not {"node", "web", "webgpu"} & set(registry.expand_providers(("all",)))
    assert registry.expand_providers(("all", "node")) == (*registry.expand_providers(("all",)), "node")


def test_bench_times_inside_node_beside_nodes_own_fused_op(stream_file, node_ready, tmp_path, run_cli):
    plain = export_file(lone_gru(), (torch.randn(2, 6, 5),), tmp_path / "p.onnx", strategy="unrolled")
    result = run_cli("bench", str(plain), "--provider", "node", "--runs", "5", "--warmup", "1", "--json", "b.json")
    assert result.exit_code == 0, result.output
    rows = {(t["kind"], t["runtime"]): t for t in json.loads((tmp_path / "b.json").read_text())["timings"]}
    file, node_op = rows["file", "onnxruntime-node"], rows["fused-op", "onnxruntime-node"]
    assert file["note"] == "timed inside the runtime" and node_op["ratio"] == 1.0
    assert ("fused-op", "onnxruntime-cpu") in rows  # the in-process baseline stays beside it
    # The file's ratio is to Node's own fused op, round by round: near the ratio of the medians.
    assert file["ratio"] == pytest.approx(file["median_ms"] / node_op["median_ms"], rel=0.5)


def test_setup_web_reports_the_runtimes(node_ready, web_ready, run_cli):
    result = run_cli("setup", "web")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-web 1.30.0" in result.output and "onnxruntime-node 1.30.0" in result.output
    assert "already there" in result.output and "missing" not in result.output


def test_a_target_web_file_is_native_and_exact_in_the_browser_and_node(node_ready, web_ready, tmp_path):
    # benchmarks/web.py measured the native op exact there for every activation it takes: the
    # export's own check on both runtimes holds a hard-sigmoid-gated elu GRU to 1e-5.
    gru = CustomGRU(5, 6, num_layers=2, batch_first=True, activation="elu", recurrent_activation="hard_sigmoid")
    result = flat.export(gru, (torch.randn(2, 7, 5),), tmp_path / "w.onnx", target="web", providers=("web", "node"))
    assert result.strategy == "native" and result.metadata["target"] == "web"
    assert result.passed, result.parity.summary()
    assert {r.runtime for r in result.parity.results} >= {"onnxruntime-web-wasm", "onnxruntime-node"}


@pytest.mark.parametrize("provider", ["node", "web"])
def test_bench_on_a_runtime_that_rejects_the_file_is_one_line(provider, stream_file, tmp_path, run_cli):
    """Guards: a file the JavaScript runtime refuses to load (an input of type STRING, refused by
    the file checks now; an op of an unknown domain here) exited 3."""
    problem = (node_problem() if provider == "node"
               else chromium_problem() or playwright_problem() or package_problem("onnxruntime-web"))  # fmt: skip
    if problem:
        pytest.skip(problem)
    model = onnx.load(str(stream_file))
    model.graph.node[0].domain = "x.unknown"
    model.opset_import.append(onnx.helper.make_opsetid("x.unknown", 1))
    onnx.save(model, str(tmp_path / "str.onnx"))
    result = run_cli("bench", str(tmp_path / "str.onnx"), "--provider", provider, "--runs", "2", "--warmup", "0")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert f"onnxruntime-{provider}" in result.output and "could not load" in result.output, result.output


def test_bench_with_a_chromium_that_does_not_start_is_one_line(stream_file, ort_web_ready, tmp_path, monkeypatch):
    """Guards: GRU_ONNX_CHROMIUM=/bin/false exited 3 (RuntimeUnavailable: did not start)."""
    if problem := playwright_problem():
        pytest.skip(problem)
    env = {**os.environ, "GRU_ONNX_CHROMIUM": "/bin/false"}
    proc = subprocess.run(["gru-onnx", "bench", str(stream_file), "--provider", "web", "--runs", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "web" in proc.stderr, proc.stderr
