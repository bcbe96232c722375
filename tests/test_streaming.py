"""Streaming export, the export side (``gru_onnx.streaming``): every CustomGRU call's state
lifted to a graph input/output pair, so that chunk by chunk with carried states equals the
whole sequence; names, metadata, and what cannot stream.

References are independent of the package: the NumPy recurrence (tests/reference.py), nn.GRU,
or the PyTorch model run on the whole sequence in eager mode. A lone CustomGRU is written at
the graph level (``helpers.graph_export``), whole models through the export.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from gru_onnx import CustomGRU, ExportError, GruOnnxUsageError, StreamingSession, read_metadata
from gru_onnx.metadata import input_time_axes

import flat
from helpers import graph_export, numpy_reference, stream

TOL = {"rtol": 1e-4, "atol": 1e-5}


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
    result = graph_export(gru, (x[:, :5],), tmp_path / "s.onnx", strategy=strategy, streaming=True, chunk=chunk,
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
    graph_export(gru, (x,), tmp_path / "s.onnx", strategy="loop", streaming=True, check=False)
    with StreamingSession(tmp_path / "s.onnx") as session:
        got = stream(session, {"input": x.numpy()}, [4, 1, 5], axis=0)
        state = session.states["state_in"]
    with torch.no_grad():
        want_y, want_h = ref(x)
    np.testing.assert_allclose(got["output"], want_y.numpy(), **TOL)
    np.testing.assert_allclose(state, want_h.numpy().transpose(1, 0, 2), **TOL)


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
    graph_export(gru, (torch.randn(1, 4, 3),), tmp_path / "s.onnx", streaming=True, dynamic_batch=False, check=False)
    assert read_metadata(tmp_path / "s.onnx")["streaming"]["states"][0]["shape"] == [1, 1, 4]
    with StreamingSession(tmp_path / "s.onnx") as session, pytest.raises(GruOnnxUsageError, match="fixed at 1"):
        session.run({"input": np.zeros((2, 1, 3), np.float32)})


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


def test_a_model_taking_h0_still_exports_without_streaming(tmp_path):
    gru = CustomGRU(3, 4, activation="relu")
    x, h0 = torch.randn(5, 2, 3), torch.randn(1, 2, 4)
    result = flat.export(gru, (x, h0), tmp_path / "h.onnx")
    assert result.passed and "streaming" not in result.metadata
    assert [i.name for i in onnx.load(result.path).graph.input] == ["input", "h0"]


# --------------------------------------------------------------------------------------------
# Time axes of a file's inputs when it does not record them
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_lone_grus_h0_and_lengths_have_no_time_axis(batch_first, tmp_path):
    """The fallback gave every input of a lone GRU its sequence's time axis: h0 [L*D, B, H] was
    cut along axis 0 ("h0 has shape (20, 1, 32), expected (1, 1, 32)"), lengths along its batch."""
    gru = CustomGRU(4, 5, batch_first=batch_first)
    x = torch.randn(3, 6, 4) if batch_first else torch.randn(6, 3, 4)
    export = graph_export(gru, (x, torch.randn(1, 3, 5), torch.tensor([6, 2, 1])), tmp_path / "g.onnx", check=False)
    assert "input_time_axes" not in export.metadata
    ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in onnx.load(export.path).graph.input}
    assert ranks == {"input": 3, "h0": 3, "lengths": 1}
    axis = 1 if batch_first else 0
    assert input_time_axes(export.metadata, ranks) == {"input": axis, "h0": None, "lengths": None}
    # whatever the inputs are called (a factory's input_names): the sequence is the first
    renamed = {"audio": 3, "start": 3, "valid": 1}
    assert input_time_axes(export.metadata, renamed) == {"audio": axis, "start": None, "valid": None}


@pytest.mark.parametrize("extra", ["h0", "lengths"])
def test_a_web_bundle_of_a_lone_gru_with_h0_or_lengths(extra, tmp_path, run_cli):
    """``package --web`` reads the inputs' time axes: it failed on both files before."""
    gru = CustomGRU(4, 5)
    args = (torch.randn(6, 3, 4), torch.randn(1, 3, 5) if extra == "h0" else None,
            torch.tensor([6, 2, 1]) if extra == "lengths" else None)  # fmt: skip
    path = graph_export(gru, args, tmp_path / "g.onnx", check=False).path
    result = run_cli("package", str(path), "--web", "bundle")
    assert result.exit_code == 0, result.output
