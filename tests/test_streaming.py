"""Streaming export: chunk by chunk with carried states equals the whole sequence.

References are independent of the package: the NumPy recurrence (tests/reference.py), nn.GRU,
or the PyTorch model run on the whole sequence in eager mode.
"""

from __future__ import annotations

import textwrap

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from gru_onnx import CustomGRU, ExportError, GruOnnxUsageError, StreamingSession, read_metadata

import flat
from conftest import numpy_reference

TOL = {"rtol": 1e-4, "atol": 1e-5}


def stream(session: StreamingSession, feeds: dict[str, np.ndarray], sizes, axis: int = 1) -> dict[str, np.ndarray]:
    """Run ``feeds`` through ``session`` in chunks of ``sizes`` steps; outputs joined on ``axis``."""
    pieces: dict[str, list[np.ndarray]] = {}
    start = 0
    for size in sizes:
        chunk = {k: np.take(v, np.arange(start, start + size), axis=axis) for k, v in feeds.items()}
        for name, value in session.run(chunk).items():
            pieces.setdefault(name, []).append(value)
        start += size
    assert start == next(iter(feeds.values())).shape[axis]
    return {k: np.concatenate(v, axis=axis) for k, v in pieces.items()}


# --------------------------------------------------------------------------------------------
# A lone CustomGRU, every strategy
# --------------------------------------------------------------------------------------------

STRATEGY_CASES = [  # (strategy, chunk, activation)
    ("unrolled", 1, "relu"),
    ("unrolled", 3, "relu"),
    ("loop", None, "relu"),
    ("native", None, "tanh"),  # exact only for activations the ONNX GRU op has
    ("auto", None, "relu"),  # auto -> loop (dynamic length)
    ("auto", 2, "relu"),  # auto -> unrolled (short fixed chunk)
    ("auto", None, "tanh"),  # auto -> native
]


@pytest.mark.parametrize(("strategy", "chunk", "activation"), STRATEGY_CASES)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_lone_gru_chunked_equals_whole_sequence(strategy, chunk, activation, reset_after, layers, tmp_path):
    gru = CustomGRU(4, 5, num_layers=layers, batch_first=True, activation=activation, reset_after=reset_after)
    x = torch.randn(3, 12, 4)
    result = flat.export(gru, (x[:, :5],), tmp_path / "s.onnx", strategy=strategy, streaming=True, chunk=chunk,
                             check=False)  # fmt: skip
    sizes = [chunk] * (12 // chunk) if chunk else [1, 3, 2, 5, 1]
    with StreamingSession(result.path) as session:
        got = stream(session, {"input": x.numpy()}, sizes)
        final = session.states["state_in"]
    want_y, want_h = numpy_reference(gru, x)
    np.testing.assert_allclose(got["output"], want_y, **TOL)
    np.testing.assert_allclose(final, want_h.transpose(1, 0, 2), **TOL)  # batch-first state
    assert set(got) == {"output", "h_n"}  # the module's own outputs stay; the state pair is extra
    meta = read_metadata(result.path)
    assert meta["streaming"] == {
        "states": [{"input": "state_in", "output": "state_out", "module": "", "shape": ["batch", layers, 5]}]
    }
    assert meta["chunk"] == chunk
    if strategy == "auto":
        native = activation == "tanh" and reset_after  # auto writes the GRU op only for nn.GRU's own math
        assert meta["stacks"][0]["strategy"] == ("native" if native else "unrolled" if chunk else "loop")


def test_sequence_first_gru_and_nn_gru_reference(tmp_path):
    """Default activations, sequence-first: the reference is torch.nn.GRU itself."""
    ref = nn.GRU(3, 6, num_layers=2)
    gru = CustomGRU(3, 6, num_layers=2)
    gru.load_state_dict(ref.state_dict())
    x = torch.randn(10, 2, 3)
    flat.export(gru, (x,), tmp_path / "s.onnx", strategy="loop", streaming=True, check=False)
    with StreamingSession(tmp_path / "s.onnx") as session:
        got = stream(session, {"input": x.numpy()}, [4, 1, 5], axis=0)
        state = session.states["state_in"]
    with torch.no_grad():
        want_y, want_h = ref(x)
    np.testing.assert_allclose(got["output"], want_y.numpy(), **TOL)
    np.testing.assert_allclose(state, want_h.numpy().transpose(1, 0, 2), **TOL)


# --------------------------------------------------------------------------------------------
# Whole models: several GRUs, concatenations, a module called twice
# --------------------------------------------------------------------------------------------


class Suppressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 6)
        self.vad = CustomGRU(6, 4, batch_first=True, activation="relu", reset_after=False)
        self.noise = CustomGRU(6 + 4 + 8, 5, batch_first=True, activation="relu", num_layers=2)
        self.post = nn.ModuleDict({"shared": CustomGRU(5, 5, batch_first=True, activation="silu")})
        self.out = nn.Linear(5 + 4, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.inp(x))
        v, _ = self.vad(h)
        n, _ = self.noise(torch.cat([h, v, x], -1))
        s1, _ = self.post["shared"](n)
        s2, _ = self.post["shared"](s1)  # the same module twice: two state pairs
        return {"gains": torch.sigmoid(self.out(torch.cat([s2, v], -1))), "vad": v}


SUPPRESSOR_STATES = [
    {"input": "vad_state_in", "output": "vad_state_out", "module": "vad", "shape": ["batch", 1, 4]},
    {"input": "noise_state_in", "output": "noise_state_out", "module": "noise", "shape": ["batch", 2, 5]},
    {"input": "post_shared_state_in", "output": "post_shared_state_out", "module": "post.shared",
     "shape": ["batch", 1, 5]},
    {"input": "post_shared_state_in_1", "output": "post_shared_state_out_1", "module": "post.shared",
     "shape": ["batch", 1, 5]},
]  # fmt: skip


@pytest.mark.parametrize(("strategy", "chunk"), [("auto", None), ("unrolled", 4)])
def test_whole_model_chunked_equals_model_on_whole_sequence(strategy, chunk, tmp_path):
    model = Suppressor().eval()
    x = torch.randn(3, 16, 8)
    result = flat.export(model, (x,), tmp_path / "m.onnx", strategy=strategy, streaming=True, chunk=chunk)
    assert result.passed, result.parity.summary()
    meta = read_metadata(result.path)
    assert meta["streaming"] == {"states": SUPPRESSOR_STATES}
    proto = onnx.load(result.path)
    assert [i.name for i in proto.graph.input if i.name.endswith(("state_in", "state_in_1"))] == [
        s["input"] for s in SUPPRESSOR_STATES
    ]
    with torch.no_grad():
        want = model(x)
    with StreamingSession(result.path) as session:
        assert session.input_names == ("x",) and session.output_names == ("gains", "vad")
        got = stream(session, {"x": x.numpy()}, [chunk] * 4 if chunk else [1, 7, 2, 6])
    for name in ("gains", "vad"):
        np.testing.assert_allclose(got[name], want[name].numpy(), **TOL)


def test_names_and_metadata_are_stable_across_exports(tmp_path):
    model = Suppressor()
    x = torch.randn(2, 6, 8)
    for name in ("a.onnx", "b.onnx"):
        flat.export(model, (x,), tmp_path / name, streaming=True, check=False)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert read_metadata(tmp_path / "a.onnx")["streaming"]["states"] == SUPPRESSOR_STATES


class Clash(nn.Module):
    """A user input named like a state, and a Sequential path starting with a digit."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(CustomGRU(3, 4, batch_first=True))

    def forward(self, state_in: torch.Tensor) -> torch.Tensor:
        return self.layers[0](state_in)[0]


def test_state_names_never_clash_and_are_valid_tensor_names(tmp_path):
    x = torch.randn(2, 5, 3)
    flat.export(Clash(), (x,), tmp_path / "c.onnx", streaming=True, check=False)
    (state,) = read_metadata(tmp_path / "c.onnx")["streaming"]["states"]
    assert (state["input"], state["output"], state["module"]) == ("layers_0_state_in", "layers_0_state_out", "layers.0")
    seq = nn.Sequential(CustomGRU(3, 4, batch_first=True))
    flat.export(seq, (x,), tmp_path / "q.onnx", streaming=True, check=False)
    (state,) = read_metadata(tmp_path / "q.onnx")["streaming"]["states"]
    assert (state["input"], state["output"]) == ("gru_0_state_in", "gru_0_state_out")  # not starting with a digit


def test_batch_dimension_static_when_the_batch_is(tmp_path):
    gru = CustomGRU(3, 4, batch_first=True, activation="relu")
    flat.export(gru, (torch.randn(1, 4, 3),), tmp_path / "s.onnx", streaming=True, dynamic_batch=False,
                    check=False)  # fmt: skip
    assert read_metadata(tmp_path / "s.onnx")["streaming"]["states"][0]["shape"] == [1, 1, 4]
    with StreamingSession(tmp_path / "s.onnx") as session, pytest.raises(GruOnnxUsageError, match="fixed at 1"):
        session.run({"input": np.zeros((2, 1, 3), np.float32)})


# --------------------------------------------------------------------------------------------
# StreamingSession: batch > 1, reset mid-stream, errors
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relu_file(tmp_path_factory):
    torch.manual_seed(1)
    gru = CustomGRU(3, 4, num_layers=2, batch_first=True, activation="relu", reset_after=False)
    path = tmp_path_factory.mktemp("s") / "relu.onnx"
    flat.export(gru, (torch.randn(2, 5, 3),), path, strategy="loop", streaming=True, check=False)
    return gru, path


def test_reset_rows_mid_stream(relu_file):
    gru, path = relu_file
    x = torch.randn(3, 10, 3)
    with StreamingSession(path) as session:
        first = stream(session, {"input": x[:, :4].numpy()}, [2, 2])["output"]
        session.reset([1])  # stream 1 ends; a new one starts in its row
        second = stream(session, {"input": x[:, 4:].numpy()}, [1, 5])["output"]
    whole, _ = numpy_reference(gru, x)
    restarted, _ = numpy_reference(gru, x[1:2, 4:])
    np.testing.assert_allclose(first, whole[:, :4], **TOL)
    np.testing.assert_allclose(second[[0, 2]], whole[[0, 2], 4:], **TOL)
    np.testing.assert_allclose(second[1:2], restarted, **TOL)
    assert not np.allclose(second[1], whole[1, 4:], atol=1e-3)  # the reset changed something


def test_session_states_batch_and_errors(relu_file):
    _, path = relu_file
    with StreamingSession(path) as session:
        assert session.states == {} and session.batch_size is None
        session.run({"input": np.zeros((2, 1, 3), np.float32)})
        state = session.states["state_in"]
        assert state.shape == (2, 2, 4) and state.dtype == np.float32
        with pytest.raises(GruOnnxUsageError, match=r"batch size 3.*reset"):
            session.run({"input": np.zeros((3, 1, 3), np.float32)})
        with pytest.raises(GruOnnxUsageError, match="unknown input 'state_in'"):
            session.run({"input": np.zeros((2, 1, 3), np.float32), "state_in": np.zeros((2, 2, 4), np.float32)})
        with pytest.raises(GruOnnxUsageError, match="missing 'input'"):
            session.run({})
        with pytest.raises(GruOnnxUsageError, match="outside the batch"):
            session.reset([5])
        session.reset()
        assert session.batch_size is None
        session.run({"input": np.ones((3, 2, 3), np.float32)})
        assert session.batch_size == 3


def test_float16_file_keeps_float16_states(tmp_path):
    gru = CustomGRU(4, 8, num_layers=2, batch_first=True, activation="relu")
    x = torch.randn(2, 9, 4)
    flat.export(gru, (x,), tmp_path / "h.onnx", streaming=True, dtype="float16", check=False)
    with StreamingSession(tmp_path / "h.onnx") as session:
        got = stream(session, {"input": x.half().numpy()}, [2, 1, 6])["output"]
        assert session.states["state_in"].dtype == np.float16
    want, _ = numpy_reference(gru, x.half().float())  # float16 inputs, float64 math
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-2, atol=2e-3)


def test_session_refuses_a_file_without_states(tmp_path):
    flat.export(CustomGRU(3, 4), (torch.randn(5, 2, 3),), tmp_path / "plain.onnx", check=False)
    with pytest.raises(GruOnnxUsageError, match="not a streaming file"):
        StreamingSession(tmp_path / "plain.onnx")


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=8), batch=st.integers(1, 3))
def test_any_split_equals_the_whole_sequence(relu_file, sizes, batch):
    gru, path = relu_file
    x = torch.randn(batch, sum(sizes), 3)
    with StreamingSession(path) as session:
        got = stream(session, {"input": x.numpy()}, sizes)["output"]
    np.testing.assert_allclose(got, numpy_reference(gru, x)[0], **TOL)


# --------------------------------------------------------------------------------------------
# Refusals and the frame-local caveat
# --------------------------------------------------------------------------------------------


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = CustomGRU(3, 4, batch_first=True)
        self.decoder = CustomGRU(3, 4, batch_first=True, activation="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.encoder(x)
        return self.decoder(x, h)[0]


def test_explicit_state_is_refused_unless_excluded(tmp_path):
    x = torch.randn(2, 5, 3)
    with pytest.raises(ExportError, match=r"'decoder' receives an explicit initial state.*streaming_exclude"):
        flat.export(Seq2Seq(), (x,), tmp_path / "s.onnx", streaming=True, check=False)
    assert not (tmp_path / "s.onnx").exists()
    flat.export(Seq2Seq(), (x,), tmp_path / "s.onnx", streaming=True, streaming_exclude=("decoder",), check=False)
    states = read_metadata(tmp_path / "s.onnx")["streaming"]["states"]
    assert [s["module"] for s in states] == ["encoder"]


@pytest.mark.parametrize(
    ("make", "args", "options", "error", "match"),
    [
        (lambda: CustomGRU(3, 4, bidirectional=True), (torch.randn(5, 2, 3),), {}, ExportError,
         "bidirectional and cannot stream"),
        (lambda: CustomGRU(3, 4), (torch.randn(5, 2, 3), torch.randn(1, 2, 4)), {}, ExportError,
         "explicit initial state"),
        (lambda: CustomGRU(3, 4), (torch.randn(5, 2, 3), None, torch.tensor([5, 3])), {}, ExportError,
         "does not take lengths|do not take lengths"),
        (lambda: CustomGRU(3, 4), (torch.randn(5, 2, 3),), {"strategy": "unrolled"}, GruOnnxUsageError,
         "needs a fixed chunk length"),
        (lambda: CustomGRU(3, 4), (torch.randn(5, 2, 3),), {"chunk": 0}, GruOnnxUsageError, "positive"),
        (lambda: CustomGRU(3, 4), (torch.randn(5, 3),), {}, GruOnnxUsageError, "needs batched input"),
        (lambda: Seq2Seq(), (torch.randn(2, 5, 3),), {"streaming_exclude": ("nothere",)}, GruOnnxUsageError,
         "'nothere', which is no CustomGRU"),
        (lambda: Seq2Seq(), (torch.randn(2, 5, 3),), {"streaming_exclude": ("encoder", "decoder")},
         GruOnnxUsageError, "leaves no CustomGRU call to stream"),
    ],
)  # fmt: skip
def test_refusals_name_the_module_and_why(make, args, options, error, match, tmp_path):
    with pytest.raises(error, match=match):
        flat.export(make(), args, tmp_path / "x.onnx", streaming=True, check=False, **options)
    assert not (tmp_path / "x.onnx").exists()


def test_chunk_and_exclude_need_streaming(tmp_path):
    with pytest.raises(GruOnnxUsageError, match=r"StreamingOptions\(enabled=True\)"):
        flat.export(CustomGRU(3, 4), (torch.randn(5, 2, 3),), tmp_path / "x.onnx", chunk=4)


def test_bidirectional_module_can_be_excluded(tmp_path):
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.context = CustomGRU(3, 4, batch_first=True, bidirectional=True)
            self.online = CustomGRU(3, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.online(x)[0] + self.context(x)[0].sum()

    flat.export(Model(), (torch.randn(2, 4, 3),), tmp_path / "m.onnx", streaming=True,
                    streaming_exclude=("context",), check=False)  # fmt: skip
    assert [s["module"] for s in read_metadata(tmp_path / "m.onnx")["streaming"]["states"]] == ["online"]


class ConvFront(nn.Module):
    """A convolution over time before the GRU: not frame-local, so chunks cannot be exact."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.gru = CustomGRU(4, 5, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(self.conv(x.transpose(1, 2)).transpose(1, 2))[0]


def test_non_frame_local_model_fails_with_the_frame_local_message(tmp_path):
    model = ConvFront()
    x = torch.randn(2, 9, 4)
    result = flat.export(model, (x,), tmp_path / "c.onnx", streaming=True)
    report = result.parity
    assert not report.passed
    status = {r.runtime: r.status for r in report.results}
    assert status["onnxruntime-cpu, chunks whole"] == "passed"  # the file itself is right
    assert status["onnxruntime-cpu, chunks 1"] == "failed"
    assert "exact only when everything outside the GRUs is frame-local" in report.failures()[-1]
    # The per-step curve covers every step of the whole sequence.
    chunked = next(r for r in report.results if r.runtime.endswith("chunks 1"))
    assert len(chunked.outputs[0].per_step_max_abs) == x.shape[1]


def test_a_model_taking_h0_still_exports_without_streaming(tmp_path):
    gru = CustomGRU(3, 4, activation="relu")
    x, h0 = torch.randn(5, 2, 3), torch.randn(1, 2, 4)
    result = flat.export(gru, (x, h0), tmp_path / "h.onnx")
    assert result.passed and "streaming" not in result.metadata
    assert [i.name for i in onnx.load(result.path).graph.input] == ["input", "h0"]


# --------------------------------------------------------------------------------------------
# check_parity(streaming=...) and the CLI
# --------------------------------------------------------------------------------------------


def test_check_parity_streaming_from_the_file_alone(relu_file):
    _, path = relu_file
    report = flat.check_parity(None, path, streaming=[1, 5], seq_len=11)
    assert report.passed, report.summary()
    assert [r.runtime for r in report.results] == ["onnxruntime-cpu, chunks 1", "onnxruntime-cpu, chunks 5"]
    assert report.samples[0]["input"][1] == 11
    with pytest.raises(GruOnnxUsageError, match="not a streaming file"):
        flat.check_parity(None, _plain(path), streaming=True)


def _plain(path):
    """A lone-GRU file without states, next to ``path``."""
    plain = path.with_name("plain.onnx")
    flat.export(CustomGRU(3, 4), (torch.randn(5, 2, 3),), plain, check=False)
    return plain


def test_check_parity_streaming_with_inputs_npz_and_batch(relu_file, tmp_path):
    _, path = relu_file
    np.savez(tmp_path / "in.npz", input=np.random.randn(2, 9, 3).astype(np.float32))
    report = flat.check_parity(None, path, inputs=tmp_path / "in.npz", streaming=[4])
    assert report.passed and report.samples[0]["input"] == [2, 9, 3]
    varied = flat.check_parity(None, path, streaming=True, batch=5, samples=2)
    assert varied.passed and [s["input"][:2] for s in varied.samples] == [[5, 12], [5, 12]]  # --batch, default length


def test_a_streaming_file_is_always_checked_chunk_by_chunk(relu_file):
    _, path = relu_file
    report = flat.check_parity(None, path)
    assert [r.runtime for r in report.results] == [
        "onnxruntime-cpu, chunks whole", "onnxruntime-cpu, chunks 1", "onnxruntime-cpu, chunks 3+1+4+2...",
    ]  # fmt: skip
    assert report.passed


def test_cli_export_inspect_check(run_cli, tmp_path):
    result = run_cli("export", "--streaming", "--chunk", "4", "--strategy", "unrolled", "--activation", "relu",
                     "--reset-before", "--num-layers", "2", "--batch-first", "-o", "s.onnx")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "state_in -> state_out" in result.output and "chunks of 4 steps" in result.output
    meta = read_metadata(tmp_path / "s.onnx")
    assert meta["chunk"] == 4 and meta["streaming"]["states"][0]["shape"] == ["batch", 2, 32]
    shown = run_cli("inspect", "s.onnx")
    assert shown.exit_code == 0 and "state_in -> state_out: model [batch, 2, 32]" in shown.output
    checked = run_cli("check", "s.onnx", "--streaming")
    assert checked.exit_code == 0, checked.output
    assert "chunks 4" in checked.output
    # The file itself against an independent reference: chunks of 4 from zero states.
    torch.manual_seed(0)
    gru = CustomGRU(16, 32, num_layers=2, batch_first=True, activation="relu", reset_after=False)
    x = torch.randn(2, 12, 16)
    with StreamingSession(tmp_path / "s.onnx") as session:
        got = stream(session, {"input": x.numpy()}, [4, 4, 4])["output"]
    np.testing.assert_allclose(got, numpy_reference(gru, x)[0], **TOL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "s.onnx", "--streaming", "--chunks", "1,x"], "not a comma-separated list"),
        (["check", "s.onnx", "--streaming", "--chunks", "3"], "chunks of exactly 2 steps"),
        (["export", "--streaming", "--chunk", "0"], "--chunk"),
        (["export", "--streaming", "--bidirectional", "-o", "b.onnx"], "bidirectional and cannot stream"),
        (["export", "--chunk", "2", "-o", "b.onnx"], "--streaming"),
        (["export", "--import", "x", "-o", "b.onnx"], "needs --keras"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args, message, tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    if args[0] == "check":
        flat.export(CustomGRU(3, 4), (torch.randn(4, 2, 3),), tmp_path / "s.onnx", strategy="unrolled",
                        streaming=True, chunk=2, check=False)  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "gru_onnx.cli", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b.onnx").exists()


FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = CustomGRU(3, 4, batch_first=True, activation="relu")
        self.b = CustomGRU(4, 2, batch_first=True, activation="relu", reset_after=False)
    def forward(self, x):
        return self.b(self.a(x)[0])[0]

def make():
    torch.manual_seed(0)
    return Net(), (torch.randn(2, 6, 3),), {"streaming": True}
"""


def test_cli_model_factory_with_streaming_option(run_cli, tmp_path):
    (tmp_path / "streamy.py").write_text(textwrap.dedent(FACTORY))
    result = run_cli("export", "--model", "streamy:make", "-o", "m.onnx")
    assert result.exit_code == 0, result.output
    assert [s["input"] for s in read_metadata(tmp_path / "m.onnx")["streaming"]["states"]] == [
        "a_state_in", "b_state_in",
    ]  # fmt: skip
    checked = run_cli("check", "m.onnx", "--model", "streamy:make", "--chunks", "1,5")
    assert checked.exit_code == 0, checked.output
    assert "chunks 5" in checked.output
