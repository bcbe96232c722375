"""gru_onnx.metadata: what a file claims is checked against what it is before anything is allocated
(trust review II, items 2 and 6); gru_onnx.files: only regular files are read."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU, GraphOptions, GruOnnxUsageError, StreamingOptions
from gru_onnx.protos import all_graphs

from helpers import graph_export


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("claims")
    torch.manual_seed(0)
    gru = CustomGRU(4, 6, num_layers=2, activation="relu")
    paths = {"plain": folder / "p.onnx", "stream": folder / "s.onnx", "loop": folder / "l.onnx"}
    gru_onnx.export(gru, (torch.randn(7, 2, 4),), paths["plain"], check=None)
    gru_onnx.export(CustomGRU(4, 6, batch_first=True), (torch.randn(2, 5, 4),), paths["stream"],
                    streaming=StreamingOptions(enabled=True), check=None)  # fmt: skip
    gru_onnx.export(gru, (torch.randn(7, 2, 4),), paths["loop"], graph=GraphOptions(strategy="loop"), check=None)
    torch.save(gru.state_dict(), folder / "ckpt.pt")
    paths["ckpt"] = folder / "ckpt.pt"
    paths["chunked"] = folder / "c.onnx"  # a fixed chunk: time axis 1 static at 3
    graph_export(CustomGRU(4, 6, batch_first=True), (torch.randn(2, 3, 4),), paths["chunked"], streaming=True,
                 chunk=3, check=False)  # fmt: skip
    return paths


def _forge(src: Path, dst: Path, change=None, text: str | None = None, graph=None) -> Path:
    """``src`` with its metadata changed in place by ``change(meta)``, or replaced by ``text``,
    and its graph by ``graph(model)``."""
    model = onnx.load(src)
    (prop,) = [p for p in model.metadata_props if p.key == "gru_onnx"]
    meta = json.loads(prop.value)
    if change is not None:
        change(meta)
    if graph is not None:
        graph(model)
    prop.value = text if text is not None else json.dumps(meta)
    onnx.save(model, dst)
    return dst


def _set(path: list, value):
    def change(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(["stacks", 0, "spec", "hidden_size"], 20000), "needs [60000, 4] for weight_ih_l0"),
        (_set(["stacks", 0, "spec", "num_layers"], 10**6), "has no direction '_l2'"),
        (_set(["stacks", 0, "spec", "input_size"], 9), "needs [18, 9] for weight_ih_l0"),
        (_set(["stacks", 0, "seq_len"], 10**9), "the sequence length is 1000000000"),
    ],
    ids=["hidden_size", "num_layers", "input_size", "seq_len"],
)
@pytest.mark.parametrize("command", ["check", "bench", "inspect"])
def test_forged_sizes_are_refused_before_allocation(files, tmp_path, run_cli, change, message, command):
    """A forged hidden_size took 5 GB and exited 3; num_layers 10**6 ran past 100 s."""
    path = _forge(files["plain"], tmp_path / "f.onnx", change)
    before, started = _peak_mib(), time.perf_counter()
    result = run_cli(command, str(path))
    assert result.exit_code == 2, result.output
    assert (message in result.output and "does not describe this file" in result.output) or "no direction" in message
    assert time.perf_counter() - started < 10 and _peak_mib() - before < 200


def test_forged_state_shape_is_refused(files, tmp_path):
    path = _forge(files["stream"], tmp_path / "s.onnx", _set(["streaming", "states", 0, "shape"], ["batch", 1, 9999]))
    with pytest.raises(GruOnnxUsageError, match="no GRU stack of the file has"):
        gru_onnx.StreamingSession(path)


def _dim(name: str, axis: int, size: int):
    """A graph change: axis ``axis`` of graph input ``name`` declared static at ``size``."""

    def change(model):
        (value,) = [i for i in model.graph.input if i.name == name]
        value.type.tensor_type.shape.dim[axis].dim_value = size

    return change


#: (file, metadata change, graph change, what the refusal says). Before, these exited 3 (KeyError
#: 'nosuch', IndexError), 1 ("parity failed" on a time axis put on the static feature axis, a
#: feature axis of 10**9), or tried to allocate 400 GB (package --web) and 64 TB (chunk 10**12).
LIES = {
    "state-input-unknown": ("stream", _set(["streaming", "states", 0, "input"], "nosuch"), None,
                            "state input 'nosuch' is no input of the file"),
    "state-output-unknown": ("stream", _set(["streaming", "states", 0, "output"], "nosuch_out"), None,
                             "state output 'nosuch_out' is no output of the file"),
    "state-input-is-the-plain-input": ("stream", _set(["streaming", "states", 0, "input"], "input"), None,
                                       "state input 'input' is also an input it gives a time axis"),
    "state-input-is-the-plain-input-no-axes": (
        "stream", lambda m: (m["streaming"]["states"][0].update(input="input"), m.pop("input_time_axes")), None,
        "the metadata says state input 'input' is [batch, 1, 6]; the file declares it [batch, seq, 4]"),
    "state-input-and-output-one-name": ("stream", _set(["streaming", "states", 0, "output"], "state_in"), None,
                                        "names 'state_in' for two states' inputs or outputs"),
    "state-batch-axis": ("stream", _set(["streaming", "states", 0, "shape"], ["streams", 1, 6]), None,
                         "state input 'state_in' is [streams, 1, 6]; the file declares it [batch, 1, 6]"),
    "state-declared-shape": ("stream", None, _dim("state_in", 2, 7),
                             "state input 'state_in' is [batch, 1, 6]; the file declares it [batch, 1, 7]"),
    "time-axis-unknown-input": ("stream", _set(["input_time_axes", "nosuch"], 1), None,
                                "gives a time axis to 'nosuch', which is no input of the file"),
    "time-axis-of-a-state": ("stream", _set(["input_time_axes", "state_in"], 1), None,
                             "state input 'state_in' is also an input it gives a time axis"),
    "time-axis-beyond-rank": ("stream", _set(["input_time_axes", "input"], 7), None,
                              "axis 7 of 'input' is time; it has 3 axes"),
    "time-axis-on-the-feature-axis": ("stream", _set(["input_time_axes", "input"], 2), None,
                                      "axis 2 of 'input' is time, with chunks of any length; that axis is fixed at 4"),
    "time-axis-on-the-batch-axis": ("stream", _set(["input_time_axes", "input"], 0), None,
                                    "axis 0 of 'input' is time; it is the states' batch axis"),
    "chunk-huge-on-a-dynamic-axis": ("stream", _set(["chunk"], 10**12), None,
                                     "chunks of 1000000000000 steps; time axis 1 of 'input' is dynamic"),
    "chunk-not-the-static-axis": ("chunked", _set(["chunk"], 5), None,
                                  "chunks of 5 steps; time axis 1 of 'input' is fixed at 3"),
    "chunk-null-on-a-static-axis": ("chunked", _set(["chunk"], None), None, "that axis is fixed at 3"),
    "chunk-in-a-plain-file": ("plain", _set(["chunk"], 4), None, "chunks of 4 steps to a file without streaming"),
    "feature-axis-huge-stream": ("stream", None, _dim("input", 2, 10**9),
                                 "the GRU takes 4 features; its input 'input' has 1000000000 on its last axis"),
    "feature-axis-huge-plain": ("plain", None, _dim("input", 2, 10**9),
                                "the GRU takes 4 features; its input 'input' has 1000000000 on its last axis"),
    "h0-claimed": ("plain", _set(["stacks", 0, "has_h0"], True), None, "the metadata says the GRU takes h0"),
    "output-time-axis-beyond-rank": ("plain", _set(["time_axes"], {"output": 7, "h_n": None}), None,
                                     "axis 7 of output 'output' is time; it has 3 axes"),
    "output-time-axis-beyond-rank-stream": ("stream", _set(["time_axes"], {"output": 5}), None,
                                            "axis 5 of output 'output' is time; it has 3 axes"),
    "output-time-axis-unknown-output": ("plain", _set(["time_axes"], {"nosuch": 0}), None,
                                        "a time axis to output 'nosuch', which the file does not have"),
}  # fmt: skip
COMMANDS = {
    "check": ["check", "{}"], "inspect": ["inspect", "{}"], "bench": ["bench", "{}", "--runs", "1"],
    "package-web": ["package", "{}", "--web", "bundle"], "package-triton": ["package", "{}", "--triton", "repo"],
}  # fmt: skip


@pytest.mark.parametrize("lie", LIES)
@pytest.mark.parametrize("command", COMMANDS)
def test_metadata_lies_about_the_graph_are_refused_before_allocation(files, tmp_path, run_cli, lie, command):
    """What the metadata says of states, time axes, the chunk and the GRU's input is checked
    against the graph on load: one line, exit 2, naming the lie, nothing allocated."""
    source, change, graph, message = LIES[lie]
    if command == "package-triton":
        pytest.importorskip("tritonclient.grpc", reason="needs the [triton] extra")
    path = _forge(files[source], tmp_path / "f.onnx", change, graph=graph)
    before, started = _peak_mib(), time.perf_counter()
    result = run_cli(*[a.format(path) for a in COMMANDS[command]])
    assert result.exit_code == 2, result.output
    assert message in result.output and "does not describe this file" in result.output, result.output
    assert time.perf_counter() - started < 10 and _peak_mib() - before < 200
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "repo").exists()


@pytest.mark.parametrize("lie", [k for k, v in LIES.items() if v[0] != "plain"])
def test_metadata_lies_are_refused_by_the_streaming_session(files, tmp_path, lie):
    source, change, graph, message = LIES[lie]
    path = _forge(files[source], tmp_path / "f.onnx", change, graph=graph)
    with pytest.raises(GruOnnxUsageError, match="does not describe this file") as raised:
        gru_onnx.StreamingSession(path)
    assert message in str(raised.value)
    with pytest.raises(GruOnnxUsageError, match="does not describe this file"):  # a model given in memory too
        gru_onnx.StreamingSession(files[source], model=onnx.load(path))


def test_the_unforged_files_pass(files, run_cli):
    for name in ("stream", "chunked"):
        assert run_cli("check", str(files[name])).exit_code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ("42", "a JSON int, not an object"),
        ("[" * 200_000 + "]" * 200_000, "is not valid JSON"),
    ],
    ids=["not-json", "list", "number", "nested-200k"],
)
def test_metadata_that_is_not_a_json_object_exits_2(files, tmp_path, run_cli, text, message):
    path = _forge(files["plain"], tmp_path / "m.onnx", text=text)
    result = run_cli("check", str(path))
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda m: m.pop("stacks"), "'stacks' is a required property"),
        (lambda m: m["stacks"][0].pop("spec"), "'spec' is a required property"),
        (lambda m: m["stacks"][0].pop("weights"), "'weights' is a required property"),
        (lambda m: m["stacks"][0].pop("path"), "'path' is a required property"),
        (_set(["stacks", 0, "spec", "colour"], "blue"), "stacks/0/spec"),
        (_set(["version"], "abc"), "version"),
        (_set(["stacks", 0, "weights", "version"], "abc"), "stacks/0/weights/version"),
        (_set(["stacks", 0, "spec", "hidden_size"], -3), "stacks/0/spec/hidden_size"),
        (_set(["stacks", 0, "seq_len"], 7.0), "stacks/0/seq_len: 7.0 is not of type 'integer'"),
        (_set(["input_time_axes"], {"input": 0.0}), "input_time_axes/input: 0.0 is not of type 'integer'"),
    ],
    ids=[
        "no-stacks", "no-spec", "no-weights", "no-path", "extra-spec-key", "version-abc", "layout-version",
        "negative-size", "integer-as-float", "axis-as-float",
    ],
)
def test_metadata_against_its_schema_exits_2(files, tmp_path, run_cli, change, where):
    path = _forge(files["plain"], tmp_path / "m.onnx", change)
    result = run_cli("check", str(path))
    assert result.exit_code == 2, result.output
    assert "does not follow its schema" in result.output and where in result.output


def test_unknown_keys_outside_the_spec_are_accepted(files, tmp_path, run_cli):
    """Later versions may add fields anywhere but inside a stack's spec."""
    path = _forge(files["plain"], tmp_path / "m.onnx", _set(["added_later"], {"x": 1}))
    assert run_cli("check", str(path)).exit_code == 0


def test_huge_batch_is_refused_by_the_memory_budget_before_allocation(files, run_cli):
    """--batch 1000000000 tried to allocate about 1.3 TB."""
    before = _peak_mib()
    result = run_cli("check", str(files["loop"]), "--batch", "1000000000")
    assert result.exit_code == 2 and "over the memory budget" in result.output and "--memory-budget" in result.output
    assert _peak_mib() - before < 200
    result = run_cli("bench", str(files["loop"]), "--batch", "1000000000", "--runs", "1")
    assert result.exit_code == 2 and "over the memory budget" in result.output


def test_the_memory_budget_can_be_raised(files, run_cli):
    small = run_cli("check", str(files["loop"]), "--batch", "64", "--memory-budget", "1000")
    assert small.exit_code == 2 and "over the memory budget" in small.output
    assert run_cli("check", str(files["loop"]), "--batch", "4", "--memory-budget", str(2**30)).exit_code == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
@pytest.mark.parametrize("role", ["model", "checkpoint", "inputs", "package"])
def test_a_fifo_is_refused_not_waited_on(files, tmp_path, run_cli, role):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    args = {
        "model": ["check", str(fifo)],
        "checkpoint": ["check", str(files["plain"]), "--checkpoint", str(fifo)],
        "inputs": ["check", str(files["plain"]), "--inputs", str(fifo)],
        "package": ["package", str(fifo), "--triton", str(tmp_path / "repo")],
    }[role]
    result = run_cli(*args)
    assert result.exit_code == 2 and "FIFO" in result.output, result.output


def test_a_device_is_refused(run_cli, tmp_path):
    """package /dev/zero read until memory ran out."""
    result = run_cli("package", "/dev/zero", "--triton", str(tmp_path / "repo"))
    assert result.exit_code == 2 and "is a device" in result.output


def _copies(count: int):
    """``count`` copies of the file's one stack under module paths m0, m1, ...: all naming the same weights."""

    def change(meta):
        meta["stacks"] = [dict(meta["stacks"][0], path=f"m{i}", consumers={}) for i in range(count)]

    return change


@pytest.mark.parametrize("command", ["check", "bench", "inspect"])
def test_two_stacks_claiming_one_initializer_are_refused_in_one_short_line(files, tmp_path, run_cli, command):
    """Copies of one stack under paths m0, m1, ... (6000 of them: bench ran for minutes, check printed a 60 KB line)."""
    path = _forge(files["loop"], tmp_path / "f.onnx", _copies(20))
    started = time.perf_counter()
    result = run_cli(*[a.format(path) for a in COMMANDS[command]])
    assert result.exit_code == 2, result.output[:500]
    assert "stacks 'm0' and 'm1' both hold initializer" in result.output and "does not describe" in result.output
    assert len(result.output) < 300 and time.perf_counter() - started < 10


@pytest.mark.parametrize("command", ["check", "bench"])
def test_more_stacks_than_the_graph_has_nodes_are_refused(files, tmp_path, run_cli, command):
    """Copies of one stack under one path (as a module called many times records): bench ran for minutes."""

    def change(meta):
        meta["stacks"] = [dict(meta["stacks"][0], path="m") for _ in range(3000)]

    path = _forge(files["loop"], tmp_path / "f.onnx", change)
    started = time.perf_counter()
    result = run_cli(*[a.format(path) for a in COMMANDS[command]])
    assert result.exit_code == 2 and "3000 GRU stacks in a graph of" in result.output, result.output[:500]
    assert len(result.output) < 300 and time.perf_counter() - started < 10


def _scale(shape, name="weight_ih_l0_scale"):
    """A graph change: an int8 weight's scale (or zero point) replaced by ``shape`` copies of its largest value."""

    def change(model):
        for graph in all_graphs(model.graph):
            for tensor in graph.initializer:
                if tensor.name == name:
                    old = numpy_helper.to_array(tensor)
                    tensor.CopyFrom(numpy_helper.from_array(np.full(shape, old.max(), old.dtype), name))

    return change


@pytest.fixture(scope="module")
def int8(files, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("int8")
    big = CustomGRU(64, 64, activation="relu")
    gru_onnx.export(big, (torch.randn(5, 2, 64),), folder / "f.onnx", check=None)
    paths = {"plain": folder / "q.onnx", "loop": folder / "ql.onnx"}
    gru_onnx.quantize(folder / "f.onnx", paths["plain"], gru_onnx.QuantizeOptions(mode="weights"))
    gru_onnx.quantize(files["loop"], paths["loop"], gru_onnx.QuantizeOptions(mode="weights"))
    return paths


@pytest.mark.parametrize(
    ("source", "change", "message"),
    [
        ("plain", _scale((2000, 1, 1)), "'weight_ih_l0_scale' of 'weight_ih_l0_int8' [64, 192] has shape [2000, 1, 1]"),
        ("plain", _scale((191,)), "has shape [191]; it takes one value or one per output channel (192)"),
        ("plain", _scale((2000,), "weight_ih_l0_zero_point"), "zero_point 'weight_ih_l0_zero_point'"),
        ("loop", _scale((500, 1), "weight_hh_l0.n_scale"), "'weight_hh_l0.n_scale' of 'weight_hh_l0.n_int8'"),
    ],
    ids=["scale-3d", "scale-short", "zero-point", "scale-in-a-loop-body"],
)
@pytest.mark.parametrize("command", ["check", "bench", "package-web"])
def test_int8_scales_of_the_wrong_shape_are_refused_before_allocation(int8, tmp_path, run_cli, source, change,
                                                                       message, command):  # fmt: skip
    """A 2000x1x1 scale broadcast against the int8 weight: 3.4 GB allocated, then exit 3."""
    path = _forge(int8[source], tmp_path / "f.onnx", graph=change)
    before = _peak_mib()
    result = run_cli(*[a.format(path) for a in COMMANDS[command]])
    assert result.exit_code == 2, result.output
    assert message in result.output and "does not describe this file" in result.output, result.output
    assert _peak_mib() - before < 200


def test_int8_files_with_per_tensor_scales_pass(files, tmp_path, run_cli):
    gru_onnx.quantize(files["loop"], tmp_path / "q.onnx", gru_onnx.QuantizeOptions(mode="weights", per_channel=False))
    assert run_cli("check", str(tmp_path / "q.onnx"), "--samples", "1").exit_code == 0
