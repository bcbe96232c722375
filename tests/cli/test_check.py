"""``gru-onnx check``: files it cannot read, whole models and their factories, ``--model`` with
inputs, samples and sizes, the factory's tolerances, report paths."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest


@pytest.mark.parametrize("content", [b"", b"this is not an onnx file", "truncated"])
def test_unreadable_files_exit_2_with_one_line(exported, run_cli, tmp_path, content):
    _, _, path = exported
    if content == "truncated":
        content = path.read_bytes()[: len(path.read_bytes()) // 3]
    (tmp_path / "broken.onnx").write_bytes(content)
    result = run_cli("check", "broken.onnx")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert run_cli("check", "nowhere.onnx").exit_code == 2


FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 8)
        self.rnn = CustomGRU(8, 8, batch_first=True, activation="mish")

    def forward(self, x):
        return self.rnn(self.proj(x))[0]

def net():
    torch.manual_seed(0)
    return Net(), (torch.randn(2, 6, 5),)
"""


def test_whole_models_need_their_factory(run_cli, tmp_path):
    (tmp_path / "nets.py").write_text(textwrap.dedent(FACTORY))
    assert run_cli("export", "--model", "nets:net", "-o", "net.onnx").exit_code == 0
    result = run_cli("check", "net.onnx")
    assert result.exit_code == 2 and "holds a whole model" in result.output and "--model" in result.output
    result = run_cli("check", "net.onnx", "--model", "nets:net", "--provider", "all")
    assert result.exit_code == 0, result.output
    result = run_cli("check", "net.onnx", "--model", "nets:net", "--checkpoint", "x.pt")
    assert result.exit_code == 2 and "cannot be combined" in result.output


def test_unwritable_report_path_is_exit_2(exported, run_cli):
    _, _, path = exported
    result = run_cli("check", str(path), "--report", "/nonexistent/r.json")
    assert result.exit_code == 2 and "cannot write /nonexistent/r.json" in result.output


def test_check_uses_the_factory_tolerances(run_cli, factory_module, tmp_path):
    assert run_cli("export", "--model", f"{factory_module}:with_options", "-o", "a.onnx").exit_code == 0
    # Same weights (seed 0); tolerances of 1e-30 and 0 cannot be met by float32 rounding.
    result = run_cli("check", "a.onnx", "--model", f"{factory_module}:loose")
    assert result.exit_code == 1, result.output
    assert "1e-30" in result.output
    # The command line's tolerances override the factory's.
    result = run_cli("check", "a.onnx", "--model", f"{factory_module}:loose", "--atol", "1e-5", "--rtol", "1e-4")
    assert result.exit_code == 0, result.output


# Guards: check --model honours --inputs, --samples, --batch and --seq-len (trust review, item 7)
def test_check_with_a_model_uses_inputs_samples_and_sizes(run_cli, tmp_path):
    (tmp_path / "wm.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            from gru_onnx import CustomGRU

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = CustomGRU(4, 5, batch_first=True, activation="relu")
                    self.head = nn.Linear(5, 2)

                def forward(self, x):
                    return self.head(self.rnn(x)[0])

            def make():
                torch.manual_seed(0)
                return Net(), (torch.randn(2, 6, 4),)
            """
        )
    )
    assert run_cli("export", "--model", "wm:make", "-o", "m.onnx", "--dynamic-seq").exit_code == 0
    result = run_cli("check", "m.onnx", "--model", "wm:make", "--samples", "2", "--batch", "5", "--seq-len", "9",
                     "--report", "r.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    samples = json.loads((tmp_path / "r.json").read_text())["samples"]
    assert [s["x"] for s in samples] == [[2, 6, 4], [5, 9, 4]]
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 6, 3), np.float32))
    result = run_cli("check", "m.onnx", "--model", "wm:make", "--inputs", "bad.npz")
    assert result.exit_code == 2 and "'x' has shape [2, 6, 3], the file takes [batch, seq, 4]" in result.output
    np.savez(tmp_path / "good.npz", x=np.ones((3, 7, 4), np.float32))
    result = run_cli("check", "m.onnx", "--model", "wm:make", "--inputs", "good.npz", "--report", "g.json")
    assert result.exit_code == 0 and json.loads((tmp_path / "g.json").read_text())["samples"][0]["x"] == [3, 7, 4]
