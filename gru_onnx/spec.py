"""One frozen description of a GRU stack, shared by the module, the exporters and the metadata,
and the one table of the floating types files are written in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from gru_onnx import registry
from gru_onnx.activations import BoundActivation, parse_activation
from gru_onnx.errors import GruOnnxUsageError


@dataclass(frozen=True)
class Direction:
    """One layer and direction of a stack, in ``nn.GRU``'s order: where its state sits in
    ``h0``/``h_n`` (``index``) and the suffix of its parameter names (``_l1_reverse``)."""

    layer: int
    reverse: bool
    index: int
    suffix: str

    def param(self, name: str) -> str:
        """``nn.GRU``'s name for this direction's ``name`` (``weight_ih`` -> ``weight_ih_l0``)."""
        return name + self.suffix


@dataclass(frozen=True)
class GRUSpec:
    """Sizes, layout and math of a (possibly multi-layer, bidirectional) GRU.

    ``reset_after=True`` is PyTorch's / cuDNN's form (ONNX ``linear_before_reset=1``):
    ``n = g(W_in x + b_in + r * (W_hn h + b_hn))``. ``False`` is the original form of Cho et al.
    (ONNX ``linear_before_reset=0``): ``n = g(W_in x + b_in + W_hn (r * h) + b_hn)``.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    bidirectional: bool = False
    activation: BoundActivation = BoundActivation("tanh")  # noqa: RUF009 (frozen, immutable)
    recurrent_activation: BoundActivation = BoundActivation("sigmoid")  # noqa: RUF009
    reset_after: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GruOnnxUsageError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise GruOnnxUsageError(f"dropout must be in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "activation", parse_activation(self.activation))
        object.__setattr__(self, "recurrent_activation", parse_activation(self.recurrent_activation))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def is_torch_default(self) -> bool:
        """True when this is exactly ``torch.nn.GRU`` (tanh, sigmoid, reset after)."""
        return (
            self.activation == BoundActivation("tanh")
            and self.recurrent_activation == BoundActivation("sigmoid")
            and self.reset_after
        )

    def directions(self, layer: int | None = None) -> Iterator[Direction]:
        """Every layer and direction (or those of one ``layer``) in ``nn.GRU``'s parameter order."""
        layers = range(self.num_layers) if layer is None else (layer,)
        for lay in layers:
            for d in range(self.num_directions):
                yield Direction(lay, d == 1, lay * self.num_directions + d, f"_l{lay}" + ("_reverse" if d else ""))

    def parameter_names(self, direction: Direction) -> tuple[str, ...]:
        """``nn.GRU``'s parameter names for one layer and direction (weights, then biases)."""
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        return tuple(direction.param(n) for n in names)

    def all_parameter_names(self) -> tuple[str, ...]:
        return tuple(n for d in self.directions() for n in self.parameter_names(d))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["activation"] = self.activation.to_json()
        data["recurrent_activation"] = self.recurrent_activation.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GRUSpec:
        fields = dict(data)
        fields["activation"] = BoundActivation.from_json(fields["activation"])
        fields["recurrent_activation"] = BoundActivation.from_json(fields["recurrent_activation"])
        return cls(**fields)

    def describe(self) -> str:
        """A one-line human summary, e.g. ``2x GRU(16->32, relu/sigmoid, bi, reset_after)``."""
        parts = [f"{self.activation}/{self.recurrent_activation}"]
        if self.bidirectional:
            parts.append("bidirectional")
        parts.append("reset_after" if self.reset_after else "reset_before")
        if self.batch_first:
            parts.append("batch_first")
        if not self.bias:
            parts.append("no bias")
        return f"{self.num_layers}-layer GRU({self.input_size}->{self.hidden_size}, {', '.join(parts)})"


@dataclass(frozen=True)
class FloatType:
    """A floating type by its metadata name, with its torch and NumPy forms; ``export``: a type
    files can be written in (:data:`gru_onnx.registry.EXPORT_DTYPES`)."""

    name: str
    torch: torch.dtype
    numpy: np.dtype
    export: bool


#: The one dtype table: metadata names -> torch and NumPy types.
FLOAT_TYPES: dict[str, FloatType] = {
    name: FloatType(name, getattr(torch, name), np.dtype(name), name in registry.EXPORT_DTYPES)
    for name in ("float32", "float16", "float64")
}


def float_type(name: str | torch.dtype) -> FloatType:
    """The table's entry for a name (``"float16"``) or a torch dtype; unknown ones are refused."""
    key = str(name).removeprefix("torch.")
    if key not in FLOAT_TYPES:
        raise GruOnnxUsageError(f"unknown dtype {key!r}; valid dtypes: {', '.join(FLOAT_TYPES)}")
    return FLOAT_TYPES[key]
