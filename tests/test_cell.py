"""The recurrence in PyTorch (``gru_onnx.cell``), used for every activation but nn.GRU's own:
against NumPy in float64, and its gradients against nn.GRU's kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru_onnx import CustomGRU
from gru_onnx.cell import gru_stack

from helpers import NN_GRU_SHAPES, example, make_pair, numpy_reference

ACTIVATION_CASES = [
    ("relu", "sigmoid", True),
    ("gelu", "hard_sigmoid", False),
    ("silu", "sigmoid", True),
    ("leaky_relu(alpha=0.2)", "hard_sigmoid", True),
    ("tanh", "sigmoid", False),
    ("mish", "softsign", False),
]


@pytest.mark.parametrize(("act", "rec", "reset_after"), ACTIVATION_CASES)
@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "with_h0", "bias"), NN_GRU_SHAPES[:3])
def test_custom_activations_match_numpy(act, rec, reset_after, layers, bidirectional, batch_first, with_h0, bias):
    gru = CustomGRU(
        5,
        7,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        activation=act,
        recurrent_activation=rec,
        reset_after=reset_after,
    ).double()
    x, h0 = example(gru, h0=with_h0)
    x, h0 = x.double(), None if h0 is None else h0.double()
    got_y, got_h = gru(x, h0)
    want_y, want_h = numpy_reference(gru, x, h0)
    np.testing.assert_allclose(got_y.detach().numpy(), want_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_h.detach().numpy(), want_h, rtol=1e-10, atol=1e-12)


def test_gradients_match_nn_gru_and_training_reduces_loss():
    ref, gru = make_pair(2, True, True, True)
    x, h0 = example(gru, h0=True)
    # Gradients of the Python recurrence equal those of nn.GRU's kernel.
    y_ref, _ = ref(x, h0)
    y_ref.square().sum().backward()
    y, _ = gru_stack(x.transpose(0, 1), h0, gru._flat_weights, gru.spec)
    y.square().sum().backward()
    for (name, p_ref), p in zip(ref.named_parameters(), gru.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5, msg=name)

    model = CustomGRU(5, 7, batch_first=True, activation="gelu", recurrent_activation="hard_sigmoid", reset_after=False)
    target = torch.randn(3, 6, 7)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = (model(x)[0] - target).square().mean()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
