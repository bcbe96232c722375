"""Whole models as their users name and shape them: output and input names, factory options,
static shapes on request, time axes of static whole models, honest plots."""

from __future__ import annotations

import re
import sys
import textwrap
from typing import NamedTuple

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from gru_onnx import CustomGRU, read_metadata
from gru_onnx.report import render_text
from gru_onnx.trees import flatten_tensors

import flat
from conftest import run_ort
from flat import export

# Triton: names are identifiers, '.' and '-' allowed after the first character.
TRITON_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class Pair(NamedTuple):
    mask: torch.Tensor
    energy: torch.Tensor


class Denoiser(nn.Module):
    """Three GRUs, outputs as a NamedTuple."""

    def __init__(self) -> None:
        super().__init__()
        self.vad = CustomGRU(6, 4, batch_first=True, activation="relu")
        self.noise = CustomGRU(10, 5, batch_first=True, activation="relu")
        self.denoise = CustomGRU(15, 6, batch_first=True, activation="relu")
        self.gain = nn.Linear(6, 3)

    def forward(self, features: torch.Tensor) -> Pair:
        v, _ = self.vad(features)
        n, _ = self.noise(torch.cat([v, features], dim=-1))
        d, _ = self.denoise(torch.cat([v, n, features], dim=-1))
        return Pair(torch.sigmoid(self.gain(d)), torch.sigmoid(v.sum(-1)))


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = CustomGRU(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> dict:
        y, h = self.gru(x)
        return {"heads": {"tag": self.head(y), "pooled": y.mean(1)}, "state": (h,)}


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = CustomGRU(3, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.gru(x)
        return torch.sigmoid(y), torch.tanh(h)


class Echo(nn.Module):
    """Returns an output named like its input, and the same tensor twice."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = CustomGRU(3, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> dict:
        y, _ = self.gru(x)
        return {"x": y, "y": y}


class Star(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = CustomGRU(3, 4, batch_first=True)

    def forward(self, *streams: torch.Tensor) -> torch.Tensor:
        return self.gru(streams[0] + streams[1])[0]


def _outputs(path) -> list[str]:
    return [o.name for o in onnx.load(path).graph.output]


def _inputs(path) -> list[str]:
    return [i.name for i in onnx.load(path).graph.input]


def _eager(model: nn.Module, *args) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in flatten_tensors(model.eval()(*args))]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Denoiser(), ["mask", "energy"]),
        (Nested(), ["heads.tag", "heads.pooled", "state.0"]),
        (Plain(), ["output", "output_1"]),
    ],
    ids=["namedtuple", "nested-dict", "plain-tuple"],
)
def test_outputs_are_named_from_the_returned_structure(model, expected, tmp_path):
    x = torch.randn(2, 5, 6 if isinstance(model, Denoiser) else 3)
    path = tmp_path / "m.onnx"
    export(model, (x,), path)
    assert _outputs(path) == expected
    assert all(TRITON_NAME.match(n) for n in _outputs(path) + _inputs(path))
    # The names label the right tensors: ONNX Runtime's outputs by name equal the model's.
    got = run_ort(path, {_inputs(path)[0]: x.numpy()})
    for ours, theirs in zip(got, _eager(model, x), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_output_names_argument_wins(tmp_path):
    path = tmp_path / "m.onnx"
    export(Denoiser(), (torch.randn(2, 5, 6),), path, output_names=["gains", "vad"])
    assert _outputs(path) == ["gains", "vad"]


def test_an_output_named_like_an_input_gets_a_suffix_and_duplicates_both_run(tmp_path):
    model = Echo()
    x = torch.randn(2, 5, 3)
    path = tmp_path / "m.onnx"
    export(model, (x,), path)
    assert _inputs(path) == ["x"]
    assert _outputs(path) == ["x_out", "y"]
    first, second = run_ort(path, {"x": x.numpy()})
    expected = _eager(model, x)[0]
    np.testing.assert_allclose(first, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(second, expected, rtol=1e-4, atol=1e-5)


def test_var_args_inputs_are_input_input_1(tmp_path):
    model = Star()
    a, b = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    path = tmp_path / "m.onnx"
    export(model, (a, b), path)
    assert _inputs(path) == ["input", "input_1"]
    (y,) = run_ort(path, {"input": a.numpy(), "input_1": b.numpy()})
    np.testing.assert_allclose(y, _eager(model, a, b)[0], rtol=1e-4, atol=1e-5)
    # The batch stays dynamic through *args: another batch size runs.
    (y3,) = run_ort(path, {"input": np.ones((3, 5, 3), np.float32), "input_1": np.ones((3, 5, 3), np.float32)})
    assert y3.shape == (3, 5, 4)


def test_static_whole_model_reports_per_step_error_and_says_which_outputs_have_no_time_axis(tmp_path):
    path = tmp_path / "m.onnx"
    x = torch.randn(2, 6, 3)
    result = export(Nested(), (x,), path)  # static sequence length: no axis named seq in the file
    assert read_metadata(path)["time_axes"] == {"heads.tag": 1, "heads.pooled": None, "state.0": None}
    outputs = {o.name: o for o in result.parity.results[0].outputs}
    assert outputs["heads.tag"].time_axis == 1
    assert len(outputs["heads.tag"].per_step_max_abs) == 6
    assert outputs["heads.pooled"].per_step_max_abs is None
    text = render_text(result.parity)
    assert "no time axis (no per-step error): heads.pooled, state.0" in text


def test_first_failing_step_of_a_static_whole_model(tmp_path):
    """A file that goes wrong from step 3 on says so."""

    class Late(nn.Module):
        def __init__(self, shift: float) -> None:
            super().__init__()
            self.gru = CustomGRU(3, 4, batch_first=True)
            self.shift = shift

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.gru(x)
            mask = (torch.arange(y.shape[1]) >= 3).to(y.dtype).view(1, -1, 1)
            return y + self.shift * mask

    torch.manual_seed(1)
    exported = Late(0.5)
    source = Late(0.0)
    source.load_state_dict(exported.state_dict())
    path = tmp_path / "m.onnx"
    export(exported, (torch.randn(2, 6, 3),), path, check=False)
    report = flat.check_parity(source, path, (torch.randn(2, 6, 3),))
    assert not report.passed
    (output,) = report.results[0].outputs
    assert output.first_failing_step == 3


def test_plot_draws_exact_zeros_as_markers_on_a_stated_floor(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from gru_onnx.report import plot

    path = tmp_path / "m.onnx"
    result = export(Plain(), (torch.randn(2, 6, 3),), path)
    report = result.parity
    first = report.results[0].outputs[0]
    values = (0.0, 2e-7, 0.0, 3e-6, 0.0, 0.0)
    object.__setattr__(first, "per_step_max_abs", values)
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    plot(report, tmp_path / "p.png")
    (ax,) = figures[0].axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    exact = [label for label in labels if label.startswith("exactly 0 (drawn at")]
    assert len(exact) == 1
    floor = float(exact[0].split("drawn at ")[1].rstrip(")"))
    assert floor < 2e-7
    for line in ax.get_lines():
        ys = np.asarray(line.get_ydata(), dtype=float)
        if line.get_label() == first_label(report):
            # The error curve holds the non-zero errors only; zeros are not drawn as tiny errors.
            assert np.count_nonzero(np.isfinite(ys)) == 2
            np.testing.assert_array_equal(ys[np.isfinite(ys)], [2e-7, 3e-6])


def first_label(report) -> str:
    r = report.results[0]
    return f"{r.runtime}: {r.outputs[0].name}"


# --- the CLI: factory options, static batch ---------------------------------------------------

FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = CustomGRU(4, 8, batch_first=True, activation="relu")
        self.head = nn.Linear(8, 3)

    def forward(self, feats):
        y, _ = self.rnn(feats)
        return self.head(y)

def with_options():
    torch.manual_seed(0)
    return Tagger(), (torch.randn(2, 6, 4),), {"output_names": ["tags"], "strategy": "loop", "dynamic_seq": True}

def unknown_option():
    return Tagger(), (torch.randn(2, 6, 4),), {"colour": "red"}

def loose():
    torch.manual_seed(0)
    return Tagger(), (torch.randn(2, 6, 4),), {"atol": 1e-30, "rtol": 0.0}
"""


@pytest.fixture
def factory_module(tmp_path):
    (tmp_path / "opts_models.py").write_text(textwrap.dedent(FACTORY))
    sys.modules.pop("opts_models", None)
    yield "opts_models"
    sys.modules.pop("opts_models", None)


def test_factory_options_apply_and_flags_override_them(run_cli, tmp_path, factory_module):
    result = run_cli("export", "--model", f"{factory_module}:with_options", "-o", "a.onnx")
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path / "a.onnx")
    assert meta["strategy"] == "loop" and meta["dynamic_seq"]
    assert _outputs(tmp_path / "a.onnx") == ["tags"]
    (tags,) = run_ort(tmp_path / "a.onnx", {"feats": np.ones((1, 9, 4), np.float32)})
    assert tags.shape == (1, 9, 3)  # dynamic batch and sequence, as the options asked

    result = run_cli("export", "--model", f"{factory_module}:with_options", "--strategy", "native", "-o", "b.onnx")
    assert result.exit_code == 0, result.output
    assert read_metadata(tmp_path / "b.onnx")["strategy"] == "native"


def test_unknown_factory_option_is_a_usage_error(run_cli, factory_module, tmp_path):
    result = run_cli("export", "--model", f"{factory_module}:unknown_option", "-o", "c.onnx")
    assert result.exit_code == 2
    assert "unknown export option 'colour'" in result.output
    assert not (tmp_path / "c.onnx").exists()


def test_check_uses_the_factory_tolerances(run_cli, factory_module, tmp_path):
    assert run_cli("export", "--model", f"{factory_module}:with_options", "-o", "a.onnx").exit_code == 0
    # Same weights (seed 0); tolerances of 1e-30 and 0 cannot be met by float32 rounding.
    result = run_cli("check", "a.onnx", "--model", f"{factory_module}:loose")
    assert result.exit_code == 1, result.output
    assert "1e-30" in result.output
    # The command line's tolerances override the factory's.
    result = run_cli("check", "a.onnx", "--model", f"{factory_module}:loose", "--atol", "1e-5", "--rtol", "1e-4")
    assert result.exit_code == 0, result.output


def test_static_batch_of_one(run_cli, tmp_path):
    result = run_cli("export", "--activation", "relu", "--static-batch", "--batch", "1", "-o", "b1.onnx")
    assert result.exit_code == 0, result.output
    model = onnx.load(tmp_path / "b1.onnx")
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [20, 1, 16]
    assert read_metadata(tmp_path / "b1.onnx")["dynamic_batch"] is False
    inspected = run_cli("inspect", "b1.onnx")
    assert "batch axis     static" in inspected.output
    checked = run_cli("check", "b1.onnx")
    assert checked.exit_code == 0, checked.output  # no sample at another batch size for a static axis


def test_batch_one_needs_static_batch(run_cli, tmp_path):
    result = run_cli("export", "--activation", "relu", "--batch", "1", "-o", "x.onnx")
    assert result.exit_code == 2
    assert "--static-batch" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_whole_model_cli_shows_no_torch_internal_warnings(tmp_path, factory_module):
    """torch.export's internal warnings are hidden from CLI users (GRU_ONNX_DEBUG=1 shows them)."""
    import subprocess

    command = [sys.executable, "-m", "gru_onnx.cli", "export", "--model", f"{factory_module}:with_options"]
    quiet = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert quiet.returncode == 0, quiet.stderr
    assert "Warning" not in quiet.stderr + quiet.stdout
