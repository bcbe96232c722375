"""The opaque op a CustomGRU becomes while it is exported (``gru_onnx._export_op``): eager calls
run the PyTorch recurrence, its fake gives torch.export the shapes, and its config says the rest."""

from __future__ import annotations

import json

import pytest
import torch

from gru_onnx import CustomGRU, _export_op


@pytest.mark.parametrize(("batch_first", "with_h0", "with_lengths"), [(False, False, False), (True, True, True)])
def test_the_op_computes_what_the_module_computes(batch_first, with_h0, with_lengths):
    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, activation="gelu")
    x = torch.randn((2, 5, 3) if batch_first else (5, 2, 3))
    h0 = torch.randn(4, 2, 4) if with_h0 else None
    lengths = torch.tensor([5, 2]) if with_lengths else None
    config = _export_op.make_config(gru.spec, has_h0=with_h0, has_lengths=with_lengths, batch_first=batch_first,
                                    path="encoder")  # fmt: skip
    assert json.loads(config) == {"spec": gru.spec.to_json(), "has_h0": with_h0, "has_lengths": with_lengths,
                                  "batch_first": batch_first, "path": "encoder"}  # fmt: skip
    with torch.no_grad():
        y, h_n = _export_op.gru(x, h0, lengths, list(gru._flat_weights), config)
        want_y, want_h = gru(x, h0, lengths=lengths)
    torch.testing.assert_close(y, want_y, rtol=0, atol=0)
    torch.testing.assert_close(h_n, want_h, rtol=0, atol=0)
    fake_y, fake_h = _export_op._gru_op_fake([x, *(t for t in (h0, lengths) if t is not None), *gru._flat_weights],
                                             config)  # fmt: skip
    assert (fake_y.shape, fake_h.shape) == (y.shape, h_n.shape)
