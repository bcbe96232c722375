"""``gru-onnx activations``: the registry as a table, per opset."""

from __future__ import annotations


def test_activations_listing(run_cli):
    result = run_cli("activations", "--opset", "17")
    assert result.exit_code == 0
    for name in ("gelu", "silu (swish)", "hard_sigmoid", "HardSigmoid (alpha=0.1667, beta=0.5)", "Erf"):
        assert name in result.output
    assert "Gelu" in run_cli("activations", "--opset", "20").output
