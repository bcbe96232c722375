"""The opaque operator a CustomGRU becomes while it is exported.

During ``gru_onnx.export`` each CustomGRU calls ``gru_onnx::gru`` instead of its Python
recurrence, so ``torch.export`` sees one node per GRU stack. ``torch.onnx`` writes that node as
a placeholder ``gru_onnx.GRUStub`` node (inputs and a JSON config attribute); the export
strategy then replaces the placeholder with real ONNX. Eager calls of the op run the PyTorch
recurrence, but the op has no backward: training never goes through it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import onnxscript
import torch
from onnx.defs import OpSchema
from torch import Tensor

from gru_onnx.cell import gru_stack
from gru_onnx.spec import GRUSpec

STUB_DOMAIN = "gru_onnx"
STUB_OP = "GRUStub"


def make_config(spec: GRUSpec, *, has_h0: bool, has_lengths: bool, batch_first: bool, path: str) -> str:
    """The JSON the op carries: everything the strategy needs besides the tensors.

    ``batch_first`` is the layout of this call's input and output (an unbatched call of a
    batch-first module runs sequence-first).
    """
    config = {
        "spec": spec.to_json(),
        "has_h0": has_h0,
        "has_lengths": has_lengths,
        "batch_first": batch_first,
        "path": path,
    }
    return json.dumps(config, sort_keys=True)


def _split(inputs: Sequence[Tensor], cfg: dict[str, Any]) -> tuple[Tensor, Tensor | None, Tensor | None, list[Tensor]]:
    rest = list(inputs)
    x = rest.pop(0)
    h0 = rest.pop(0) if cfg["has_h0"] else None
    lengths = rest.pop(0) if cfg["has_lengths"] else None
    return x, h0, lengths, rest


@torch.library.custom_op("gru_onnx::gru", mutates_args=())
def _gru_op(inputs: list[Tensor], config: str) -> tuple[Tensor, Tensor]:
    cfg = json.loads(config)
    x, h0, lengths, weights = _split(inputs, cfg)
    if cfg["batch_first"]:
        x = x.transpose(0, 1)
    y, h_n = gru_stack(x, h0, weights, GRUSpec.from_json(cfg["spec"]), lengths=lengths)
    return (y.transpose(0, 1).contiguous() if cfg["batch_first"] else y), h_n


@_gru_op.register_fake
def _gru_op_fake(inputs: list[Tensor], config: str) -> tuple[Tensor, Tensor]:
    cfg = json.loads(config)
    spec = GRUSpec.from_json(cfg["spec"])
    x = inputs[0]
    dirs = spec.num_directions
    batch = x.shape[0] if cfg["batch_first"] else x.shape[1]
    y = x.new_empty(x.shape[0], x.shape[1], dirs * spec.hidden_size)
    h_n = x.new_empty(spec.num_layers * dirs, batch, spec.hidden_size)
    return y, h_n


def gru(
    x: Tensor, h0: Tensor | None, lengths: Tensor | None, weights: Sequence[Tensor], config: str
) -> tuple[Tensor, Tensor]:
    """Call the opaque op (the config says which optional inputs exist and the layout of ``x``)."""
    inputs = [x, *(t for t in (h0, lengths) if t is not None), *weights]
    return _gru_op(inputs, config)


_STUB_SCHEMA = OpSchema(
    STUB_OP,
    STUB_DOMAIN,
    1,
    inputs=[
        OpSchema.FormalParameter(
            "inputs",
            "V",
            param_option=OpSchema.FormalParameterOption.Variadic,
            is_homogeneous=False,
        )
    ],
    outputs=[OpSchema.FormalParameter("Y", "T"), OpSchema.FormalParameter("Y_h", "T")],
    type_constraints=[
        ("V", ["tensor(int64)", "tensor(float)", "tensor(float16)", "tensor(bfloat16)", "tensor(double)"], ""),
        ("T", ["tensor(float)", "tensor(float16)", "tensor(bfloat16)", "tensor(double)"], ""),
    ],
    attributes=[OpSchema.Attribute("config", OpSchema.AttrType.STRING, "JSON config")],
)
_STUB = onnxscript.values.Op(onnxscript.values.Opset(STUB_DOMAIN, 1), STUB_OP, _STUB_SCHEMA)


def _translate(inputs: Sequence[Any], config: str) -> Any:
    """torch.onnx translation: write the placeholder node (replaced later by the strategy)."""
    return _STUB(*inputs, config=config)


TRANSLATION_TABLE = {torch.ops.gru_onnx.gru.default: _translate}
