"""CustomGRU (``gru_onnx.module``) as a drop-in for torch.nn.GRU: parameters, outputs, unbatched
and packed input, dropout, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gru_onnx import CustomGRU, GruOnnxUsageError
from gru_onnx.cell import gru_stack

from helpers import NN_GRU_SHAPES, example, make_pair, numpy_reference


def test_parameters_named_shaped_and_initialised_like_nn_gru():
    torch.manual_seed(3)
    ref = nn.GRU(5, 7, num_layers=2, bidirectional=True)
    torch.manual_seed(3)
    gru = CustomGRU(5, 7, num_layers=2, bidirectional=True, activation="relu")
    ref_state, state = ref.state_dict(), gru.state_dict()
    assert list(state) == list(ref_state)
    for name in ref_state:
        assert torch.equal(state[name], ref_state[name]), name
    assert "activation='relu'" in repr(gru)


@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "with_h0", "bias"), NN_GRU_SHAPES)
def test_default_activations_equal_nn_gru(layers, bidirectional, batch_first, with_h0, bias):
    ref, gru = make_pair(layers, bidirectional, batch_first, bias)
    x, h0 = example(gru, h0=with_h0)
    want_y, want_h = ref(x, h0)
    got_y, got_h = gru(x, h0)
    torch.testing.assert_close(got_y, want_y, rtol=0, atol=0)
    torch.testing.assert_close(got_h, want_h, rtol=0, atol=0)
    # The Python recurrence (used for every other activation) against nn.GRU's kernel.
    seq_x = x.transpose(0, 1) if batch_first else x
    y, h = gru_stack(seq_x, h0, gru._flat_weights, gru.spec)
    torch.testing.assert_close(y.transpose(0, 1) if batch_first else y, want_y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, want_h, rtol=1e-5, atol=1e-6)


def test_unbatched_input_matches_nn_gru():
    ref, gru = make_pair(2, True, False, True)
    x, h0 = torch.randn(6, 5), torch.randn(4, 7)
    for a, b in zip(gru(x, h0), ref(x, h0), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ref_y, _ = ref(x, h0)
    gen = CustomGRU(5, 7, num_layers=2, bidirectional=True, activation="relu")
    assert gen(x, h0)[0].shape == ref_y.shape


def test_dropout_only_in_training():
    gru = CustomGRU(5, 7, num_layers=2, dropout=0.5, activation="relu")
    x = torch.randn(6, 3, 5)
    gru.eval()
    torch.testing.assert_close(gru(x)[0], gru(x)[0])
    gru.train()
    assert not torch.equal(gru(x)[0], gru(x)[0])


@pytest.mark.parametrize(("act", "bidirectional"), [("tanh", True), ("relu", False), ("gelu", True)])
def test_packed_sequence_matches_nn_gru_semantics(act, bidirectional):
    ref, gru = make_pair(2, bidirectional, True, True, activation=act)
    x, h0 = example(gru, batch=4, seq=7, h0=True)
    lengths = torch.tensor([3, 7, 1, 5])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = gru(packed, h0)
    y, out_lengths = pad_packed_sequence(out, batch_first=True)
    assert torch.equal(out_lengths, lengths)
    # The same padded batch through lengths= (the Python recurrence) gives the same answer.
    y2, h2 = gru(x, h0, lengths=lengths)
    torch.testing.assert_close(y2, y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h2, h_n, rtol=1e-5, atol=1e-6)
    if act == "tanh":  # nn.GRU's own kernel on packed input: identical results
        ref_out, ref_h = ref(packed, h0)
        ref_y, _ = pad_packed_sequence(ref_out, batch_first=True)
        torch.testing.assert_close(y, ref_y, rtol=0, atol=0)
        torch.testing.assert_close(h_n, ref_h, rtol=0, atol=0)
    want_y, want_h = numpy_reference(gru.double(), x.double(), h0.double(), lengths)
    np.testing.assert_allclose(
        gru(x.double(), h0.double(), lengths=lengths)[0].detach().numpy(), want_y, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(h_n.detach().double().numpy(), want_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "call", "message"),
    [
        ({}, lambda g: g(torch.randn(4, 2, 6)), "input feature size is 6, expected input_size=5"),
        ({}, lambda g: g(torch.randn(4, 2, 5), torch.randn(2, 2, 7)), r"h0 has shape \(2, 2, 7\)"),
        ({"activation": "nope"}, None, "unknown activation 'nope'"),
        ({"num_layers": 0}, None, "num_layers must be a positive integer"),
        ({}, lambda g: g(torch.randn(4, 2, 5), lengths=torch.tensor([4, 0])), r"lengths must lie in 1..4"),
        ({}, lambda g: g(torch.randn(4, 2, 5), lengths=torch.tensor([5, 1])), r"lengths must lie in 1..4"),
        ({}, lambda g: g(torch.randn(4, 2, 5), lengths=torch.tensor([4])), r"lengths must have shape \[batch\]"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, call, message):
    with pytest.raises(GruOnnxUsageError, match=message):
        gru = CustomGRU(5, 7, **kwargs)
        call(gru)


def test_spec_follows_attributes_users_change():
    gru = CustomGRU(5, 7, num_layers=2, activation="relu")
    gru.dropout = 0.4
    assert gru.spec.dropout == 0.4
    gru.train()
    x = torch.randn(6, 3, 5)
    assert not torch.equal(gru(x)[0], gru(x)[0])  # dropout is applied between the layers
