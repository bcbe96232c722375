"""Option groups (``gru_onnx.options``): each group validates its fields when built, the rules
across groups are checked once, and a flat mapping of fields maps onto the groups."""

from __future__ import annotations

import re

import pytest
import torch

from gru_onnx import CustomGRU, GruOnnxUsageError
from gru_onnx.options import (
    MAX_THREADS,
    BenchOptions,
    CheckOptions,
    ExportOptions,
    GraphOptions,
    QuantizeOptions,
    ShapeOptions,
    StreamingOptions,
    groups_from_flat,
)

import flat


def test_unrolled_refuses_a_dynamic_length(tmp_path):
    gru = CustomGRU(3, 4)
    with pytest.raises(GruOnnxUsageError, match="the unrolled strategy fixes the sequence length"):
        flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="unrolled", dynamic_seq=True)
    assert not (tmp_path / "m.onnx").exists()


def test_chunk_and_exclude_need_streaming(tmp_path):
    with pytest.raises(GruOnnxUsageError, match=r"StreamingOptions\(enabled=True\)"):
        flat.export(CustomGRU(3, 4), (torch.randn(5, 2, 3),), tmp_path / "x.onnx", chunk=4)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GraphOptions(opset=12), "opset 12 is not supported"),
        (lambda: GraphOptions(dtype="bfloat16"), "unknown dtype 'bfloat16'"),
        (lambda: GraphOptions(target="gpu"), "unknown target 'gpu'"),
        (lambda: CheckOptions(providers=()), "providers is empty"),
        (lambda: CheckOptions(atol=float("nan")), "atol must be a finite number >= 0"),
        (lambda: CheckOptions(scales=(1.0, 0.0)), "scales must be finite numbers > 0"),
        (lambda: CheckOptions(samples=True), "samples must be a positive integer"),
        (lambda: QuantizeOptions(mode="int4"), "unknown quantization mode 'int4'"),
        (lambda: ExportOptions(check=CheckOptions(chunks=(2,))), "chunk sizes of a streaming check"),
        (lambda: ExportOptions(GraphOptions(dtype="float16"), quantize=QuantizeOptions("weights")),
         "only float32 files can be quantized"),
        (lambda: ExportOptions(streaming=StreamingOptions(enabled=True), shapes=ShapeOptions(dynamic_shapes={})),
         "dynamic_shapes cannot be combined with streaming"),
        (lambda: BenchOptions(threads=99999999999), "threads must be a whole number from 1 to 1024, got 99999999999"),
        (lambda: BenchOptions(threads=MAX_THREADS + 1), "threads must be a whole number from 1 to 1024"),
        (lambda: BenchOptions(threads=0), "threads must be a whole number from 1 to 1024"),
        (lambda: BenchOptions(threads=2.0), "threads must be a whole number from 1 to 1024"),
    ],
    ids=["opset", "dtype", "target", "providers", "atol", "scales", "samples", "quantize-mode",
         "chunks-without-streaming", "quantize-float16", "streaming-dynamic-shapes", "threads-huge", "threads-over",
         "threads-0", "threads-float"],
)  # fmt: skip
def test_groups_refuse_bad_fields_and_bad_combinations(build, message):
    with pytest.raises(GruOnnxUsageError, match=re.escape(message)):
        build()


def test_groups_normalise_what_they_are_given():
    assert GraphOptions(dtype=torch.float16).dtype == "float16"
    assert ShapeOptions(input_names="x").input_names == ("x",)
    check = CheckOptions(providers=["all"], scales=2, chunks=[3, 4])
    assert check.scales == (2.0,) and check.chunks == (3, 4) and check.streaming  # chunks imply streaming
    assert check.expanded_providers == ("cpu", "cuda", "tensorrt", "openvino")


def test_flat_fields_map_onto_the_groups():
    options = groups_from_flat({"strategy": "loop", "dynamic_seq": True, "atol": 1e-4, "streaming": True, "chunk": 4,
                                "quantize": "dynamic", "external_data": True})  # fmt: skip
    assert (options.graph.strategy, options.shapes.dynamic_seq) == ("loop", True)
    assert options.check.atol == 1e-4 and options.streaming == StreamingOptions(enabled=True, chunk=4)
    assert (options.quantize.mode, options.saving.external_data) == ("dynamic", True)
    assert groups_from_flat({"check": False}).check is None
    assert groups_from_flat({}) == ExportOptions()
    with pytest.raises(GruOnnxUsageError, match="unknown export option 'colour'; valid: "):
        groups_from_flat({"colour": "red"})
