"""Compact names (gru_onnx.compact): short, unique, deterministic; kept names stay; smaller files."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch
from onnx import TensorProto, helper

import gru_onnx
from gru_onnx import CustomGRU, read_metadata
from gru_onnx.compact import compact_names
from gru_onnx.rebuild import state_dict_from_file

from flat import export, quantize
from helpers import run_ort

_NODE = re.compile(r"n\d+")
_VALUE = re.compile(r"v\d+(_\d+)?|n\d+_\w+_\d+")


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _defined(model: onnx.ModelProto) -> list[str]:
    """Every value name a graph defines: subgraph inputs and node outputs (main inputs apart)."""
    graphs = list(_graphs(model.graph))
    return [i.name for g in graphs[1:] for i in g.input] + [o for g in graphs for n in g.node for o in n.output if o]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, object]:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("compact")
    gru = CustomGRU(8, 16, num_layers=2, bidirectional=True, activation="relu").eval()
    x, lengths = torch.randn(6, 3, 8), torch.tensor([6, 4, 2])
    paths = {}
    for strategy in ("loop", "unrolled", "native"):
        paths[strategy] = folder / f"{strategy}.onnx"
        export(gru, (x, None, lengths), paths[strategy], strategy=strategy, check=False)
    return {"gru": gru, "x": x, "lengths": lengths, "paths": paths, "folder": folder}


@pytest.mark.parametrize("strategy", ["loop", "unrolled", "native"])
def test_names_are_short_unique_across_subgraphs_and_kept_where_referenced(files, strategy):
    model = onnx.load(files["paths"][strategy])
    graphs = list(_graphs(model.graph))
    nodes = [n.name for g in graphs for n in g.node]
    assert all(_NODE.fullmatch(n) for n in nodes) and len(set(nodes)) == len(nodes)
    defined = _defined(model)
    assert len(set(defined)) == len(defined)  # no subgraph name shadows an outer one
    io = [*(i.name for i in model.graph.input), *(o.name for o in model.graph.output)]
    assert io == ["input", "lengths", "output", "h_n"]
    assert all(_VALUE.fullmatch(name) for name in defined if name not in io)
    for stack in read_metadata(model)["stacks"]:  # the weight records still name initializers
        assert state_dict_from_file(model, stack)
    if strategy == "loop":
        assert len(graphs) > 1  # the bodies were renamed too


@pytest.mark.parametrize("strategy", ["loop", "unrolled", "native"])
def test_compacted_files_still_match_and_check(files, strategy):
    path = files["paths"][strategy]
    y, _ = run_ort(path, {"input": files["x"].numpy(), "lengths": files["lengths"].numpy()})
    with torch.no_grad():
        want = files["gru"](files["x"], None, files["lengths"])[0].numpy()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    assert gru_onnx.check_parity(None, path).passed


def test_exports_stay_byte_identical(files, tmp_path):
    for name in ("a", "b"):
        export(files["gru"], (files["x"], None, files["lengths"]), tmp_path / f"{name}.onnx", strategy="loop",
               quantize="dynamic", check=False)  # fmt: skip
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_quantized_files_are_compacted_too(files, tmp_path):
    quantize(files["paths"]["loop"], tmp_path / "q.onnx", mode="dynamic")
    model = onnx.load(tmp_path / "q.onnx")
    assert all(_NODE.fullmatch(n.name) for g in _graphs(model.graph) for n in g.node)
    defined = _defined(model)
    assert len(set(defined)) == len(defined) and not any("/" in name for name in defined)


def test_kept_names_are_not_taken_and_empty_outputs_stay_empty():
    """An initializer already called like a new name pushes the new one aside; an omitted
    optional output (empty name: a GRU's Y) stays omitted."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "v0"], ["sum"]), helper.make_node("GRU", ["sum", "w", "r"], ["", "y"],
                                                                          hidden_size=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1])],
        [helper.make_tensor("v0", TensorProto.FLOAT, [2], [1.0, 2.0]),
         helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 2], [0.5] * 6),
         helper.make_tensor("r", TensorProto.FLOAT, [1, 3, 1], [0.5] * 3)],
    )  # fmt: skip
    model = ir.to_proto(compact_names(ir.from_proto(helper.make_model(graph))))
    assert [(n.name, list(n.input), list(n.output)) for n in model.graph.node] == [
        ("n0", ["x", "v0"], ["v0_"]),
        ("n1", ["v0_", "w", "r"], ["", "y"]),
    ]
    onnx.checker.check_model(model, full_check=True)


def test_int8_unrolled_file_at_t100_is_under_035x_its_float_file(tmp_path):
    """The issue's bar: names no longer dominate an int8 unrolled file (0.43x before)."""
    torch.manual_seed(0)
    module = CustomGRU(64, 256, num_layers=2, activation="relu").eval()
    source = tmp_path / "float.onnx"
    export(module, (torch.randn(100, 2, 64),), source, strategy="unrolled", check=False)
    for mode in ("weights", "dynamic"):
        result = quantize(source, tmp_path / f"{mode}.onnx", mode=mode)
        assert result.size_after <= 0.35 * result.size_before, (mode, result.size_after / result.size_before)
