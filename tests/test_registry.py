"""The name registries (``gru_onnx.registry``): strategies and runners by name, torch-free, with
unknown names listing the valid ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gru_onnx import GruOnnxUsageError, registry
from gru_onnx.exporters import STRATEGIES


def test_every_registered_strategy_is_named_with_its_length_rule():
    assert set(registry.strategy_names()) >= {"auto", "loop", "native", "unrolled"}
    for name, strategy in STRATEGIES.items():  # the exporters' table and the names agree
        assert registry.strategy_name(name).dynamic_seq == strategy.dynamic_seq
    assert not registry.strategy_name("unrolled").dynamic_seq and registry.strategy_name("loop").dynamic_seq
    with pytest.raises(GruOnnxUsageError, match="unknown export strategy 'nope'; valid strategies: auto, loop"):
        registry.strategy_name("nope")


def test_runner_keys_and_all():
    assert registry.runner_names()[:4] == ["cpu", "cuda", "tensorrt", "openvino"]
    assert registry.expand_providers(("openvino", "all", "cpu")) == ("openvino", "cpu", "cuda", "tensorrt")
    with pytest.raises(GruOnnxUsageError, match=r"unknown provider 'gpu'; valid: cpu, cuda, tensorrt, openvino"):
        registry.runner_name("gpu")


def test_registry_imports_neither_torch_nor_onnx():
    code = (
        "import sys, gru_onnx.registry, gru_onnx.options\n"
        "print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
