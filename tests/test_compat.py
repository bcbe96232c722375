"""Which runtimes compute which file as intended (``gru_onnx.compat``): TensorRT reads a native
GRU's alpha/beta lists by position, so files of gru-onnx 0.1 are flagged for it."""

from __future__ import annotations

import onnx
import pytest
import torch
from onnx import helper

from gru_onnx import CustomGRU
from gru_onnx.compat import file_support, tensorrt_reading

from helpers import graph_export


# Guards: a native leaky_relu file reads right on TensorRT, and 0.1 files (ONNX Runtime's list only) are
#   flagged for it (trust review, item 8)
def test_native_leaky_relu_file_reads_right_on_tensorrt_and_old_files_are_flagged(tmp_path):
    gru = CustomGRU(3, 4, activation="leaky_relu(alpha=0.2)")
    result = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "n.onnx", strategy="native")
    gru_node = next(n for n in onnx.load(result.path).graph.node if n.op_type == "GRU")
    attrs = {a.name: helper.get_attribute_value(a) for a in gru_node.attribute}
    assert attrs["activation_alpha"] == pytest.approx([0.2, 0.2])
    assert {r.runtime: r.status for r in file_support(result.metadata)}["onnxruntime-tensorrt"] == "yes"
    # A file written by gru-onnx 0.1 has ONNX Runtime's list only: TensorRT reads 0.01 there.
    old_stack = dict(result.metadata["stacks"][0])
    old_stack.pop("native")
    old_stack["notes"] = {"native_activations": ["Sigmoid", "LeakyRelu"]}
    support = {r.runtime: r for r in file_support({"stacks": [old_stack], "dtype": "float32"})}
    assert support["onnxruntime-tensorrt"].status == "no" and "reads alpha 0.01" in support["onnxruntime-tensorrt"].note
    assert tensorrt_reading({"activations": ["Sigmoid", "LeakyRelu"], "activation_alpha": [0.2]}) is not None
