"""The node and web runners: parity with PyTorch for every strategy, whole sequence and frame by
frame (states carried by StreamingSession), every dtype through the wire, and the one-line
reasons when a runtime is missing."""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from webtools import ATOL, STRATEGIES, denoiser, export_file, lone_gru

from gru_onnx import CustomGRU, StreamingSession
from gru_onnx.runners.base import Runner, RuntimeUnavailable
from gru_onnx.runners.node import NodeRunner
from gru_onnx.runners.web import WebRunner, web_runner_problem
from gru_onnx.web import wire
from gru_onnx.web.setup import CACHE_ENV, CHROMIUM_ENV, NODE_ENV, PINS, node_problem

KINDS = ("node", "web", "webgpu")


def make(kind: str, path: Path) -> Runner:
    if kind == "node":
        return NodeRunner(path, threads=1)
    return WebRunner(path, backend="webgpu" if kind == "webgpu" else "wasm")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("node_ready" if request.param == "node" else "web_ready")
    if request.param == "webgpu":
        request.getfixturevalue("webgpu_browser")
    return request.param


def opened(runner: Runner) -> Runner:
    """The runner opened, or a skip with its one-line reason (WebGPU without an adapter)."""
    try:
        return runner.open()
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))


def max_error(got: np.ndarray, want: torch.Tensor | np.ndarray) -> float:
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.shape == want.shape and got.dtype == want.dtype
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_whole_sequence_matches_pytorch(kind, strategy, lone_files):
    gru = lone_gru()
    x = torch.randn(3, 7, 5)  # the unrolled file's length is fixed at 7; batch 3 is not the example's 2
    with torch.no_grad():
        want_y, want_h = gru(x)
    with opened(make(kind, lone_files[strategy, False])) as runner:
        try:
            y, h = runner.run({"input": x.numpy()})
        except RuntimeError as exc:
            if kind == "webgpu" and "Too many storage buffers in shader" in str(exc):
                pytest.xfail(f"onnxruntime-web {PINS['onnxruntime-web']} WebGPU: {str(exc).split('was false. ')[-1]}")
            raise
        notes = " ".join(runner.notes)
    errors = max_error(y, want_y), max_error(h, want_h)
    print(f"PARITY {kind} {strategy} whole sequence: output {errors[0]:.1e}, h_n {errors[1]:.1e}")
    assert max(errors) < ATOL
    assert {"node": "onnxruntime-node 1.30.0", "web": "WebAssembly backend", "webgpu": "WebGPU"}[kind] in notes
    assert "thread" in notes


def stream(session: StreamingSession, x: np.ndarray, sizes: list[int]) -> dict[str, np.ndarray]:
    """``x`` through ``session`` in chunks of ``sizes`` steps (axis 1); outputs with a time axis joined."""
    pieces: dict[str, list[np.ndarray]] = {}
    start = 0
    for size in sizes:
        for name, value in session.run({session.input_names[0]: x[:, start : start + size]}).items():
            pieces.setdefault(name, []).append(value)
        start += size
    return {k: np.concatenate(v, axis=1) if v[0].ndim == 3 and k != "h_n" else v[-1] for k, v in pieces.items()}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_streaming_frame_by_frame_matches_pytorch(kind, strategy, lone_files):
    gru = lone_gru()
    x = torch.randn(2, 20, 5)
    with torch.no_grad():
        want_y, want_h = gru(x)
    path = lone_files[strategy, True]
    with opened(make(kind, path)) as runner, StreamingSession(path, runner=runner) as session:
        got = stream(session, x.numpy(), [1] * 20)
        if strategy != "unrolled":  # any chunk length; the unrolled file takes exactly one step
            session.reset()
            uneven = stream(session, x.numpy(), [3, 1, 9, 7])
            assert max_error(uneven["output"], want_y) < ATOL
    errors = max_error(got["output"], want_y), max_error(got["h_n"], want_h)
    print(f"PARITY {kind} {strategy} streaming, 20 frames one per call: output {errors[0]:.1e}, h_n {errors[1]:.1e}")
    assert max(errors) < ATOL


@pytest.fixture(scope="module")
def denoiser_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The Denoiser exported for streaming per strategy (the unrolled one with chunk 1), on demand."""
    folder = tmp_path_factory.mktemp("denoisers")
    made: dict[str, Path] = {}
    options = {"loop": {}, "native": {}, "unrolled": {"chunk": 1}}

    def get(strategy: str) -> Path:
        if strategy not in made:
            example = torch.randn(2, 1 if strategy == "unrolled" else 16, 42)
            made[strategy] = export_file(denoiser(), (example,), folder / f"{strategy}.onnx", strategy=strategy,
                                         streaming=True, **options[strategy])  # fmt: skip
        return made[strategy]

    return get


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("runner_kind", ["node", "web"])
def test_denoiser_frame_by_frame_equals_pytorch_on_the_whole_sequence(runner_kind, strategy, denoiser_files, request):
    request.getfixturevalue("node_ready" if runner_kind == "node" else "web_ready")
    model = denoiser()
    features = torch.randn(1, 100, 42)
    with torch.no_grad():
        want = model(features)
    path = denoiser_files(strategy)
    with opened(make(runner_kind, path)) as runner, StreamingSession(path, runner=runner) as session:
        assert session.input_names == ("features",) and session.output_names == ("gains", "vad")
        got = stream(session, features.numpy(), [1] * 100)
    errors = {name: max_error(got[name], want[name]) for name in ("gains", "vad")}
    print(f"PARITY {runner_kind} denoiser {strategy}, 100 frames one per call: "
          + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))  # fmt: skip
    assert max(errors.values()) < ATOL


def test_float16_file_streams_in_float16(kind, tmp_path):
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "half.onnx", strategy="loop", streaming=True,
                       dtype="float16")  # fmt: skip
    x = torch.randn(1, 12, 5).half()
    with torch.no_grad():
        want, _ = lone_gru().half()(x)
    with opened(make(kind, path)) as runner, StreamingSession(path, runner=runner) as session:
        got = stream(session, x.numpy(), [1] * 12)
        assert session.states["state_in"].dtype == np.float16
    error = max_error(got["output"], want)
    print(f"PARITY {kind} float16 loop streaming, 12 frames one per call: output {error:.1e}")
    assert error < 2e-3  # float16's tolerance in the parity check


def _runs_with_its_data_file(kind: str, gru: CustomGRU, path: Path) -> None:
    """``gru`` exported to ``path`` with its weights in one external data file, run by ``kind``
    at another length than exported: the outputs are PyTorch's."""
    export_file(gru, (torch.randn(2, 3, 16),), path, strategy="loop", dynamic_seq=True, external_data=True)
    assert len(list(path.parent.glob(f"{glob.escape(path.name)}.*.data"))) == 1
    x = torch.randn(1, 6, 16)
    with torch.no_grad():
        want, _ = gru(x)
    with opened(make(kind, path)) as runner:
        y, _ = runner.run({"input": x.numpy()})
    assert max_error(y, want) < ATOL


def test_external_data_file_is_read(kind, tmp_path):
    torch.manual_seed(3)
    _runs_with_its_data_file(kind, CustomGRU(16, 32, batch_first=True, activation="relu").eval(), tmp_path / "big.onnx")


@pytest.mark.parametrize("kind", ["node", "web"], indirect=True)
def test_a_file_name_a_url_would_misread_is_read(kind, tmp_path):
    # '#' would cut the URL (a fragment), '%41' decode to 'A', '?' start a query, ' ' and a
    # newline be dropped: the model and its data file are served under percent-encoded URLs.
    torch.manual_seed(3)
    _runs_with_its_data_file(kind, CustomGRU(16, 32, batch_first=True).eval(), tmp_path / "a#b%41 ?\nc.onnx")


def identity_file(path: Path) -> Path:
    """A model passing through one input of every dtype the files use (and float64, uint8)."""
    dtypes = {"f32": onnx.TensorProto.FLOAT, "f16": onnx.TensorProto.FLOAT16, "i64": onnx.TensorProto.INT64,
              "i32": onnx.TensorProto.INT32, "b": onnx.TensorProto.BOOL, "u8": onnx.TensorProto.UINT8}  # fmt: skip
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Identity", [f"in_{n}"], [f"out_{n}"]) for n in dtypes],
        "identity",
        [h.make_tensor_value_info(f"in_{n}", t, ["batch", 3]) for n, t in dtypes.items()],
        [h.make_tensor_value_info(f"out_{n}", t, ["batch", 3]) for n, t in dtypes.items()],
    )
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], ir_version=9), path)
    return path


def test_every_dtype_travels_exactly(kind, tmp_path):
    rng = np.random.default_rng(0)
    feeds = {
        "in_f32": rng.standard_normal((2, 3)).astype(np.float32),
        "in_f16": np.array([[1.5, -0.0, 65504], [np.inf, -np.inf, 6e-8]], np.float16),
        "in_i64": np.array([[2**62, -(2**62), 0], [1, -1, 7]], np.int64),
        "in_i32": np.array([[2**31 - 1, -(2**31), 0], [1, -1, 7]], np.int32),
        "in_b": np.array([[True, False, True], [False, False, True]]),
        "in_u8": np.array([[0, 255, 7], [1, 2, 3]], np.uint8),
    }
    with opened(make(kind, identity_file(tmp_path / "identity.onnx"))) as runner:
        outputs = runner.run(feeds)
    for (name, want), got in zip(feeds.items(), outputs, strict=True):
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("kind", ["node", "web"], indirect=True)  # WebGPU runs the same page code
def test_runtime_errors_are_one_line(kind, lone_files):
    with opened(make(kind, lone_files["loop", False])) as runner:
        with pytest.raises(RuntimeError, match=r"input 'input' is missing") as caught:
            runner.run({"wrong": np.zeros((1, 2, 5), np.float32)})
        assert "\n" not in str(caught.value)
        y, _ = runner.run({"input": np.zeros((1, 2, 5), np.float32)})  # the runner still works after
    assert y.shape == (1, 2, 6)


def test_wire_round_trip():
    tensors = {"a": np.arange(6, dtype=np.float16).reshape(2, 3), "b": np.array([True, False]),
               "c": np.zeros((0, 4), np.int64), "d": np.float32(3.5)}  # fmt: skip
    header, back = wire.decode(wire.encode({"op": "x"}, tensors))
    assert header["op"] == "x" and list(back) == list(tensors)
    for name, array in tensors.items():
        assert back[name].dtype == np.asarray(array).dtype
        np.testing.assert_array_equal(back[name], array)


# --------------------------------------------------------------------------------------------
# What is missing, and the command that installs it (no Node.js or browser needed)
# --------------------------------------------------------------------------------------------


def test_missing_npm_packages_name_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "empty"))
    with pytest.raises(RuntimeUnavailable) as caught:
        WebRunner(tmp_path / "m.onnx").open()
    if "Chromium" not in str(caught.value) and "Playwright" not in str(caught.value):
        assert str(caught.value) == (
            f"onnxruntime-web (WebAssembly) not available: onnxruntime-web is not installed in {tmp_path / 'empty'}: "
            "run `gru-onnx setup web`"
        )
    if node_problem(tmp_path / "elsewhere") == node_problem(tmp_path / "empty"):  # Node.js is here
        with pytest.raises(RuntimeUnavailable, match=r"onnxruntime-node is not installed in .*`gru-onnx setup web`$"):
            NodeRunner(tmp_path / "m.onnx").open()


def test_missing_node_and_chromium_name_their_packages(tmp_path, monkeypatch):
    monkeypatch.setenv(NODE_ENV, str(tmp_path / "no-node"))
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    missing = r"^onnxruntime-node not available: Node.js at .* does not run .*`apt-get install nodejs npm`$"
    with pytest.raises(RuntimeUnavailable, match=missing):
        NodeRunner(tmp_path / "m.onnx").open()
    assert web_runner_problem() == (
        f"onnxruntime-web (WebAssembly) not available: {CHROMIUM_ENV}={tmp_path / 'no-chromium'} is not an executable "
        "file: `apt-get install chromium` or fix the variable"
    )


def test_missing_playwright_names_the_extra(monkeypatch):
    import gru_onnx.web.setup as setup

    monkeypatch.setattr(setup.importlib.util, "find_spec", lambda name: None)
    assert setup.playwright_problem() == (
        "Playwright is not installed: `pip install 'gru-onnx[web]'` (it drives the system Chromium)"
    )


@pytest.mark.parametrize(
    ("modules", "loaded"),
    [
        ("gru_onnx.runners, gru_onnx.runners.web, gru_onnx.runners.node, gru_onnx.web.setup", "[]"),
        ("gru_onnx.web.bundle", "['torch']"),  # it computes the PyTorch reference; no runtime starts
    ],
)
def test_importing_the_web_modules_starts_nothing(modules, loaded):
    import subprocess
    import sys

    code = (f"import sys, {modules}; "
            "print(sorted(m for m in ('playwright', 'torch', 'onnxruntime') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == loaded
