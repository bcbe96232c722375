"""The step at the floor: node counts per step, the folded-weights layout, files written
before it, opset 17, and the Scan-output rule that ONNX Runtime needs."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU

import flat
from conftest import numpy_reference, run_ort

DATA = Path(__file__).parent / "data"
LEGACY = ("legacy_loop_relu", "legacy_unrolled_gelu_reset_before")


def _scan_bodies(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    return [a.g for n in model.graph.node if n.op_type == "Scan" for a in n.attribute if a.name == "body"]


def _export(tmp_path, name="m.onnx", seq=6, lengths=False, **options):
    export = {k: options.pop(k) for k in ("strategy", "opset", "dtype") if k in options}
    torch.manual_seed(0)
    gru = CustomGRU(4, 5, **options)
    x = torch.randn(seq, 3, 4)
    lens = torch.tensor([seq, 2, 1]) if lengths else None
    return gru, (x, None, lens), flat.export(gru, (x, None, lens), tmp_path / name, **export)


# ---------------------------------------------------------------- nodes per step

LOOP_BODIES = [
    # reset after: Gemm + Sigmoid fuse into one FusedGemm in ONNX Runtime
    ({"activation": "relu"}, ["Gemm", "Sigmoid", "Split", "Gemm", "Mul", "Add", "Relu", "Sub", "Mul", "Add"]),
    # reset before: W_hn (r * h) + x_n is one Gemm with C
    ({"activation": "relu", "reset_after": False},
     ["Gemm", "Sigmoid", "Split", "Mul", "Gemm", "Relu", "Sub", "Mul", "Add"]),
    # erf gelu below opset 20: the state carried times sqrt(2), the activation y * (1 + erf(y))
    ({"activation": "gelu"},
     ["Gemm", "Sigmoid", "Split", "Gemm", "Mul", "Add", "Erf", "Add", "Mul", "Sub", "Mul", "Add"]),
    ({"activation": "gelu", "opset": 20},
     ["Gemm", "Sigmoid", "Split", "Gemm", "Mul", "Add", "Gelu", "Sub", "Mul", "Add"]),
    # other gates: the registry's emitter in Sigmoid's place
    ({"activation": "tanh", "recurrent_activation": "hard_sigmoid"},
     ["Gemm", "HardSigmoid", "Split", "Gemm", "Mul", "Add", "Tanh", "Sub", "Mul", "Add"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "ops"), LOOP_BODIES, ids=["relu", "relu-reset-before", "gelu-18", "gelu-20", "hard-sigmoid"]
)
def test_loop_body_is_the_floor(options, ops, tmp_path):
    _, _, result = _export(tmp_path, strategy="loop", **options)
    assert result.passed, result.parity.summary()
    (body,) = _scan_bodies(onnx.load(result.path))
    assert [n.op_type for n in body.node] == ops


@pytest.mark.parametrize("reset_after", [True, False])
def test_unrolled_step_has_no_per_step_reshaping(reset_after, tmp_path):
    counts = {}
    for seq in (2, 7):
        _, _, result = _export(tmp_path, f"u{seq}.onnx", seq=seq, strategy="unrolled", activation="relu",
                               reset_after=reset_after)  # fmt: skip
        counts[seq] = collections.Counter(n.op_type for n in onnx.load(result.path).graph.node)
    per_step = {op: (counts[7][op] - counts[2][op]) / 5 for op in counts[7] | counts[2]}
    per_step = {op: c for op, c in per_step.items() if c}
    want = {"Gemm": 2, "Sigmoid": 1, "Split": 1, "Mul": 2, "Relu": 1, "Sub": 1, "Add": 2 if reset_after else 1}
    assert per_step == want  # no Gather, Squeeze, Unsqueeze, Concat per step
    assert counts[7]["Split"] == 7 + 1 and counts[7]["Concat"] <= 2  # one Split cuts all steps, one Concat joins


# ---------------------------------------------------------------- ONNX Runtime's Scan trap


@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_no_scan_body_lists_a_value_twice_among_its_outputs(activation, lengths, tmp_path):
    """ONNX Runtime loads and runs a Scan body listing one value twice among its outputs, and
    returns wrong numbers from step 2 on; every body we write has distinct outputs, and the
    numbers agree with the reference past step 2."""
    gru, (x, h0, lens), result = _export(tmp_path, strategy="loop", activation=activation, bidirectional=True,
                                         lengths=lengths, seq=6)  # fmt: skip
    bodies = _scan_bodies(onnx.load(result.path))
    assert len(bodies) == 2
    for body in bodies:
        names = [o.name for o in body.output]
        inputs = {i.name for i in body.input}
        assert len(names) == len(set(names)) and not inputs & set(names)
    feeds = {"input": x.numpy()} | ({"lengths": lens.numpy()} if lens is not None else {})
    y, h_n = run_ort(result.path, feeds)
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- opset 17


@pytest.mark.parametrize("strategy", ["loop", "unrolled"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_opset_17_files_use_split_sizes_and_match(strategy, reset_after, tmp_path):
    gru, (x, h0, lens), result = _export(tmp_path, strategy=strategy, opset=17, activation="gelu",
                                         reset_after=reset_after, bidirectional=True, lengths=True)  # fmt: skip
    model = onnx.load(result.path)
    assert [o.version for o in model.opset_import if o.domain == ""] == [17]
    nodes = list(model.graph.node) + [n for b in _scan_bodies(model) for n in b.node]
    splits = [n for n in nodes if n.op_type == "Split"]
    assert splits and all(len(n.input) == 2 and not any(a.name == "num_outputs" for a in n.attribute) for n in splits)
    y, h_n = run_ort(result.path, {"input": x.numpy(), "lengths": lens.numpy()})
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the folded layout


@pytest.mark.parametrize("reset_after", [True, False])
def test_folded_biases_are_the_sums_of_the_source_biases(reset_after, tmp_path):
    gru, _, result = _export(tmp_path, strategy="loop", activation="relu", reset_after=reset_after)
    weights = result.metadata["stacks"][0]["weights"]
    assert (weights["layout"], weights["version"]) == ("folded", 1)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(result.path).graph.initializer}
    entry = weights["directions"]["_l0"]
    b_ih, b_hh = (gru.state_dict()[k].double().numpy() for k in ("bias_ih_l0", "bias_hh_l0"))
    want = b_ih + np.r_[b_hh[:10], np.zeros(5) if reset_after else b_hh[10:]]
    np.testing.assert_allclose(stored[entry["bias_x"]], want, rtol=1e-7, atol=1e-7)
    assert ("bias_hn" in entry) == reset_after
    if reset_after:
        np.testing.assert_array_equal(stored[entry["bias_hn"]], b_hh[10:].astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([stored[n] for n in entry["weight_hh"]]),
                                  gru.state_dict()["weight_hh_l0"].numpy())  # fmt: skip


def test_a_changed_folded_bias_fails_the_weight_check(tmp_path, run_cli):
    gru, _, result = _export(tmp_path, strategy="unrolled", activation="relu")
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    name = result.metadata["stacks"][0]["weights"]["directions"]["_l0"]["bias_x"]
    model = onnx.load(result.path)
    for init in model.graph.initializer:
        if init.name == name:
            array = numpy_helper.to_array(init).copy()
            array[1] += 1e-3  # r gate, unit 1
            init.CopyFrom(numpy_helper.from_array(array, name))
    onnx.save(model, tmp_path / "changed.onnx")
    assert run_cli("check", "m.onnx", "--checkpoint", "source.pt").exit_code == 0
    result = run_cli("check", "changed.onnx", "--checkpoint", "source.pt")
    assert result.exit_code == 1
    assert "bias_rz_l0: 1 value(s) differ" in " ".join(result.output.split())


def test_rebuilt_from_a_folded_file_computes_the_source_function(tmp_path):
    from gru_onnx.rebuild import reference_from_file

    gru, (x, h0, lens), result = _export(tmp_path, strategy="loop", activation="gelu", reset_after=True,
                                         num_layers=2, bidirectional=True, lengths=True)  # fmt: skip
    rebuilt = reference_from_file(onnx.load(result.path), result.metadata)
    with torch.no_grad():
        y, h_n = rebuilt(x, None, lens)
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.numpy(), want_h, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- files written before the folding


@pytest.mark.parametrize("name", LEGACY)
def test_files_written_before_the_folding_still_pass_check(name, tmp_path, run_cli):
    shutil.copy(DATA / f"{name}.onnx", tmp_path / "old.onnx")
    shutil.copy(DATA / f"{name}.pt", tmp_path / "old.pt")
    meta = gru_onnx.read_metadata(tmp_path / "old.onnx")
    assert meta["stacks"][0]["weights"]["layout"] == "torch"
    assert run_cli("check", "old.onnx").exit_code == 0  # rebuilt from the file by the torch rule
    result = run_cli("check", "old.onnx", "--checkpoint", "old.pt")  # stored weights vs the source
    assert result.exit_code == 0, result.output
    assert "match the source" in result.output
    source = torch.load(tmp_path / "old.pt", weights_only=True)
    source[next(k for k in source if k.startswith("weight_hh"))][0, 0] += 0.05
    torch.save(source, tmp_path / "other.pt")
    assert run_cli("check", "old.onnx", "--checkpoint", "other.pt").exit_code == 1


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("strategy", ["loop", "unrolled"])
def test_scaled_gelu_matches_and_its_weights_read_back(strategy, reset_after, tmp_path, run_cli):
    gru, (x, h0, lens), result = _export(tmp_path, strategy=strategy, activation="gelu", reset_after=reset_after,
                                         num_layers=2, bidirectional=True, lengths=True)  # fmt: skip
    weights = result.metadata["stacks"][0]["weights"]
    assert weights["state_scale"] == pytest.approx(2**0.5) and weights["input_scale"] == pytest.approx(2**-0.5)
    assert result.passed and all(w.passed for w in result.parity.weights), result.parity.summary()
    for scale in (1.0, 30.0):  # large inputs: the scaling must not cost range
        y, h_n = run_ort(result.path, {"input": scale * x.numpy(), "lengths": lens.numpy()})
        want_y, want_h = numpy_reference(gru, scale * x, h0, lens)
        np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5 * scale)
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    assert run_cli("check", "m.onnx", "--checkpoint", "source.pt").exit_code == 0
    source = gru.state_dict()
    source["weight_hh_l1"][12, 3] += 0.01  # an n row of a scaled block
    torch.save(source, tmp_path / "other.pt")
    result = run_cli("check", "m.onnx", "--checkpoint", "other.pt")
    assert result.exit_code == 1 and "weight_hh_l1: 1 value(s) differ" in " ".join(result.output.split())


def test_float16_and_opset_20_keep_the_plain_gelu(tmp_path):
    _, _, half = _export(tmp_path, "h.onnx", strategy="loop", activation="gelu", dtype="float16")
    _, _, new = _export(tmp_path, "n.onnx", strategy="loop", activation="gelu", opset=20)
    for result in (half, new):
        assert result.passed, result.parity.summary()
        assert "state_scale" not in result.metadata["stacks"][0]["weights"]


# ---------------------------------------------------------------- target-aware auto

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
    result = flat.export(gru, (x,), tmp_path / "m.onnx", target=target, dtype=dtype, check=seq < 100)
    assert result.strategy == want and result.metadata["target"] == target
    assert result.passed, result.parity.summary()
    runtime = {"cpu": "onnxruntime-cpu", "openvino": "openvino", "tensorrt": "onnxruntime-tensorrt"}.get(target)
    if runtime:  # what auto picked runs as intended on the target, by the compat table
        assert {r.runtime: r.status for r in file_support(result.metadata)}[runtime] == "yes"
    inspected = run_cli("inspect", "m.onnx")
    assert ["target", target] in [line.split() for line in inspected.output.splitlines()]


def test_target_on_the_command_line_and_bad_targets(tmp_path, run_cli):
    result = run_cli("export", "--activation", "relu", "--target", "cpu", "-o", "c.onnx")
    assert result.exit_code == 0, result.output
    assert gru_onnx.read_metadata(tmp_path / "c.onnx")["stacks"][0]["strategy"] == "native"
    with pytest.raises(gru_onnx.GruOnnxUsageError, match="unknown target 'gpu'"):
        flat.export(CustomGRU(4, 5), (torch.randn(3, 2, 4),), tmp_path / "x.onnx", target="gpu")
    assert not (tmp_path / "x.onnx").exists()
    assert run_cli("export", "--target", "gpu").exit_code == 2
