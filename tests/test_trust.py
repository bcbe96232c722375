"""No silent wrong numbers: one test per hole the trust review found (issue 7), each failing on
the code before its fix, plus the weight comparison and the checks beyond unit-scale inputs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU, ExportError, GruOnnxUsageError, register_activation
from gru_onnx.activations import NativeActivation
from gru_onnx.compat import file_support, tensorrt_reading
from gru_onnx.exporters.native import positional_parameters
from gru_onnx.workarounds import matmul_before_transpose

import flat
from conftest import numpy_reference, run_ort

STRATEGIES = ("unrolled", "loop", "native")


def _fresh_session(path) -> subprocess.CompletedProcess:
    """Open ``path`` in a default ONNX Runtime session in a new process (a crash kills only it)."""
    code = f"import onnxruntime as ort; ort.InferenceSession({str(path)!r}); print('loaded')"
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True)


# ---------------------------------------------------------------- 1. native softplus overflow


def test_onnxruntime_gru_softplus_overflows_where_pytorch_does_not():
    """Pins the runtime's behaviour that made softplus leave the native mapping."""
    hidden, x = 1, np.full((1, 1, 1), 100.0, np.float32)
    w = np.zeros((1, 3 * hidden, 1), np.float32)
    w[0, 2 * hidden, 0] = 1.0  # candidate pre-activation = x
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=hidden, activations=["Sigmoid", "Softplus"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.zeros((1, 3, 1), np.float32), "R")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    import onnxruntime as ort

    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})
    # z = sigmoid(0) = 0.5, n = softplus(100): PyTorch gives 100 (threshold 20), the kernel inf.
    assert np.isinf(y).all()
    assert torch.isfinite(0.5 * F.softplus(torch.tensor(100.0))).all()


def test_native_refuses_softplus_and_the_default_check_catches_such_a_range_bug(tmp_path):
    gru = CustomGRU(16, 32, activation="softplus")
    with pytest.raises(ExportError, match="cannot express activation 'softplus'"):
        flat.export(gru, (torch.randn(20, 2, 16),), tmp_path / "n.onnx", strategy="native")
    # The old mapping, as a user could still register it: unit-scale inputs pass, the default
    # check (which also runs x10 and x100) does not.
    register_activation(
        "softplus_as_native", F.softplus, lambda op, x: op.Softplus(x),
        native=lambda _p: NativeActivation("Softplus"), overwrite=True,
    )  # fmt: skip
    gru = CustomGRU(16, 32, activation="softplus_as_native")
    x = torch.randn(20, 2, 16)
    path = flat.export(gru, (x,), tmp_path / "n.onnx", strategy="native", check=False).path
    assert flat.check_parity(gru, path, (x,), scales=(1.0,)).passed
    report = flat.check_parity(gru, path, (x,))
    assert not report.passed and any("NaN/Inf mismatch" in line for line in report.failures())


# ---------------------------------------------------------------- 2. celu in float16, type errors


@pytest.mark.parametrize("strategy", ["unrolled", "loop"])
def test_celu_exports_in_float16(strategy, tmp_path):
    x = torch.randn(5, 2, 4)
    gru = CustomGRU(4, 6, activation="celu(alpha=0.5)")
    result = flat.export(gru, (x,), tmp_path / "c.onnx", strategy=strategy, dtype="float16")
    assert result.passed, result.parity.summary()
    # celu as the gate too: an unbounded gate lets the state grow without limit (inf in float64
    # at the check's x4 inputs), where any two float16 roundings part; compared at unit inputs.
    gru = CustomGRU(4, 6, activation="celu(alpha=0.5)", recurrent_activation="celu")
    path = flat.export(gru, (x,), tmp_path / "g.onnx", strategy=strategy, dtype="float16", check=False).path
    report = flat.check_parity(gru.half(), path, scales=(1.0,))
    assert report.passed, report.summary()


def test_an_op_given_a_type_it_does_not_take_is_a_clear_export_error(tmp_path, run_cli):
    register_activation("celu_float_only", F.celu, lambda op, x: op.Celu(x), overwrite=True)
    gru = CustomGRU(4, 6, activation="celu_float_only")
    with pytest.raises(ExportError, match="does not type-check"):
        flat.export(gru, (torch.randn(5, 2, 4),), tmp_path / "c.onnx", dtype="float16")
    assert not (tmp_path / "c.onnx").exists()


# ---------------------------------------------------------------- 3. opset 17 and newer ops


def test_opset_17_with_an_op_it_lacks_names_the_op(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = CustomGRU(4, 5, batch_first=True, activation="relu")

        def forward(self, x):
            return F.mish(self.gru(x)[0])

    with pytest.raises(ExportError, match=r"Mish, which ONNX defines from opset 18; export with --opset 18"):
        flat.export(Net(), (torch.randn(2, 5, 4),), tmp_path / "m.onnx", opset=17)


# ---------------------------------------------------------------- 4. reproducible files

_EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys, torch, gru_onnx
    from gru_onnx import CustomGRU
    torch.manual_seed(0)
    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", reset_after=False)
    gru_onnx.export(gru, (torch.randn(5, 2, 3),), sys.argv[1], graph=gru_onnx.GraphOptions(strategy=sys.argv[2]),
                    check=None)
    """
)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_inputs_give_byte_identical_files(strategy, tmp_path):
    digests = []
    for i in range(2):  # twice in this process ...
        torch.manual_seed(0)
        gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", reset_after=False)
        path = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / f"{i}.onnx", strategy=strategy, check=False)
        digests.append(hashlib.sha256(path.path.read_bytes()).hexdigest())
    other = tmp_path / "other.onnx"  # ... and once in another
    subprocess.run([sys.executable, "-c", _EXPORT_SCRIPT, str(other), strategy], check=True, capture_output=True)
    digests.append(hashlib.sha256(other.read_bytes()).hexdigest())
    assert len(set(digests)) == 1


# ---------------------------------------------------------------- 5. dynamic axes that turn static


class _WithH0(nn.Module):
    def __init__(self, layers=2):
        super().__init__()
        self.rnn = CustomGRU(4, 5, num_layers=layers, batch_first=True, activation="relu")
        self.head = nn.Linear(5, 3)

    def forward(self, x, h0):
        y, h = self.rnn(x, h0)
        return self.head(y), h


def test_an_axis_torch_export_fixes_silently_is_refused_naming_the_input(tmp_path):
    model = _WithH0()
    args = (torch.randn(2, 6, 4), torch.randn(2, 2, 5))
    with pytest.raises(ExportError, match=r"'h0' axis 0 \(batch\) = 2.*pass dynamic_shapes"):
        flat.export(model, args, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    batch = torch.export.Dim("batch")
    shapes = {"x": {0: batch}, "h0": {1: batch}}
    result = flat.export(model, args, tmp_path / "m.onnx", dynamic_shapes=shapes)
    assert result.passed, result.parity.summary()
    # The check ran at a batch other than the example's, and the file runs at any batch.
    assert {s["x"][0] for s in result.parity.samples} >= {2, 3}
    x, h0 = torch.randn(5, 6, 4), torch.randn(2, 5, 5)
    y, _ = run_ort(result.path, {"x": x.numpy(), "h0": h0.numpy()})
    np.testing.assert_allclose(y, model(x, h0)[0].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_a_one_layer_h0_names_the_input_and_dynamic_shapes(tmp_path):
    with pytest.raises(GruOnnxUsageError, match=r"input 'h0': axis 0 has size 1 .* pass dynamic_shapes"):
        flat.export(_WithH0(layers=1), (torch.randn(2, 6, 4), torch.randn(1, 2, 5)), tmp_path / "m.onnx")


# ---------------------------------------------------------------- 6. float16 files that crash ORT


def _transpose_matmul(perm: list[int]) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 5)).astype(np.float16), "W")
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=perm), helper.make_node("MatMul", ["t", "W"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["a", "b", "c"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)], [w],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.mark.parametrize("perm", [[1, 0, 2], [1, 2, 0]])
def test_onnxruntime_still_crashes_on_float16_transpose_matmul(perm, tmp_path):
    """Pins the ONNX Runtime bug the rewrite routes around (when this fails, ORT fixed it)."""
    onnx.save(_transpose_matmul(perm), tmp_path / "crash.onnx")
    proc = _fresh_session(tmp_path / "crash.onnx")
    assert proc.returncode != 0 and "Segmentation fault" in proc.stderr


@pytest.mark.parametrize("perm", [[1, 0, 2], [1, 2, 0]])
def test_the_rewrite_loads_and_computes_the_same(perm, tmp_path):
    import onnx_ir as ir

    model = ir.from_proto(_transpose_matmul(perm))
    assert matmul_before_transpose(model.graph) == 1
    onnx.save(ir.to_proto(model), tmp_path / "fixed.onnx")
    assert _fresh_session(tmp_path / "fixed.onnx").returncode == 0
    shape = [0, 0, 0]
    shape[perm[2]], shape[perm[0]], shape[perm[1]] = 8, 3, 2  # the contracted axis meets W's 8 rows
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float16)
    w = onnx.numpy_helper.to_array(_transpose_matmul(perm).graph.initializer[0])
    (y,) = run_ort(tmp_path / "fixed.onnx", {"x": x})
    np.testing.assert_allclose(y, np.transpose(x, perm).astype(np.float32) @ w.astype(np.float32), rtol=2e-3, atol=2e-3)


def test_a_float16_gru_followed_by_linear_loads_in_a_default_session(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = CustomGRU(4, 6, batch_first=True, activation="relu")
            self.head = nn.Linear(6, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    result = flat.export(Net(), (torch.randn(2, 5, 4),), tmp_path / "h.onnx", dtype="float16", check=False)
    proc = _fresh_session(result.path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_crash_while_a_runner_opens_reaches_stderr(tmp_path):
    onnx.save(_transpose_matmul([1, 0, 2]), tmp_path / "crash.onnx")
    code = (
        "from gru_onnx.runners import RUNNERS; "
        f"RUNNERS['cpu']({str(tmp_path / 'crash.onnx')!r}).open()"
    )
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "Segmentation fault" in proc.stderr


# ---------------------------------------------------------------- 7. check --model honours its options


def test_check_with_a_model_uses_inputs_samples_and_sizes(run_cli, tmp_path):
    (tmp_path / "wm.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            from gru_onnx import CustomGRU

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = CustomGRU(4, 5, batch_first=True, activation="relu")
                    self.head = nn.Linear(5, 2)

                def forward(self, x):
                    return self.head(self.rnn(x)[0])

            def make():
                torch.manual_seed(0)
                return Net(), (torch.randn(2, 6, 4),)
            """
        )
    )
    assert run_cli("export", "--model", "wm:make", "-o", "m.onnx", "--dynamic-seq").exit_code == 0
    result = run_cli("check", "m.onnx", "--model", "wm:make", "--samples", "2", "--batch", "5", "--seq-len", "9",
                     "--report", "r.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    samples = json.loads((tmp_path / "r.json").read_text())["samples"]
    assert [s["x"] for s in samples] == [[2, 6, 4], [5, 9, 4]]
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 6, 3), np.float32))
    result = run_cli("check", "m.onnx", "--model", "wm:make", "--inputs", "bad.npz")
    assert result.exit_code == 2 and "'x' has shape [2, 6, 3], the file takes [batch, seq, 4]" in result.output
    np.savez(tmp_path / "good.npz", x=np.ones((3, 7, 4), np.float32))
    result = run_cli("check", "m.onnx", "--model", "wm:make", "--inputs", "good.npz", "--report", "g.json")
    assert result.exit_code == 0 and json.loads((tmp_path / "g.json").read_text())["samples"][0]["x"] == [3, 7, 4]


# ---------------------------------------------------------------- 8. TensorRT reads alpha/beta by position


@pytest.mark.parametrize(
    ("acts", "expected"),
    [
        ([NativeActivation("Sigmoid"), NativeActivation("LeakyRelu", 0.2)], [0.2, 0.2]),
        ([NativeActivation("LeakyRelu", 0.3), NativeActivation("Tanh")], [0.3]),
        ([NativeActivation("HardSigmoid", 0.2, 0.5), NativeActivation("Elu", 2.0)], [0.2, 2.0]),
        ([NativeActivation("Sigmoid"), NativeActivation("Relu")], []),
        ([NativeActivation("Sigmoid"), NativeActivation("LeakyRelu", 0.2)] * 2, [0.2, 0.2, 0.2, 0.2]),
    ],
)
def test_alpha_lists_read_the_same_by_position_and_in_order(acts, expected):
    values = positional_parameters(acts, "alpha")
    assert values == pytest.approx(expected)
    takers = [a.alpha for a in acts if a.alpha is not None]
    assert values[: len(takers)] == pytest.approx(takers)  # ONNX Runtime: in order, takers only
    for i, a in enumerate(acts):  # TensorRT: by position
        if a.alpha is not None and i < len(values):
            assert values[i] == pytest.approx(a.alpha)


def test_native_leaky_relu_file_reads_right_on_tensorrt_and_old_files_are_flagged(tmp_path):
    gru = CustomGRU(3, 4, activation="leaky_relu(alpha=0.2)")
    result = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "n.onnx", strategy="native")
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


# ---------------------------------------------------------------- 9. lengths outside 1..T


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lengths_outside_the_sequence_mean_the_same_in_every_strategy(strategy, tmp_path):
    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu")
    seq = 6
    x, h0, lengths = torch.randn(seq, 3, 3), 0.5 * torch.randn(4, 3, 4), torch.tensor([seq, 2, 4])
    path = flat.export(gru, (x, h0, lengths), tmp_path / "m.onnx", strategy=strategy).path
    odd = np.array([0, -3, seq + 5, 3, 2], np.int64)  # nothing, nothing, all of it, part, part
    x5, h5 = torch.randn(seq, 5, 3), 0.5 * torch.randn(4, 5, 4)
    y, h_n = run_ort(path, {"input": x5.numpy(), "h0": h5.numpy(), "lengths": odd})
    want_y, want_h = numpy_reference(gru, x5, h5, torch.from_numpy(odd))  # mask t < length
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
    assert not y[:, :2].any()  # length <= 0: zero outputs ...
    np.testing.assert_allclose(h_n[:, :2], h5[:, :2].numpy(), rtol=0, atol=0)  # ... and h0 kept
    with pytest.raises(GruOnnxUsageError, match=r"lengths must lie in 1\.\.6"):
        gru(x5, h5, torch.from_numpy(odd))


# ---------------------------------------------------------------- 10. messages that point the right way


def test_time_made_dynamic_by_dynamic_shapes_is_dynamic_or_named(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = CustomGRU(4, 5, batch_first=True, activation="relu")

        def forward(self, x):
            return self.rnn(x)[0]

    shapes = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("time")},)
    result = flat.export(Net(), (torch.randn(2, 6, 4),), tmp_path / "m.onnx", dynamic_shapes=shapes)
    assert result.metadata["stacks"][0]["strategy"] == "loop" and result.passed
    with pytest.raises(ExportError, match=r"dynamic time axis \(time, from dynamic_shapes\).*unrolled strategy"):
        flat.export(Net(), (torch.randn(2, 6, 4),), tmp_path / "u.onnx", dynamic_shapes=shapes,
                        strategy="unrolled")  # fmt: skip


def test_a_shared_encoder_reads_sequences_of_different_lengths(tmp_path):
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = CustomGRU(4, 5, batch_first=True, activation="relu")

        def forward(self, a, b):
            return self.enc(a)[1] - self.enc(b)[1]

    model = Pair()
    args = (torch.randn(2, 5, 4), torch.randn(2, 7, 4))
    result = flat.export(model, args, tmp_path / "p.onnx", dynamic_seq=True)
    assert result.passed, result.parity.summary()
    a, b = torch.randn(3, 2, 4), torch.randn(3, 9, 4)
    (out,) = run_ort(result.path, {"a": a.numpy(), "b": b.numpy()})
    np.testing.assert_allclose(out, model(a, b).detach().numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- weights compared, not only outputs


def test_a_weight_change_too_small_for_the_outputs_is_caught(tmp_path, run_cli):
    torch.manual_seed(0)
    gru = CustomGRU(16, 32, activation="relu")
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    path = flat.export(gru, (torch.randn(20, 2, 16),), tmp_path / "m.onnx", check=False).path
    model = onnx.load(path)
    stored = gru_onnx.read_metadata(path)["stacks"][0]["weights"]["directions"]["_l0"]["weight_hh"][0]  # r/z rows
    for init in model.graph.initializer:
        if init.name == stored:
            array = numpy_helper.to_array(init).copy()
            array[5, 7] += 0.05
            init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, tmp_path / "changed.onnx")
    outputs_only = flat.check_parity(None, tmp_path / "changed.onnx")  # rebuilt from the file itself
    assert outputs_only.passed and not any(w.compared for w in outputs_only.weights)  # wiring only
    result = run_cli("check", "changed.onnx", "--checkpoint", "source.pt")
    assert result.exit_code == 1
    assert "weights of the GRU differ from the source: weight_hh_l0: 1 value(s) differ, worst 0.05 at [5, 7]" in (
        " ".join(result.output.split())
    )
    report = flat.check_parity(gru, tmp_path / "changed.onnx", (torch.randn(20, 2, 16),))
    assert not report.passed and report.weights[0].mismatches[0].name == "weight_hh_l0"
    assert run_cli("check", "m.onnx", "--checkpoint", "source.pt").exit_code == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_layout_reads_back_the_source_parameters(strategy, tmp_path):
    from gru_onnx.rebuild import state_dict_from_file

    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", reset_after=False)
    result = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy=strategy)
    assert result.parity.weights and all(w.passed for w in result.parity.weights)
    stored = state_dict_from_file(onnx.load(result.path), result.metadata["stacks"][0])
    if result.metadata["stacks"][0]["weights"]["layout"] != "folded":
        for name, tensor in gru.state_dict().items():
            np.testing.assert_array_equal(stored[name].numpy(), tensor.numpy())
        return
    # Folded biases: weights as they are; each bias sum as NumPy forms it, rounded once.
    source = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    for name in source:
        if name.startswith("weight"):
            np.testing.assert_array_equal(stored[name].numpy(), source[name])
        elif name.startswith("bias_ih"):  # reset before: every row of b_hh folds into b_ih
            want = (source[name].astype(np.float64) + source[name.replace("ih", "hh")]).astype(np.float32)
            np.testing.assert_array_equal(stored[name].numpy(), want)
            assert not stored[name.replace("ih", "hh")].numpy().any()


def test_weight_layouts_are_versioned(tmp_path):
    from gru_onnx.rebuild import state_dict_from_file

    gru = CustomGRU(3, 4, activation="relu")
    result = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="loop", check=False)
    model = onnx.load(result.path)
    stack = dict(result.metadata["stacks"][0])
    assert stack["weights"]["layout"] == "folded" and stack["weights"]["version"] == 1
    unversioned = {**stack, "weights": {k: v for k, v in stack["weights"].items() if k != "version"}}
    assert set(state_dict_from_file(model, unversioned)) == set(gru.state_dict())  # files from 0.1
    newer = {**stack, "weights": {**stack["weights"], "version": 99}}
    with pytest.raises(GruOnnxUsageError, match="version 99 is newer than this gru-onnx reads"):
        state_dict_from_file(model, newer)


# ---------------------------------------------------------------- the check looks beyond N(0, 1)


def test_default_samples_cover_larger_magnitudes_per_dtype(tmp_path, run_cli):
    gru = CustomGRU(3, 4, activation="relu")
    path = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", check=False).path
    report = flat.check_parity(None, path)
    assert [s["scale"] for s in report.samples] == [1.0, 10.0, 100.0]
    half = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "h.onnx", dtype="float16", check=False).path
    assert [s["scale"] for s in flat.check_parity(None, half).samples] == [1.0, 4.0, 1.0]
    result = run_cli("check", str(path), "--scale", "1000", "--samples", "2", "--report", "r.json")
    assert result.exit_code == 0, result.output
    import json

    assert [s["scale"] for s in json.loads((tmp_path / "r.json").read_text())["samples"]] == [1000.0, 1000.0]
