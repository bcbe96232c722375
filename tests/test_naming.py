"""Names of a whole model's graph inputs and outputs (``gru_onnx.naming``), as its users name
them: from the returned structure, explicit names winning, clashes and duplicates resolved,
``*args`` inputs."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.trees import flatten_tensors

from flat import export
from helpers import Denoiser, run_ort

# Triton: names are identifiers, '.' and '-' allowed after the first character.
TRITON_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


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
        ("namedtuple", ["mask", "energy"]),
        ("nested-dict", ["heads.tag", "heads.pooled", "state.0"]),
        ("plain-tuple", ["output", "output_1"]),
    ],
    ids=["namedtuple", "nested-dict", "plain-tuple"],
)
def test_outputs_are_named_from_the_returned_structure(model, expected, whole_models):
    model, x, result = whole_models[model]  # exported once per session: (model, example, result)
    path = result.path
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


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"output_names": ["only"]}, r"output_names gives 1 name\(s\) \(only\), the exported graph has 2 output"),
        ({"output_names": ["a", "b", "c"]}, "output_names gives 3 name"),
        ({"input_names": ["x", "z"]}, r"input_names gives 2 name\(s\) \(x, z\), the exported graph has 1 input"),
        ({"input_names": ["x"], "output_names": ["x", "y"]}, "'x' is given twice"),
        ({"output_names": ["y", "y"]}, "'y' is given twice"),
        ({"output_names": ["", "b"]}, "must not be empty"),
    ],
)
def test_names_that_do_not_fit_the_graph_are_refused(names, message, tmp_path):
    """Too few or too many names exited 3 (zip() ... shorter), an extra input name was dropped
    without a word, a name given twice broke single assignment, an empty one the checker."""
    with pytest.raises(gru_onnx.GruOnnxUsageError, match=message):
        export(CustomGRU(4, 5), (torch.randn(6, 2, 4),), tmp_path / "n.onnx", check=False, **names)
    assert not (tmp_path / "n.onnx").exists()
