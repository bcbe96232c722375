"""gru_onnx.metadata: what a file claims is checked against what it is before anything is allocated
(trust review II, items 2 and 6); gru_onnx.files: only regular files are read."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import onnx
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, GraphOptions, GruOnnxUsageError, StreamingOptions


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
    return paths


def _forge(src: Path, dst: Path, change=None, text: str | None = None) -> Path:
    """``src`` with its metadata changed in place by ``change(meta)``, or replaced by ``text``."""
    model = onnx.load(src)
    (prop,) = [p for p in model.metadata_props if p.key == "gru_onnx"]
    meta = json.loads(prop.value)
    if change is not None:
        change(meta)
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
    ],
    ids=[
        "no-stacks", "no-spec", "no-weights", "no-path", "extra-spec-key", "version-abc", "layout-version",
        "negative-size",
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
