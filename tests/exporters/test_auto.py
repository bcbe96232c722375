"""The auto strategy: which strategy each stack gets, and why, with and without a target."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU

import flat
from helpers import graph_export, make_inputs, numpy_reference, run_ort


@pytest.mark.parametrize(
    ("kwargs", "export_kwargs", "seq", "expected"),
    [
        ({}, {}, 6, "native"),
        ({}, {"dtype": "float16"}, 6, "unrolled"),
        ({"activation": "relu"}, {}, 6, "unrolled"),
        ({"activation": "relu"}, {}, 200, "loop"),
        ({"activation": "relu"}, {"dynamic_seq": True}, 6, "loop"),
        ({"reset_after": False}, {}, 6, "unrolled"),
        ({}, {"dynamic_seq": True}, 6, "native"),
    ],
)
def test_auto_choice(kwargs, export_kwargs, seq, expected, tmp_path):
    gru = CustomGRU(3, 4, **kwargs)
    result = graph_export(gru, (torch.randn(seq, 2, 3),), tmp_path / "m.onnx", **export_kwargs)
    (stack,) = result.metadata["stacks"]
    assert stack["strategy"] == expected == result.strategy
    assert result.metadata["requested_strategy"] == "auto"
    assert stack["reason"]
    assert result.passed, result.parity.summary()


@pytest.mark.parametrize(
    ("kwargs", "export_kwargs", "seq", "expected", "why"),
    [
        ({"activation": "relu", "reset_after": False}, {}, 40, "native", "exactly"),
        ({"activation": "elu", "recurrent_activation": "hard_sigmoid"}, {"dynamic_seq": True}, 6, "native", "exactly"),
        ({"activation": "relu"}, {"dtype": "float16"}, 6, "unrolled", "<= 8"),  # native not measured faster
        ({"activation": "gelu"}, {}, 8, "unrolled", "<= 8"),
        ({"activation": "gelu"}, {}, 9, "loop", "> 8"),  # 64 on other targets: web's loop wins sooner
        ({"activation": "gelu"}, {"dynamic_seq": True}, 6, "loop", "dynamic"),
    ],
)
def test_the_web_target_follows_the_measured_rule(kwargs, export_kwargs, seq, expected, why, tmp_path):
    # The rule and its thresholds come from benchmarks/web.py (results/web.md): native measured
    # exact in onnxruntime-web for every activation the op takes, unrolled ahead of loop to 8 steps.
    gru = CustomGRU(3, 4, **kwargs)
    result = graph_export(gru, (torch.randn(seq, 2, 3),), tmp_path / "m.onnx", target="web", **export_kwargs)
    (stack,) = result.metadata["stacks"]
    assert stack["strategy"] == expected and why in stack["reason"], stack["reason"]
    assert result.metadata["target"] == "web" and result.passed


def test_auto_chooses_per_stack_in_a_whole_model(tmp_path):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = CustomGRU(3, 4, batch_first=True)
            self.b = CustomGRU(4, 4, batch_first=True, activation="mish")

        def forward(self, x):
            return self.b(self.a(x)[0])[0]

    result = flat.export(Two(), (torch.randn(2, 5, 3),), tmp_path / "m.onnx")
    assert [s["strategy"] for s in result.metadata["stacks"]] == ["native", "unrolled"]
    assert result.strategy == "mixed" and result.passed


def test_dynamic_length_with_padded_batches(tmp_path):
    gru = CustomGRU(3, 4, bidirectional=True, batch_first=True, activation="gelu")
    x, _, lens = make_inputs(gru, batch=3, seq=6, with_lengths=True)
    result = graph_export(gru, (x, None, lens), tmp_path / "m.onnx", dynamic_seq=True)
    assert result.strategy == "loop"
    x2 = torch.randn(4, 11, 3)
    lens2 = torch.tensor([11, 3, 1, 8])
    y, h_n = run_ort(result.path, {"input": x2.numpy(), "lengths": lens2.numpy()})
    want_y, want_h = numpy_reference(gru, x2, None, lens2)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


#: (activation, dtype, target, static seq) -> strategy auto picks; from the issue's rules and
#: the compat table (OpenVINO's CPU plugin compiles sigmoid/tanh/relu GRUs only).
TARGET_CASES = [
    ("relu", "float32", "any", 20, "unrolled"),
    ("relu", "float32", "cpu", 20, "native"),  # ONNX Runtime's CPU kernel computes relu exactly
    ("relu", "float16", "cpu", 20, "unrolled"),  # ...but has no float16 kernel
    ("gelu", "float32", "cpu", 20, "unrolled"),  # no native gelu
    ("relu", "float32", "cuda", 20, "unrolled"),  # non-default: the CPU kernel; unrolled for CUDA graphs
    ("relu", "float32", "cuda", 200, "unrolled"),  # under the CUDA cap, over the CPU one
    ("tanh", "float32", "cuda", 20, "native"),  # cuDNN
    ("relu", "float32", "openvino", 20, "native"),
    ("elu", "float32", "openvino", 20, "unrolled"),  # OpenVINO does not compile an Elu GRU
    ("elu", "float32", "tensorrt", 20, "native"),
    ("linear", "float32", "tensorrt", 20, "unrolled"),  # TensorRT has no Affine
    ("relu", "float32", "any", 200, "loop"),
]


@pytest.mark.parametrize(("activation", "dtype", "target", "seq", "want"), TARGET_CASES)
def test_auto_picks_by_target(activation, dtype, target, seq, want, tmp_path, run_cli):
    from gru_onnx.compat import file_support

    torch.manual_seed(0)
    gru = CustomGRU(4, 5, activation=activation)
    x = torch.randn(seq, 2, 4)
    result = graph_export(gru, (x,), tmp_path / "m.onnx", target=target, dtype=dtype, check=seq < 100)
    assert result.strategy == want and result.metadata["target"] == target
    assert result.passed, result.parity.summary()
    runtime = {"cpu": "onnxruntime-cpu", "openvino": "openvino", "tensorrt": "onnxruntime-tensorrt"}.get(target)
    if runtime:  # what auto picked runs as intended on the target, by the compat table
        assert {r.runtime: r.status for r in file_support(result.metadata)}[runtime] == "yes"
    inspected = run_cli("inspect", "m.onnx")
    assert ["target", target] in [line.split() for line in inspected.output.splitlines()]


@pytest.mark.parametrize(("activation", "target", "want"), [("tanh", "any", "unrolled"), ("relu", "cpu", "unrolled")])
def test_with_int8_auto_leaves_out_the_native_op(activation, target, want, tmp_path, run_cli):
    """``export --quantize dynamic`` on the default model was refused ("nothing to quantize"): auto
    had picked the native op, whose weights have no int8 form. It picks standard ops and says why."""
    result = run_cli("export", "--activation", activation, "--target", target, "--quantize", "dynamic", "-o", "q.onnx")
    assert result.exit_code == 0, result.output
    (stack,) = gru_onnx.read_metadata(tmp_path / "q.onnx")["stacks"]
    assert stack["strategy"] == want and "no int8 form (quantization requested)" in stack["reason"]
    assert gru_onnx.read_metadata(tmp_path / "q.onnx")["quantization"]["mode"] == "dynamic"
    plain = run_cli("export", "--activation", activation, "--target", target, "-o", "f.onnx")
    assert gru_onnx.read_metadata(tmp_path / "f.onnx")["stacks"][0]["strategy"] == "native", plain.output
