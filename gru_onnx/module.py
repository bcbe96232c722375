"""``CustomGRU``: a drop-in for ``torch.nn.GRU`` with pluggable activations and reset forms."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from gru_onnx import _export_op
from gru_onnx.activations import BoundActivation
from gru_onnx.cell import gru_stack
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.spec import GRUSpec


class CustomGRU(nn.RNNBase):
    """A GRU with the parameters, shapes and initialisation of ``torch.nn.GRU``.

    ``activation`` is the candidate activation (``g``, default tanh), ``recurrent_activation``
    the gate activation (``f``, default sigmoid); both take registry names such as
    ``"relu"`` or ``"leaky_relu(alpha=0.2)"``. ``reset_after=False`` selects the original
    form ``g(W x + U (r * h))``. With the defaults it computes exactly what ``nn.GRU`` does
    (and uses the same fused kernel), so ``load_state_dict(nn_gru.state_dict())`` just works.

    ``forward(input, hx=None, lengths=None)`` accepts what ``nn.GRU`` accepts, including a
    ``PackedSequence``; ``lengths`` (int64 ``[batch]``) is the padded-batch alternative to
    packing: outputs past each sequence's end are zero and ``h_n`` is each sequence's last state.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        activation: str | BoundActivation = "tanh",
        recurrent_activation: str | BoundActivation = "sigmoid",
        reset_after: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # Validate (and normalise activation names) before allocating anything.
        self.spec = GRUSpec(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            bidirectional=bidirectional,
            activation=activation,  # type: ignore[arg-type]
            recurrent_activation=recurrent_activation,  # type: ignore[arg-type]
            reset_after=reset_after,
            dropout=float(dropout),
        )
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=float(dropout),
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        # Set by gru_onnx.export while tracing: this module's path in the exported model.
        self._export_path: str | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Keep the spec in step with nn.RNNBase attributes a user may change after
        # construction (model.dropout = 0.3); sizes cannot change without new weights.
        super().__setattr__(name, value)
        if name in ("dropout", "batch_first") and "spec" in self.__dict__:
            self.__dict__["spec"] = dataclasses.replace(self.spec, **{name: value})

    @classmethod
    def from_spec(cls, spec: GRUSpec, **kwargs: Any) -> CustomGRU:
        """Build a CustomGRU described by ``spec`` (e.g. read from an exported file)."""
        return cls(
            spec.input_size,
            spec.hidden_size,
            num_layers=spec.num_layers,
            bias=spec.bias,
            batch_first=spec.batch_first,
            dropout=spec.dropout,
            bidirectional=spec.bidirectional,
            activation=spec.activation,
            recurrent_activation=spec.recurrent_activation,
            reset_after=spec.reset_after,
            **kwargs,
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        spec = self.spec
        text += f", activation={str(spec.activation)!r}"
        text += f", recurrent_activation={str(spec.recurrent_activation)!r}"
        if not spec.reset_after:
            text += ", reset_after=False"
        return text

    def forward(  # type: ignore[override]
        self, input: Tensor | PackedSequence, hx: Tensor | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        """Run the GRU; returns ``(output, h_n)`` with ``nn.GRU``'s shapes and layouts."""
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise GruOnnxUsageError("pass either a PackedSequence or lengths=, not both")
            return self._forward_packed(input, hx)
        spec = self.spec
        unbatched = input.dim() == 2
        if input.dim() not in (2, 3):
            raise GruOnnxUsageError(f"CustomGRU expects 2-D or 3-D input, got {input.dim()}-D")
        if input.shape[-1] != spec.input_size:
            raise GruOnnxUsageError(f"input feature size is {input.shape[-1]}, expected input_size={spec.input_size}")
        # Unbatched input is [seq, feature] whatever batch_first says: run it as a batch of one.
        x, batch_first = (input.unsqueeze(1), False) if unbatched else (input, spec.batch_first)
        if hx is not None:
            if unbatched:
                hx = hx.unsqueeze(1)
            batch = x.shape[0 if batch_first else 1]
            expected = (spec.num_layers * spec.num_directions, batch, spec.hidden_size)
            if tuple(hx.shape) != expected:
                raise GruOnnxUsageError(f"h0 has shape {tuple(hx.shape)}, expected {expected}")
        if lengths is not None and self._export_path is None:
            seq = x.shape[1 if batch_first else 0]
            if lengths.dim() != 1 or lengths.shape[0] != x.shape[0 if batch_first else 1]:
                raise GruOnnxUsageError(f"lengths must have shape [batch], got {tuple(lengths.shape)}")
            if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > seq):
                raise GruOnnxUsageError(f"lengths must lie in 1..{seq} (the sequence length), got {lengths.tolist()}")
        y, h_n = self._run(x, hx, lengths, batch_first)
        if unbatched:
            return y.squeeze(1), h_n.squeeze(1)
        return y, h_n

    def _run(self, x: Tensor, hx: Tensor | None, lengths: Tensor | None, batch_first: bool) -> tuple[Tensor, Tensor]:
        """Batched core, ``x`` and the output in the given layout: the export op while
        exporting, else the eager recurrence."""
        if self._export_path is not None:
            config = _export_op.make_config(
                self.spec,
                has_h0=hx is not None,
                has_lengths=lengths is not None,
                batch_first=batch_first,
                path=self._export_path,
            )
            # Attribute access (not _flat_weights) so torch.export sees named parameters.
            weights = [getattr(self, name) for name in self._flat_weights_names]
            return _export_op.gru(x, hx, lengths, weights, config)
        if self.spec.is_torch_default and lengths is None:
            # Exactly nn.GRU: use its fused (cuDNN / MKL) kernel.
            if hx is None:
                batch = x.shape[0 if batch_first else 1]
                hx = x.new_zeros(self.num_layers * self.spec.num_directions, batch, self.hidden_size)
            out = torch._VF.gru(  # type: ignore[attr-defined]
                x,
                hx,
                self._flat_weights,
                self.bias,
                self.num_layers,
                float(self.dropout),
                self.training,
                self.bidirectional,
                batch_first,
            )
            return out[0], out[1]
        seq_first = x.transpose(0, 1) if batch_first else x
        y, h_n = gru_stack(seq_first, hx, self._flat_weights, self.spec, lengths=lengths, training=self.training)
        return (y.transpose(0, 1) if batch_first else y), h_n

    def _forward_packed_fused(self, packed: PackedSequence, hx: Tensor | None) -> tuple[PackedSequence, Tensor]:
        """Exactly ``nn.GRU`` on packed input: its fused kernel, in the packed (sorted) order."""
        if hx is None:
            batch = int(packed.batch_sizes[0])
            hx = packed.data.new_zeros(self.num_layers * self.spec.num_directions, batch, self.hidden_size)
        elif packed.sorted_indices is not None:
            hx = hx.index_select(1, packed.sorted_indices)
        out = torch._VF.gru(  # type: ignore[attr-defined]
            packed.data, packed.batch_sizes, hx, self._flat_weights, self.bias, self.num_layers,
            float(self.dropout), self.training, self.bidirectional,
        )  # fmt: skip
        h_n = out[1] if packed.unsorted_indices is None else out[1].index_select(1, packed.unsorted_indices)
        return PackedSequence(out[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), h_n

    def _forward_packed(self, packed: PackedSequence, hx: Tensor | None) -> tuple[PackedSequence, Tensor]:
        """PackedSequence in, PackedSequence out, as ``nn.GRU`` does (through a length mask).

        ``pad_packed_sequence`` restores the caller's batch order, which is the order ``hx``
        and ``h_n`` use, so the padded batch runs as it is and only the output is re-packed.
        """
        if self.spec.is_torch_default and self._export_path is None:
            return self._forward_packed_fused(packed, hx)
        padded, lengths = pad_packed_sequence(packed, batch_first=False)
        y, h_n = self._run(padded, hx, lengths.to(padded.device), batch_first=False)
        order = packed.sorted_indices
        if order is not None:
            y, lengths = y.index_select(1, order), lengths.index_select(0, order.cpu())
        data = pack_padded_sequence(y, lengths, enforce_sorted=True).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), h_n


__all__ = ["CustomGRU"]
