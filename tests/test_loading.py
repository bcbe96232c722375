"""Loading what users point gru-onnx at (``gru_onnx.loading``): checkpoints loaded strictly,
with one-line messages that say what to do."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gru_onnx import CustomGRU

from helpers import run_ort


def test_checkpoint_weights_are_exported(run_cli, tmp_path):
    source = nn.GRU(16, 32)
    torch.save(source.state_dict(), tmp_path / "gru.pt")
    result = run_cli("export", "--checkpoint", "gru.pt", "--seq-len", "6")
    assert result.exit_code == 0, result.output
    x = torch.randn(6, 2, 16)
    (y, _) = run_ort(tmp_path / "gru.onnx", {"input": x.numpy()})
    np.testing.assert_allclose(y, source(x)[0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_mismatched_checkpoint_names_parameter_and_shapes(run_cli, tmp_path):
    torch.save(nn.GRU(16, 64).state_dict(), tmp_path / "big.pt")
    result = run_cli("export", "--checkpoint", "big.pt")
    assert result.exit_code == 2
    assert "'weight_ih_l0' has shape (192, 16), the model expects (96, 16)" in result.output
    assert not (tmp_path / "gru.onnx").exists()
    result = run_cli("export", "--checkpoint", "missing.pt")
    assert result.exit_code == 2 and "checkpoint not found: missing.pt" in result.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    result = run_cli("export", "--checkpoint", "junk.pt")
    assert result.exit_code == 2 and "cannot read checkpoint junk.pt" in result.output


def test_checkpoint_messages_say_what_to_do(run_cli, tmp_path):
    torch.save(CustomGRU(16, 32), tmp_path / "module.pt")
    result = run_cli("export", "--checkpoint", "module.pt")
    assert result.exit_code == 2 and "save model.state_dict()" in result.output
    wrapped = nn.Sequential()
    wrapped.rnn = CustomGRU(16, 32)
    torch.save(wrapped.state_dict(), tmp_path / "whole.pt")
    result = run_cli("export", "--checkpoint", "whole.pt")
    assert result.exit_code == 2 and "it has 'rnn.weight_ih_l0'" in result.output
    (tmp_path / "text.pt").write_text("hello")
    result = run_cli("export", "--checkpoint", "text.pt")
    assert result.exit_code == 2 and "not a torch.save file" in result.output
