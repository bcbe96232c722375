"""The GRU recurrence in PyTorch: the step math, one direction over time, and the layer stack.

Gate order and parameter layout follow ``torch.nn.GRU`` (r, z, n). Input projections for all
time steps are one matmul; only the recurrent part runs step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gru_onnx.spec import GRUSpec


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, spec: GRUSpec) -> Tensor:
    """One time step. ``gx`` is ``W_ih x + b_ih`` for this step, shape ``[B, 3H]``."""
    f, g = spec.recurrent_activation.torch, spec.activation.torch
    x_r, x_z, x_n = gx.chunk(3, dim=-1)
    hidden = spec.hidden_size
    if spec.reset_after:
        h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
        r = f(x_r + h_r)
        z = f(x_z + h_z)
        n = g(x_n + r * h_n)
    else:
        b_rz, b_n = (None, None) if b_hh is None else (b_hh[: 2 * hidden], b_hh[2 * hidden :])
        h_r, h_z = F.linear(h, w_hh[: 2 * hidden], b_rz).chunk(2, dim=-1)
        r = f(x_r + h_r)
        z = f(x_z + h_z)
        n = g(x_n + F.linear(r * h, w_hh[2 * hidden :], b_n))
    # (1 - z) * n + z * h, written as ATen and cuDNN write it.
    return n + z * (h - n)


def gru_direction(
    gx: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    spec: GRUSpec,
    *,
    reverse: bool = False,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run one direction over ``gx`` ``[T, B, 3H]``; return outputs ``[T, B, H]`` and last state.

    ``mask`` ``[T, B, 1]`` (bool) marks valid steps of a padded batch: past a sequence's end the
    state is held and the output is zero, as with ``pack_padded_sequence``.
    """
    steps = range(gx.shape[0] - 1, -1, -1) if reverse else range(gx.shape[0])
    outputs: list[Tensor] = [gx.new_empty(0)] * gx.shape[0]
    for t in steps:
        h_new = gru_step(gx[t], h, w_hh, b_hh, spec)
        if mask is None:
            h = h_new
            outputs[t] = h
        else:
            outputs[t] = torch.where(mask[t], h_new, torch.zeros_like(h_new))
            h = torch.where(mask[t], h_new, h)
    return torch.stack(outputs), h


def length_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """``[T, B, 1]`` bool mask of the valid steps of each sequence."""
    steps = torch.arange(seq_len, device=lengths.device)
    return (steps[:, None] < lengths.to(steps.device)[None, :])[..., None]


def gru_stack(
    x: Tensor,
    h0: Tensor | None,
    weights: Sequence[Tensor],
    spec: GRUSpec,
    *,
    lengths: Tensor | None = None,
    training: bool = False,
) -> tuple[Tensor, Tensor]:
    """All layers and directions. ``x`` is ``[T, B, I]`` (sequence first), ``h0`` ``[L*D, B, H]``.

    ``weights`` is the flat list in ``nn.GRU``'s order (``_flat_weights``).
    """
    per_dir = 4 if spec.bias else 2
    batch = x.shape[1]
    if h0 is None:
        h0 = x.new_zeros(spec.num_layers * spec.num_directions, batch, spec.hidden_size)
    mask = None if lengths is None else length_mask(lengths, x.shape[0])
    finals: list[Tensor] = []
    for layer in range(spec.num_layers):
        outs = []
        for d in spec.directions(layer):
            w_ih, w_hh, *biases = weights[d.index * per_dir : (d.index + 1) * per_dir]
            b_ih, b_hh = biases if biases else (None, None)
            gx = F.linear(x, w_ih, b_ih)
            y, h_last = gru_direction(gx, h0[d.index], w_hh, b_hh, spec, reverse=d.reverse, mask=mask)
            outs.append(y)
            finals.append(h_last)
        x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        if training and spec.dropout > 0 and layer < spec.num_layers - 1:
            x = F.dropout(x, spec.dropout, training=True)
    return x, torch.stack(finals)
