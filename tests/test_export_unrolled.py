"""Unrolled export: ONNX Runtime's results against NumPy, nn.GRU and ONNX Runtime's own GRU op."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxscript
import pytest
import torch
from onnx import helper
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU, GruOnnxUsageError, register_activation
from gru_onnx.activations import list_activations
from gru_onnx.rebuild import reference_from_file

import flat
from conftest import numpy_reference, run_ort

# layers, bidirectional, batch_first, with h0
SHAPES = [(1, False, False, False), (2, True, True, True), (3, False, False, True), (2, True, False, False)]


def export_and_run(gru, args, tmp_path, **kwargs):
    path = tmp_path / "gru.onnx"
    kwargs.setdefault("strategy", "unrolled")
    result = flat.export(gru, args, path, **kwargs)
    feeds = {name: a.numpy() for name, a in zip(["input", "h0"], args, strict=False)}
    return result, run_ort(path, feeds)


def make(layers=1, bidirectional=False, batch_first=False, **kw):
    return CustomGRU(4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, **kw)


def inputs(gru, batch=3, seq=5, with_h0=False):
    spec = gru.spec
    x = torch.randn((batch, seq, 4) if spec.batch_first else (seq, batch, 4))
    if not with_h0:
        return (x,)
    return x, 0.5 * torch.randn(spec.num_layers * spec.num_directions, batch, 6)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "with_h0"), SHAPES)
def test_shapes_and_reset_forms_match_numpy(layers, bidirectional, batch_first, with_h0, reset_after, tmp_path):
    gru = make(
        layers,
        bidirectional,
        batch_first,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        reset_after=reset_after,
    )
    args = inputs(gru, with_h0=with_h0)
    result, (y, h_n) = export_and_run(gru, args, tmp_path)
    want_y, want_h = numpy_reference(gru, *args)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    assert result.parity is not None and result.parity.passed
    assert result.parity.max_abs < 1e-5 * 100  # the check runs inputs up to x100; atol scales with them


@pytest.mark.parametrize("name", sorted(name for name, _, _ in list_activations()))
def test_every_registered_activation_exports_as_candidate_and_gate(name, tmp_path):
    gru = make(2, True, activation=name, recurrent_activation=name if name != "linear" else "sigmoid")
    args = inputs(gru, seq=4)
    result, (y, h_n) = export_and_run(gru, args, tmp_path)
    want_y, want_h = numpy_reference(gru, *args)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    assert result.passed


def test_tanh_export_equals_nn_gru(tmp_path):
    ref = nn.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    gru = make(2, True, True)
    gru.load_state_dict(ref.state_dict())
    args = inputs(gru, with_h0=True)
    _, (y, h_n) = export_and_run(gru, args, tmp_path)
    want_y, want_h = ref(*args)
    np.testing.assert_allclose(y, want_y.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n, want_h.detach().numpy(), rtol=1e-5, atol=1e-6)


def onnx_gru_op_reference(gru, x, native_f, native_g, tmp_path):
    """ONNX Runtime's own GRU op (one node per layer is enough for one layer) on gru's weights."""
    spec = gru.spec
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}

    def zrh(w):  # PyTorch r, z, n -> ONNX z, r, h
        r, z, n = np.split(w, 3)
        return np.concatenate([z, r, n])

    dirs = ["_l0", "_l0_reverse"][: spec.num_directions]
    W = np.stack([zrh(sd[f"weight_ih{d}"]) for d in dirs])
    R = np.stack([zrh(sd[f"weight_hh{d}"]) for d in dirs])
    B = np.stack([np.concatenate([zrh(sd[f"bias_ih{d}"]), zrh(sd[f"bias_hh{d}"])]) for d in dirs])
    # ONNX Runtime consumes activation_alpha/beta only for the activations that take them.
    acts, alphas, betas = [], [], []
    for _ in dirs:
        for native in (native_f, native_g):
            acts.append(native.name)
            alphas += [native.alpha] if native.alpha is not None else []
            betas += [native.beta] if native.beta is not None else []
    node = helper.make_node(
        "GRU",
        ["X", "W", "R", "B"],
        ["Y", "Y_h"],
        hidden_size=spec.hidden_size,
        direction="bidirectional" if spec.bidirectional else "forward",
        linear_before_reset=int(spec.reset_after),
        activations=acts,
        **({"activation_alpha": alphas} if alphas else {}),
        **({"activation_beta": betas} if betas else {}),
    )
    graph = helper.make_graph(
        [node],
        "ref",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, list(x.shape))],
        [
            helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Y_h", onnx.TensorProto.FLOAT, None),
        ],
        initializer=[onnx.numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (B, "B"))],
    )
    path = tmp_path / "native_ref.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), path)
    y, y_h = run_ort(path, {"X": x.numpy()})
    # ONNX Y is [T, D, B, H]; nn.GRU's output is [T, B, D*H].
    return y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1), y_h


@pytest.mark.parametrize(
    ("act", "rec"),
    [
        ("relu", "hard_sigmoid"),
        ("leaky_relu(alpha=0.1)", "sigmoid"),
        ("softsign", "hard_sigmoid"),
        ("elu(alpha=0.7)", "sigmoid"),
        ("tanh", "softsign"),
        ("linear", "sigmoid"),
    ],
)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_onnxruntime_gru_op(act, rec, reset_after, bidirectional, tmp_path):
    gru = make(1, bidirectional, activation=act, recurrent_activation=rec, reset_after=reset_after)
    (x,) = inputs(gru, seq=7)
    _, (y, h_n) = export_and_run(gru, (x,), tmp_path, check=False)
    want_y, want_h = onnx_gru_op_reference(
        gru, x, gru.spec.recurrent_activation.native(), gru.spec.activation.native(), tmp_path
    )
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


def test_graph_interface_metadata_and_weights_stored_once(tmp_path):
    gru = make(2, True, activation="leaky_relu(alpha=0.2)", reset_after=False)
    args = inputs(gru, seq=6, with_h0=True)
    result, _ = export_and_run(gru, args, tmp_path)
    model = onnx.load(result.path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input", "h0"]
    assert [o.name for o in model.graph.output] == ["output", "h_n"]
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "batch"
    assert model.graph.output[1].type.tensor_type.shape.dim[1].dim_param == "batch"
    # Each parameter stored once (not once per step), in the folded layout: weight_ih as it is,
    # weight_hh as two row blocks (r,z rows and n rows), and this reset-before GRU's biases as
    # one sum b_ih + b_hh per direction, as the metadata lists them.
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    stored = json.loads(next(p.value for p in model.metadata_props if p.key == "gru_onnx"))["stacks"][0]
    state = gru.state_dict()
    for d in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        entry = stored["weights"]["directions"][d]
        assert set(entry) == {"weight_ih", "weight_hh", "bias_x"}
        np.testing.assert_array_equal(arrays[entry["weight_ih"]], state[f"weight_ih{d}"].numpy())
        np.testing.assert_array_equal(np.concatenate([arrays[b] for b in entry["weight_hh"]]),
                                      state[f"weight_hh{d}"].numpy())  # fmt: skip
        bias = state[f"bias_ih{d}"].double().numpy() + state[f"bias_hh{d}"].double().numpy()
        np.testing.assert_array_equal(arrays[entry["bias_x"]], bias.astype(np.float32))
    assert len([n for n in arrays if n.startswith(("weight_", "bias_"))]) == 4 * 4
    # 6 steps x 2 layers x 2 directions: one recurrent Gemm (r,z) + one (n) each
    assert result.node_counts["Gemm"] == 6 * 2 * 2 * 2
    assert result.node_counts["MatMul"] == 4  # input projection: one per layer and direction
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == "gru_onnx"))
    assert meta["strategy"] == "unrolled" and meta["opset"] == 18
    (stack,) = meta["stacks"]
    assert stack["spec"]["activation"] == {"name": "leaky_relu", "params": {"alpha": 0.2}}
    assert stack["spec"]["reset_after"] is False and stack["seq_len"] == 6 and stack["has_h0"]
    assert stack["weights"]["directions"]["_l1_reverse"]["weight_hh"] == [
        "weight_hh_l1_reverse.rz",
        "weight_hh_l1_reverse.n",
    ]


@pytest.mark.parametrize("strategy", ["unrolled", "native"])
def test_pytorch_reference_rebuilt_from_the_file_alone(strategy, tmp_path):
    gru = make(2, True, True, activation="relu", recurrent_activation="hard_sigmoid")
    args = inputs(gru, seq=5)
    result, (y, _) = export_and_run(gru, args, tmp_path, strategy=strategy)
    model = onnx.load(result.path)
    rebuilt = reference_from_file(model, gru_onnx.read_metadata(model))
    assert rebuilt.spec == gru.spec
    source, back = gru.state_dict(), rebuilt.state_dict()
    for name, tensor in source.items():
        if name.startswith("weight") or strategy == "native":  # stored as they are
            torch.testing.assert_close(back[name], tensor, rtol=0, atol=0, msg=name)
    for name in (n for n in source if n.startswith("bias_ih")):  # folded: the sums the gates see
        hh = name.replace("_ih", "_hh")
        folded = (source[name].double() + source[hh].double()).float()
        torch.testing.assert_close(back[name] + back[hh], folded, rtol=0, atol=0, msg=name)
    np.testing.assert_allclose(rebuilt(*args)[0].detach().numpy(), y, rtol=1e-5, atol=1e-6)


class Tagger(nn.Module):
    """Embedding -> CustomGRU -> Linear: a whole model, batch first."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.encoder = CustomGRU(8, 12, num_layers=2, batch_first=True, bidirectional=True, activation="silu")
        self.head = nn.Linear(24, 5)

    def forward(self, tokens):
        y, _ = self.encoder(self.embed(tokens))
        return self.head(y)


def test_whole_model_with_dynamic_batch(tmp_path):
    model = Tagger()
    tokens = torch.randint(0, 50, (2, 9))
    result = flat.export(model, (tokens,), tmp_path / "tagger.onnx", strategy="unrolled")
    assert result.passed
    assert result.metadata["stacks"][0]["path"] == "encoder"
    assert result.metadata["stacks"][0]["weights"]["directions"]["_l0"]["weight_ih"] == "encoder.weight_ih_l0"
    onnx_model = onnx.load(result.path)
    (inp,) = onnx_model.graph.input
    batch_feed = torch.randint(0, 50, (5, 9))  # another batch size than the example
    (logits,) = run_ort(result.path, {inp.name: batch_feed.numpy()})
    with torch.no_grad():
        want = model(batch_feed).numpy()
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5)
    assert logits.shape == (5, 9, 5)


@pytest.mark.parametrize("opset", [17, 19, 20, 23])
def test_each_opset_exports_gelu_and_mish(opset, tmp_path):
    gru = make(1, activation="gelu", recurrent_activation="sigmoid")
    args = inputs(gru)
    result, (y, _) = export_and_run(gru, args, tmp_path, opset=opset)
    model = onnx.load(result.path)
    assert next(o.version for o in model.opset_import if o.domain == "") == opset
    assert ("Gelu" in result.node_counts) == (opset >= 20)
    np.testing.assert_allclose(y, numpy_reference(gru, *args)[0], rtol=1e-4, atol=1e-5)


def test_user_registered_onnxscript_activation(tmp_path):
    from onnxscript import opset18 as op

    @onnxscript.script()
    def quick_gelu(x):
        return x * op.Sigmoid(x * 1.702)

    register_activation("quick_gelu", lambda x: x * torch.sigmoid(1.702 * x), quick_gelu, overwrite=True)
    gru = make(1, activation="quick_gelu")
    args = inputs(gru)
    result, (y, _) = export_and_run(gru, args, tmp_path)
    assert result.passed
    # Independent reference: the definition written out in NumPy.
    sd = {k: v.detach().double().numpy() for k, v in gru.state_dict().items()}
    import reference

    want, _ = reference.gru_stack(args[0].double().numpy(), sd, activation_fn=lambda v: v / (1 + np.exp(-1.702 * v)))
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_errors_leave_no_file(tmp_path):
    out = tmp_path / "never.onnx"
    with pytest.raises(GruOnnxUsageError, match="contains no CustomGRU"):
        flat.export(nn.Linear(3, 3), (torch.randn(2, 3),), out)
    with pytest.raises(GruOnnxUsageError, match="'nope'; valid strategies: auto, loop, native, unrolled"):
        flat.export(make(), inputs(make()), out, strategy="nope")
    with pytest.raises(GruOnnxUsageError, match="opset 12 is not supported"):
        flat.export(make(), inputs(make()), out, opset=12)
    assert list(tmp_path.iterdir()) == []


def test_parity_failure_is_reported(tmp_path):
    register_activation("mismatched", torch.relu, lambda op, x: op.Tanh(x), overwrite=True)
    gru = make(1, activation="mismatched")
    result = flat.export(gru, inputs(gru), tmp_path / "bad.onnx", strategy="unrolled")
    assert not result.passed
    (runtime,) = result.parity.results
    assert runtime.status == "failed"
    assert all(not o.passed and o.max_abs > 1e-3 for o in runtime.outputs)
