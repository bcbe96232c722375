"""Shared helpers: NumPy references for a module, and running a file on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import reference


def numpy_params(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.state_dict().items()}


def numpy_reference(gru, x, h0=None, lengths=None):
    """Reference output of a CustomGRU computed by tests/reference.py from the module's weights."""
    spec = gru.spec
    return reference.gru_stack(
        x.detach().double().numpy(),
        numpy_params(gru),
        num_layers=spec.num_layers,
        bidirectional=spec.bidirectional,
        activation_fn=reference.activation(spec.activation.name, **spec.activation.kwargs),
        recurrent_fn=reference.activation(spec.recurrent_activation.name, **spec.recurrent_activation.kwargs),
        reset_after=spec.reset_after,
        batch_first=spec.batch_first,
        h0=None if h0 is None else h0.detach().double().numpy(),
        lengths=None if lengths is None else lengths.numpy(),
    )


def run_ort(path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Invoke the CLI in a fresh working directory; never a traceback in its output."""
    from click.testing import CliRunner

    from gru_onnx.cli import cli

    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    return invoke
