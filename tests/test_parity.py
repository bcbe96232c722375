"""Parity checking: the comparator, the runners, reports, the check command and the pytest helper."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.check.compare import compare
from gru_onnx.report import schema, to_json
from gru_onnx.runners import RUNNERS, RuntimeUnavailable
from gru_onnx.runners.onnxruntime import cuda_device_problem, fallback_nodes
from gru_onnx.samples import generate_samples
from gru_onnx.testing import assert_parity

import flat

# ------------------------------------------------------------------------------ the comparator


def test_compare_counts_elements_beyond_atol_plus_rtol():
    ref = np.array([[1.0, 2.0], [3.0, 100.0]])
    act = ref + np.array([[1e-6, 3e-4], [0.0, 5e-3]])
    c = compare("y", [ref], [act], atol=1e-5, rtol=1e-4, time_axis=0)
    # 3e-4 > 1e-5 + 1e-4 * 2 fails; 5e-3 <= 1e-5 + 1e-4 * 100 passes although it is the largest
    assert c.mismatches == 1 and not c.passed
    assert c.worst_index == (1, 1) and c.max_abs == pytest.approx(5e-3)
    assert c.per_step_max_abs == pytest.approx((3e-4, 5e-3))
    assert c.first_failing_step == 0


def test_relative_error_is_floored_at_atol():
    c = compare("y", [np.array([0.0, 1e-300])], [np.array([1e-6, 1e-300 + 1e-6])], atol=1e-5, rtol=0)
    assert c.passed and c.max_rel == pytest.approx(1e-6 / 1e-5)


def test_nan_and_inf_in_the_same_place_are_equal():
    ref = np.array([1.0, np.nan, np.inf, -np.inf])
    c = compare("y", [ref], [ref.copy()], atol=0, rtol=0)
    assert c.passed and c.max_abs == 0 and c.nan_mismatch is None
    c = compare("y", [ref], [np.array([1.0, 2.0, np.inf, np.inf])], atol=1, rtol=1)
    assert not c.passed and c.nan_mismatch == (1,) and c.mismatches == 2 and math.isinf(c.max_abs)


def test_samples_aggregate_and_curves_of_different_lengths():
    ref_a, ref_b = np.zeros((3, 2)), np.zeros((5, 2))
    act_a, act_b = ref_a.copy(), ref_b.copy()
    act_a[2, 1] = 1e-3
    act_b[4, 0] = 2e-3
    c = compare("y", [ref_a, ref_b], [act_a, act_b], atol=1e-5, rtol=0, time_axis=0)
    assert c.worst_sample == 1 and c.worst_index == (4, 0) and c.mismatches == 2
    assert c.per_step_max_abs == pytest.approx((0, 0, 1e-3, 0, 2e-3))
    assert c.first_failing_step == 2


finite = arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e6, 1e6))
anything = arrays(np.float64, st.integers(1, 20), elements=st.floats(allow_nan=True, allow_infinity=True))


@given(anything)
@settings(max_examples=200, deadline=None)
def test_an_array_always_matches_itself(x):
    c = compare("y", [x], [x.copy()], atol=0.0, rtol=0.0, time_axis=0)
    assert c.passed and c.max_abs == 0 and c.mismatches == 0


@given(finite, st.floats(1e-3, 10.0))
@settings(max_examples=200, deadline=None)
def test_a_shift_beyond_tolerance_always_fails(x, shift):
    atol, rtol = 1e-4, 1e-4
    bump = atol + rtol * np.abs(x) + shift * (1 + np.abs(x)) * 1e-3
    c = compare("y", [x], [x + bump], atol=atol, rtol=rtol, time_axis=0)
    assert not c.passed and c.mismatches == x.size and c.first_failing_step == 0


# ------------------------------------------------------------------------------ files to check


@pytest.fixture
def exported(tmp_path):
    """A 2-layer bidirectional relu GRU, unrolled, plus its source checkpoint."""
    torch.manual_seed(1)
    gru = CustomGRU(4, 6, num_layers=2, bidirectional=True, activation="relu", recurrent_activation="hard_sigmoid")
    torch.save(gru.state_dict(), tmp_path / "source.pt")
    x = torch.randn(12, 2, 4)
    result = flat.export(gru, (x,), tmp_path / "gru.onnx", strategy="unrolled")
    assert result.passed
    return gru, x, result.path


def test_check_passes_on_cpu_and_openvino(exported, run_cli):
    pytest.importorskip("openvino", reason="OpenVINO is an optional extra (gru-onnx[openvino])")
    _, _, path = exported
    result = run_cli("check", str(path), "--provider", "cpu", "--provider", "openvino", "--samples", "2")
    assert result.exit_code == 0, result.output
    assert "ort-cpu" in result.output and "openvino" in result.output and "FAIL" not in result.output
    assert "INFERENCE_PRECISION_HINT=f32" in result.output
    report = flat.check_parity(None, path, providers=("cpu", "openvino"), scales=(1.0,))
    assert [r.status for r in report.results] == ["passed", "passed"] and report.reference == "metadata"
    assert max(o.max_abs for r in report.results for o in r.outputs) < 1e-5


def test_native_file_on_openvino(tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is an optional extra (gru-onnx[openvino])")
    gru = CustomGRU(3, 5, bidirectional=True, batch_first=True, activation="relu")
    x = torch.randn(2, 7, 3)
    lengths = torch.tensor([7, 3])
    path = flat.export(gru, (x, None, lengths), tmp_path / "n.onnx", strategy="native", dynamic_seq=True).path
    report = flat.check_parity(None, path, providers=("openvino",), samples=3)
    assert report.passed, report.summary()
    assert [len(s["lengths_values"]) for s in report.samples] == [3, 3, 3]


def perturb(path, out, name, delta):
    """Add ``delta`` to parameter ``name`` (all its stored row blocks, ``name.rz``/``name.n``)."""
    model = onnx.load(path)
    for init in model.graph.initializer:
        if init.name == name or init.name.startswith(f"{name}."):
            array = onnx.numpy_helper.to_array(init) + np.float32(delta)
            init.CopyFrom(onnx.numpy_helper.from_array(array.astype(np.float32), init.name))
    onnx.save(model, out)


def test_perturbed_weights_fail_and_name_output_and_step(exported, run_cli, tmp_path):
    _, _, path = exported
    perturb(path, tmp_path / "bad.onnx", "weight_hh_l1", 1e-3)
    # Checked against the file's own weights the perturbation is invisible ...
    assert run_cli("check", "bad.onnx").exit_code == 0
    # ... against the source weights it is caught.
    result = run_cli("check", "bad.onnx", "--checkpoint", "source.pt", "--report", "r.json", "--plot", "e.png")
    assert result.exit_code == 1, result.output
    assert "parity check failed" in result.output
    # W_hh meets the zero initial state at step 0, so the error starts at step 1.
    assert "output 'output'" in result.output and "first failing time step 1" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    (cpu,) = report["runtimes"]
    output = next(o for o in cpu["outputs"] if o["name"] == "output")
    assert cpu["status"] == "failed" and output["first_failing_step"] == 1 and len(output["per_step_max_abs"]) == 12
    assert output["per_step_max_abs"][0] < 1e-5 < output["per_step_max_abs"][1]
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content", [b"", b"this is not an onnx file", "truncated"])
def test_unreadable_files_exit_2_with_one_line(exported, run_cli, tmp_path, content):
    _, _, path = exported
    if content == "truncated":
        content = path.read_bytes()[: len(path.read_bytes()) // 3]
    (tmp_path / "broken.onnx").write_bytes(content)
    result = run_cli("check", "broken.onnx")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert run_cli("check", "nowhere.onnx").exit_code == 2


def test_provider_all_skips_what_this_machine_lacks(exported, run_cli):
    _, _, path = exported
    result = run_cli("check", str(path), "--provider", "all", "--report", "all.json")
    assert result.exit_code == 0, result.output
    statuses = {r["runtime"]: r for r in json.loads(Path("all.json").read_text())["runtimes"]}
    assert statuses["onnxruntime-cpu"]["status"] == "passed"
    for gpu in ("onnxruntime-cuda", "onnxruntime-tensorrt"):
        assert statuses[gpu]["status"] in ("passed", "skipped")
        if statuses[gpu]["status"] == "skipped":
            assert "execution provider not available:" in statuses[gpu]["reason"]


def test_a_single_missing_runtime_is_one_line_exit_2(exported, run_cli):
    if cuda_device_problem() is None:
        pytest.skip("this machine has a CUDA device")
    _, _, path = exported
    result = run_cli("check", str(path), "--provider", "cuda")
    assert result.exit_code == 2
    assert result.output.startswith("Error: CUDA execution provider not available: ")
    assert len(result.output.strip().splitlines()) == 1


def test_json_report_validates_against_the_schema(exported, run_cli, tmp_path):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev extra")
    _, _, path = exported
    perturb(path, tmp_path / "bad.onnx", "bias_ih_l0", 1e-2)
    for name, extra in (("gru.onnx", []), ("bad.onnx", ["--checkpoint", "source.pt"])):
        run_cli("check", name, "--provider", "all", "--report", "r.json", *extra)
        jsonschema.validate(json.loads((tmp_path / "r.json").read_text()), schema())
    # Non-finite numbers are strings in the JSON, which the schema allows.
    report = flat.check_parity(None, path)
    data = to_json(report)
    data["runtimes"][0]["outputs"][0]["max_abs"] = "nan"
    jsonschema.validate(data, schema())
    data["runtimes"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())


def test_plot_is_a_real_png(exported, run_cli, tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="matplotlib is the plot extra")
    _, _, path = exported
    assert run_cli("check", str(path), "--plot", "errors.png").exit_code == 0
    pixels = image.imread(tmp_path / "errors.png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0


def test_inputs_from_npz(exported, run_cli, tmp_path):
    _, x, path = exported
    np.savez(tmp_path / "in.npz", input=x.numpy())
    result = run_cli("check", str(path), "--inputs", "in.npz", "--report", "r.json")
    assert result.exit_code == 0, result.output
    (sample,) = json.loads((tmp_path / "r.json").read_text())["samples"]
    assert sample.pop("magnitude") >= 1.0
    assert sample == {"input": [12, 2, 4], "scale": 1.0}
    np.savez(tmp_path / "wrong.npz", x=x.numpy())
    result = run_cli("check", str(path), "--inputs", "wrong.npz")
    assert result.exit_code == 2 and "has no array 'input'" in result.output


def test_dynamic_files_are_checked_at_many_lengths(tmp_path):
    gru = CustomGRU(3, 4, activation="gelu", batch_first=True)
    x = torch.randn(2, 5, 3)
    path = flat.export(gru, (x, None, torch.tensor([5, 2])), tmp_path / "d.onnx", dynamic_seq=True).path
    model = onnx.load(path)
    samples = generate_samples(model, gru_onnx.read_metadata(model), count=4, seq_len=30, batch=3, seed=0)
    seqs = [s.args[0].shape[1] for s in samples]
    assert seqs[0] == 30 and seqs[1] == 1 and all(1 <= t <= 30 for t in seqs)
    for s in samples:
        lengths = s.feeds["lengths"]
        assert lengths[0] == s.args[0].shape[1] and lengths[-1] == 1 and lengths.dtype == np.int64
    report = flat.check_parity(None, path, samples=4, seq_len=30, batch=3)
    assert report.passed and len(report.samples) == 4


FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 8)
        self.rnn = CustomGRU(8, 8, batch_first=True, activation="mish")

    def forward(self, x):
        return self.rnn(self.proj(x))[0]

def net():
    torch.manual_seed(0)
    return Net(), (torch.randn(2, 6, 5),)
"""


def test_whole_models_need_their_factory(run_cli, tmp_path):
    (tmp_path / "nets.py").write_text(textwrap.dedent(FACTORY))
    assert run_cli("export", "--model", "nets:net", "-o", "net.onnx").exit_code == 0
    result = run_cli("check", "net.onnx")
    assert result.exit_code == 2 and "holds a whole model" in result.output and "--model" in result.output
    result = run_cli("check", "net.onnx", "--model", "nets:net", "--provider", "all")
    assert result.exit_code == 0, result.output
    result = run_cli("check", "net.onnx", "--model", "nets:net", "--checkpoint", "x.pt")
    assert result.exit_code == 2 and "cannot be combined" in result.output


def test_npz_inputs_are_cast_and_validated(exported, run_cli, tmp_path):
    _, x, path = exported
    np.savez(tmp_path / "f64.npz", input=x.double().numpy())
    assert run_cli("check", str(path), "--inputs", "f64.npz").exit_code == 0
    np.savez(tmp_path / "short.npz", input=x[:5].numpy())
    result = run_cli("check", str(path), "--inputs", "short.npz")
    assert result.exit_code == 2 and "'input' has shape [5, 2, 4], the file takes [12, batch, 4]" in result.output


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        (np.array([7, 0]), "lengths must lie in 1..6"),
        (np.array([5.9, 2.0]), "'lengths' is float64, the file takes int64"),
    ],
)
def test_npz_lengths_are_checked(tmp_path, run_cli, lengths, message):
    gru = CustomGRU(3, 4, activation="relu")
    x = torch.randn(6, 2, 3)
    flat.export(gru, (x, None, torch.tensor([6, 2])), tmp_path / "len.onnx")
    np.savez(tmp_path / "bad.npz", input=x.numpy(), lengths=lengths)
    result = run_cli("check", "len.onnx", "--inputs", "bad.npz")
    assert result.exit_code == 2 and message in result.output


def test_a_model_that_produces_nan_passes_with_a_warning(tmp_path, run_cli):
    from gru_onnx import register_activation

    def zero_by_zero(op, x):
        return op.Div(op.Sub(x, x), op.Sub(x, x))

    register_activation("nan_act", lambda x: (x - x) / (x - x), zero_by_zero, overwrite=True)
    gru = CustomGRU(3, 4, activation="nan_act")
    result = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "nan.onnx", strategy="unrolled")
    assert result.passed  # NaN where PyTorch has NaN counts as equal ...
    assert any("non-finite values in 'output'" in w for w in result.parity.warnings)  # ... but it is said
    assert re.search(r"warning: the PyTorch reference has (\d+) of \1 non-finite values", result.parity.summary())


def test_openvino_errors_keep_the_cause():
    from gru_onnx.check.runs import one_line

    text = (
        "Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'false' failed at src/x.cpp:151:\n"
        "FrontEnd API failed with OpConversionFailure:\nModel wasn't fully converted.\n-- Scan-18: body outputs (2)"
    )
    assert one_line(RuntimeError(text)) == "Model wasn't fully converted. | -- Scan-18: body outputs (2)"


# ------------------------------------------------------------------------------ runners


def test_profiler_placement_is_read_from_a_real_profile(tmp_path):
    """ONNX Runtime's profiler says where each node ran; the parser finds GRU nodes."""
    import onnxruntime as ort

    gru = CustomGRU(3, 4, activation="relu")
    path = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / "n.onnx", strategy="native", check=False).path
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "prof")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": np.zeros((5, 2, 3), np.float32)})
    profile = json.loads(Path(session.end_profiling()).read_text())
    assert fallback_nodes(profile, "CPUExecutionProvider") == []
    moved = fallback_nodes(profile, "CUDAExecutionProvider")  # as seen from a CUDA session
    assert [(op, where) for _, op, where in moved] == [("GRU", "CPUExecutionProvider")]


def test_runner_interface_and_missing_runtimes(exported):
    _, x, path = exported
    with RUNNERS["cpu"](path) as runner:
        y, h_n = runner.run({"input": x.numpy()})
    assert y.shape == (12, 2, 12) and h_n.shape == (4, 2, 6)
    if cuda_device_problem() is not None:
        with pytest.raises(RuntimeUnavailable, match="CUDA execution provider not available"):
            RUNNERS["cuda"](path).open()


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gpu_parity(provider, dtype, tmp_path):
    """Runs where a GPU is present (the device machine); elsewhere it is skipped with the reason."""
    try:
        RUNNERS[provider](tmp_path / "none.onnx").open()
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    except Exception:  # the device works; the file simply does not exist
        pass
    gru = CustomGRU(8, 16, num_layers=2, bidirectional=True, activation="gelu", batch_first=True)
    x = torch.randn(4, 50, 8)
    result = flat.export(gru, (x,), tmp_path / "g.onnx", strategy="loop", dtype=dtype, providers=(provider,))
    assert result.parity.results[0].status == "passed", result.parity.summary()


# ------------------------------------------------------------------------------ users' CI


def test_assert_parity_raises_with_the_table(exported, tmp_path):
    gru, x, path = exported
    report = assert_parity(gru, path, (x,))
    assert report.passed
    perturb(path, tmp_path / "bad.onnx", "weight_ih_l0", 5e-3)
    failed = r"(?s)ONNX parity failed: weights of the GRU differ.*onnxruntime-cpu: output 'output'.*ort-cpu"
    with pytest.raises(AssertionError, match=failed):
        assert_parity(gru, tmp_path / "bad.onnx", (x,))


def test_the_pytest_fixture_exports_and_gates(gru_onnx_export):
    gru = CustomGRU(3, 4, activation="silu", batch_first=True)
    result = gru_onnx_export(
        gru, (torch.randn(2, 5, 3),), graph=gru_onnx.GraphOptions(strategy="loop"),
        shapes=gru_onnx.ShapeOptions(dynamic_seq=True),
    )  # fmt: skip
    assert result.path.exists() and result.parity.passed and result.strategy == "loop"


def test_a_file_onnx_runtime_cannot_load_is_an_error_not_a_skip(exported, run_cli, tmp_path):
    _, _, path = exported
    model = onnx.load(path)
    next(n for n in model.graph.node if n.op_type == "Relu").op_type = "Reluu"
    onnx.save(model, tmp_path / "broken.onnx")
    result = run_cli("check", "broken.onnx", "--provider", "all")
    assert result.exit_code == 1
    assert "onnxruntime-cpu: could not run the file" in result.output


def test_unwritable_report_path_is_exit_2(exported, run_cli):
    _, _, path = exported
    result = run_cli("check", str(path), "--report", "/nonexistent/r.json")
    assert result.exit_code == 2 and "cannot write /nonexistent/r.json" in result.output
