"""gru_onnx.wiring: the check reads the weights the graph really uses (trust review II, item 1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU, GraphOptions
from gru_onnx.wiring import LEGACY, RECORDED, verify

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A relu GRU exported (unrolled: the weight is read by one Gemm per step) and its checkpoint."""
    folder = tmp_path_factory.mktemp("wiring")
    torch.manual_seed(0)
    gru = CustomGRU(16, 32, activation="relu")
    torch.save(gru.state_dict(), folder / "src.pt")
    gru_onnx.export(gru, (torch.randn(20, 2, 16),), folder / "src.onnx", graph=GraphOptions(strategy="unrolled"),
                    check=None)  # fmt: skip
    return folder / "src.onnx", folder / "src.pt"


def _rewire(src: Path, dst: Path, *, rename_copy: bool = False, only_first: bool = False) -> None:
    """A copy of ``weight_hh_l0.rz`` with +0.003 on one element; nodes pointed at the copy."""
    model = onnx.load(src)
    original = next(t for t in model.graph.initializer if t.name == "weight_hh_l0.rz")
    values = numpy_helper.to_array(original).copy()
    values[0, 0] += 0.003
    model.graph.initializer.append(numpy_helper.from_array(values, "weight_hh_l0.rz_copy"))
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == "weight_hh_l0.rz":
                node.input[i] = "weight_hh_l0.rz_copy"
                if only_first:
                    break
        else:
            continue
        if only_first:
            break
    onnx.save(model, dst)


def test_the_untouched_file_passes_with_recorded_consumers(source, run_cli):
    path, checkpoint = source
    metadata = gru_onnx.read_metadata(path)
    assert metadata["format"] == 2
    consumers = metadata["stacks"][0]["consumers"]
    assert len(consumers["weight_hh_l0.rz"]) == 20  # one Gemm per time step
    (wiring,) = verify(onnx.load(path), metadata)
    assert wiring.passed and wiring.method == RECORDED
    result = run_cli("check", str(path), "--checkpoint", str(checkpoint))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("only_first", [False, True], ids=["every-use", "one-use"])
def test_a_node_pointed_at_a_tampered_copy_fails(source, run_cli, tmp_path, only_first):
    """The attack of the review: the outputs barely move (+0.003 on one weight), the metadata is
    left alone; the check must say the graph reads another tensor, exit 1."""
    path, checkpoint = source
    _rewire(path, tmp_path / "rw.onnx", only_first=only_first)
    result = run_cli("check", str(tmp_path / "rw.onnx"), "--checkpoint", str(checkpoint), "--scale", "1")
    assert result.exit_code == 1, result.output
    assert "reads 'weight_hh_l0.rz_copy' where the metadata names 'weight_hh_l0.rz'" in result.output
    # Without a source (the reference rebuilt from the file) the rewiring fails too.
    plain = run_cli("check", str(tmp_path / "rw.onnx"), "--scale", "1")
    assert plain.exit_code == 1 and "does not use the weights the metadata names" in plain.output


def test_metadata_pointed_at_the_copy_fails_on_the_values(source, run_cli, tmp_path):
    """Pointing the metadata (and its consumers) at the copy makes the wiring consistent, so the
    values decide: the stored weight is not the source's."""
    path, checkpoint = source
    _rewire(path, tmp_path / "rw.onnx")
    model = onnx.load(tmp_path / "rw.onnx")
    (prop,) = [p for p in model.metadata_props if p.key == "gru_onnx"]
    prop.value = prop.value.replace('"weight_hh_l0.rz"', '"weight_hh_l0.rz_copy"')
    onnx.save(model, tmp_path / "rw2.onnx")
    result = run_cli("check", str(tmp_path / "rw2.onnx"), "--checkpoint", str(checkpoint), "--scale", "1")
    assert result.exit_code == 1, result.output
    assert "differ from the source: weight_hh_l0: 1 value(s) differ, worst 0.003 at [0, 0]" in result.output


def test_a_gru_node_left_dead_beside_its_replacement_fails(source, tmp_path):
    """Rewiring the consumer of one Gemm's output to a copy Gemm leaves the recorded node dead."""
    path, _ = source
    model = onnx.load(path)
    metadata = gru_onnx.read_metadata(path)
    node_name = metadata["stacks"][0]["consumers"]["weight_hh_l0.rz"][0][0]
    node = next(n for n in model.graph.node if n.name == node_name)
    twin = onnx.NodeProto()
    twin.CopyFrom(node)
    twin.name, twin.output[0] = "twin", "twin_out"
    model.graph.node.insert(list(model.graph.node).index(node) + 1, twin)
    for other in model.graph.node:
        if other is not twin:
            for i, name in enumerate(other.input):
                if name == node.output[0]:
                    other.input[i] = "twin_out"
    (wiring,) = verify(model, metadata)
    assert not wiring.passed
    assert any("no output of the graph depends on it" in p for p in wiring.problems), wiring.problems


def test_two_initializers_of_one_name_are_refused(source, run_cli, tmp_path):
    path, checkpoint = source
    model = onnx.load(path)
    copy = onnx.TensorProto()
    copy.CopyFrom(next(t for t in model.graph.initializer if t.name == "weight_hh_l0.rz"))
    model.graph.initializer.append(copy)
    onnx.save(model, tmp_path / "dup.onnx")
    result = run_cli("check", str(tmp_path / "dup.onnx"), "--checkpoint", str(checkpoint))
    assert result.exit_code == 2 and "two initializers named 'weight_hh_l0.rz'" in result.output


def test_two_metadata_entries_are_refused(source, run_cli, tmp_path):
    """gru-onnx read the first entry and ONNX Runtime's custom_metadata_map the last."""
    path, _ = source
    model = onnx.load(path)
    model.metadata_props.add(key="gru_onnx", value=model.metadata_props[0].value)
    onnx.save(model, tmp_path / "two.onnx")
    result = run_cli("check", str(tmp_path / "two.onnx"))
    assert result.exit_code == 2 and "2 'gru_onnx' metadata entries" in result.output


@pytest.mark.parametrize("name", ["legacy_loop_relu", "legacy_unrolled_gelu_reset_before"])
def test_legacy_files_pass_and_say_which_check_ran(name, run_cli, tmp_path):
    result = run_cli("check", str(DATA / f"{name}.onnx"), "--checkpoint", str(DATA / f"{name}.pt"))
    assert result.exit_code == 0, result.output
    assert "match the source" in result.output and "without recorded consumers" in result.output
    (wiring,) = verify(onnx.load(DATA / f"{name}.onnx"), gru_onnx.read_metadata(DATA / f"{name}.onnx"))
    assert wiring.method == LEGACY and wiring.passed


def test_a_legacy_file_whose_weight_moved_to_a_stand_in_fails(tmp_path):
    shutil.copy(DATA / "legacy_loop_relu.onnx", tmp_path / "l.onnx")
    model = onnx.load(tmp_path / "l.onnx")
    metadata = json.loads(model.metadata_props[0].value)
    original = next(t for t in model.graph.initializer if t.name == "weight_ih_l1")
    stand_in = numpy_helper.from_array(numpy_helper.to_array(original) + np.float32(0.001), "stand_in")
    model.graph.initializer.append(stand_in)
    from gru_onnx.protos import all_graphs

    rewired = 0
    for graph in all_graphs(model.graph):
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == "weight_ih_l1" and rewired == 0:
                    node.input[i] = "stand_in"
                    rewired += 1
    assert rewired == 1
    problems = [p for w in verify(model, metadata) for p in w.problems]
    # Its only use moved to the stand-in: the named weight is read by nothing.
    assert any("'weight_ih_l1'" in p and "read by no node" in p for p in problems), problems


def test_a_legacy_file_with_a_same_shaped_stand_in_beside_the_weight_fails(tmp_path):
    """One of two uses of a weight moved to a same-shaped copy: the weight is still read, the
    stand-in feeds the same kind of node at the same input."""
    model = onnx.load(DATA / "legacy_unrolled_gelu_reset_before.onnx")
    metadata = json.loads(model.metadata_props[0].value)
    uses = [(n, i) for n in model.graph.node for i, name in enumerate(n.input) if name == "weight_hh_l0.rz"]
    assert len(uses) >= 2  # unrolled: one use per step
    original = next(t for t in model.graph.initializer if t.name == "weight_hh_l0.rz")
    model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(original) * 1.01, "stand_in"))
    node, slot = uses[1]
    node.input[slot] = "stand_in"
    problems = [p for w in verify(model, metadata) for p in w.problems]
    assert any("'stand_in'" in p and "stand-in" in p for p in problems), problems
