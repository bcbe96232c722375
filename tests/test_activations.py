"""The activation registry (``gru_onnx.activations``) against NumPy definitions, in PyTorch and in
ONNX at several opsets; parsing, native equivalents, and activations users register."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxscript
import pytest
import torch

from gru_onnx import CustomGRU, GruOnnxUsageError, register_activation
from gru_onnx.activations import get_activation, list_activations, onnx_ops, parse_activation

import reference
from helpers import graph_export, run_ort

BUILTINS = sorted(reference.ACTIVATIONS)


# Values around every kink and threshold, plus large magnitudes (softplus threshold, saturation).
X = np.concatenate([np.linspace(-8, 8, 161), [-50.0, -21.0, -3.0, 0.0, 3.0, 6.0, 19.9, 20.1, 45.0]])


# Non-default parameters to check that they reach both sides.
CUSTOM_PARAMS = {
    "leaky_relu": {"alpha": 0.2},
    "elu": {"alpha": 0.5},
    "celu": {"alpha": 2.0},
    "softplus": {"beta": 2.0, "threshold": 10.0},
    "hardtanh": {"min_val": -0.5, "max_val": 2.0},
    "hard_sigmoid": {"alpha": 0.2, "beta": 0.5},  # Keras 2's hard_sigmoid
}


def cases():
    for name in BUILTINS:
        yield name, {}
        if name in CUSTOM_PARAMS:
            yield name, CUSTOM_PARAMS[name]


def test_every_registered_builtin_has_a_reference():
    registered = {name for name, _, _ in list_activations()}
    assert set(BUILTINS) <= registered
    for alias, target in [("swish", "silu"), ("identity", "linear"), ("hardswish", "hard_swish")]:
        assert get_activation(alias).name == target


@pytest.mark.parametrize(("name", "params"), list(cases()))
def test_torch_matches_numpy(name, params):
    bound = get_activation(name).bind(**params)
    got = bound.torch(torch.tensor(X, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, reference.activation(name, **params)(X), rtol=1e-12, atol=1e-12)


def run_emitter(bound, opset: int, x: np.ndarray, tmp_path) -> np.ndarray:
    graph = onnxscript.build_graph(
        lambda op, v: bound.onnx(op, v),
        inputs=[ir.val("x", ir.DataType.FLOAT, ir.Shape([x.size]))],
        outputs=[ir.val("y", ir.DataType.FLOAT, ir.Shape([x.size]))],
        opset_imports={"": opset},
    )
    model = ir.Model(graph, ir_version=9)
    proto = ir.to_proto(model)
    path = tmp_path / "activation.onnx"
    import onnx

    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return run_ort(path, {"x": x.astype(np.float32)})[0]


@pytest.mark.parametrize("opset", [17, 18, 20, 23])
@pytest.mark.parametrize(("name", "params"), list(cases()))
def test_onnx_emitter_matches_numpy(name, params, opset, tmp_path):
    bound = get_activation(name).bind(**params)
    got = run_emitter(bound, opset, X, tmp_path)
    want = reference.activation(name, **params)(X.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_opset_specific_emitters_use_the_fused_op_only_where_it_exists():
    assert "Gelu" not in onnx_ops("gelu", 19) and "Erf" in onnx_ops("gelu", 19)
    assert onnx_ops("gelu", 20) == ["Gelu"]
    assert "Mish" not in onnx_ops("mish", 17) and onnx_ops("mish", 18) == ["Mish"]


def test_hard_sigmoid_without_params_is_pytorchs_and_old_files_still_load():
    from gru_onnx.activations import BoundActivation

    old = BoundActivation.from_json({"name": "hard_sigmoid", "params": {}})  # written before it had parameters
    assert old == parse_activation("hard_sigmoid") and str(old) == "hard_sigmoid"
    x = torch.linspace(-5, 5, 101)
    assert torch.equal(old.torch(x), torch.nn.functional.hardsigmoid(x))
    keras2 = parse_activation("hard_sigmoid(alpha=0.2, beta=0.5)")
    assert (keras2.native().alpha, keras2.native().beta) == (0.2, 0.5)


def test_native_equivalents_are_exact_or_absent():
    assert parse_activation("hard_sigmoid").native().alpha == pytest.approx(1 / 6)
    assert parse_activation("hard_sigmoid").native().beta == 0.5
    assert parse_activation("leaky_relu(alpha=0.3)").native().alpha == pytest.approx(0.3)
    assert parse_activation("celu").native().name == "Elu"
    assert parse_activation("celu(alpha=2)").native() is None
    assert parse_activation("softplus(beta=2)").native() is None
    for name in ("gelu", "silu", "mish", "relu6", "hard_swish", "selu"):
        assert parse_activation(name).native() is None, name


def test_parse_syntax_and_defaults():
    bound = parse_activation("leaky_relu(alpha=0.2)")
    assert bound.kwargs == {"alpha": 0.2}
    assert str(bound) == "leaky_relu(alpha=0.2)"
    assert str(parse_activation(" leaky_relu ")) == "leaky_relu"
    assert parse_activation("leaky_relu").kwargs == {"alpha": 0.01}  # PyTorch's default slope
    assert parse_activation("swish").name == "silu"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "unknown activation 'nope'; valid names: celu"),
        ("relu(alpha=1)", "has no parameter 'alpha'"),
        ("leaky_relu(0.2)", "cannot parse"),
        ("leaky_relu(alpha='x')", "must be key=number"),
        ("relu +", "cannot parse"),
        ("softplus(beta=0)", "beta must not be 0"),
        ("celu(alpha=0)", "alpha must not be 0"),
        ("hardtanh(min_val=1, max_val=-1)", "max_val must be greater than min_val"),
        ("leaky_relu(alpha=1e999)", "must be finite"),
    ],
)
def test_parse_errors_are_clear(text, message):
    with pytest.raises(GruOnnxUsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_activation(text)


def test_user_registered_onnxscript_activation(tmp_path):
    from onnxscript import opset18 as op

    @onnxscript.script()
    def quick_gelu(x):
        return x * op.Sigmoid(x * 1.702)

    register_activation("quick_gelu", lambda x: x * torch.sigmoid(1.702 * x), quick_gelu, overwrite=True)
    gru = CustomGRU(4, 6, activation="quick_gelu")
    args = (torch.randn(5, 3, 4),)
    result = graph_export(gru, args, tmp_path / "gru.onnx", strategy="unrolled")
    (y, _) = run_ort(result.path, {"input": args[0].numpy()})
    assert result.passed
    # Independent reference: the definition written out in NumPy.
    sd = {k: v.detach().double().numpy() for k, v in gru.state_dict().items()}
    want, _ = reference.gru_stack(args[0].double().numpy(), sd, activation_fn=lambda v: v / (1 + np.exp(-1.702 * v)))
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
