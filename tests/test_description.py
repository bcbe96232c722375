"""``gru_onnx.describe``: what a file is, as data (``gru-onnx inspect`` only renders it)."""

from __future__ import annotations

import onnx

from gru_onnx import read_metadata
from gru_onnx.description import describe, describe_spec


def test_a_lone_gru_file_described_from_its_graph_and_metadata(exported):
    _, _, path = exported
    info = describe(path)
    model = onnx.load(path)
    assert (info.path, info.size, info.ir_version) == (path, path.stat().st_size, model.ir_version)
    assert info.opsets == {"ai.onnx": 18} and info.data_files == [] and info.states == []
    assert [(t.kind, t.name, t.dtype, t.dims) for t in info.tensors] == [
        ("input", "input", "float", (12, "batch", 4)),
        ("output", "output", "float", (12, "batch", 12)),
        ("output", "h_n", "float", (4, "batch", 6)),
    ]
    assert [t.time_axis for t in info.tensors] == [None, 0, None]  # h_n has no time axis
    (stack,) = info.stacks
    assert (stack.path, stack.strategy, stack.seq_len, stack.has_h0) == ("", "unrolled", 12, False)
    assert stack.description == "2-layer GRU(4->6, relu/hard_sigmoid, bidirectional, reset_after)"
    assert info.num_nodes == len(model.graph.node) == sum(info.node_counts.values())
    assert list(info.node_counts.values()) == sorted(info.node_counts.values(), reverse=True)
    assert {s.runtime: s.status for s in info.support}["onnxruntime-cpu"] == "yes"


def test_a_file_gru_onnx_did_not_write_and_an_unknown_activation(exported, tmp_path):

    _, _, path = exported
    model = onnx.load(path)
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "plain.onnx")
    info = describe(tmp_path / "plain.onnx")
    assert info.metadata is None and info.stacks == [] and info.support == []
    assert [t.time_axis for t in info.tensors] == [None, None, None]
    spec = read_metadata(path)["stacks"][0]["spec"]
    unknown = {**spec, "activation": {"name": "not_registered_here", "params": {"k": 2}}}
    assert describe_spec(unknown) == (
        "2-layer GRU(4->6, not_registered_here(k=2)/hard_sigmoid(alpha=0.16666666666666666, beta=0.5); an activation "
        "not registered here: "
        "check with --model, or register it first)"
    )
