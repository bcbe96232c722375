"""A whole model around a CustomGRU: Embedding -> 2-layer bidirectional GELU GRU -> Linear.

Export it from the command line (from the repository root):

    gru-onnx export --model examples.tagger:make_model -o tagger.onnx

or run this file to export it through the Python API and print the parity report.
"""

from __future__ import annotations

import torch
from torch import nn

from gru_onnx import CustomGRU


class Tagger(nn.Module):
    """Token ids [batch, seq] -> per-token logits [batch, seq, classes]."""

    def __init__(self, vocab: int = 1000, embed: int = 64, hidden: int = 128, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = CustomGRU(
            embed, hidden, num_layers=2, batch_first=True, bidirectional=True,
            activation="gelu", recurrent_activation="hard_sigmoid",
        )  # fmt: skip
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.embed(tokens))
        return self.head(output)


def make_model() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The factory `gru-onnx export --model` calls: (module, example_args)."""
    torch.manual_seed(0)
    return Tagger(), (torch.randint(0, 1000, (2, 20)),)


if __name__ == "__main__":
    import gru_onnx

    model, args = make_model()
    result = gru_onnx.export(model, args, "tagger.onnx")
    print(f"{result.path}: {result.num_nodes} nodes, {result.file_size / 1024:.0f} KiB, {result.seconds:.1f} s")
    print(result.parity.summary())
