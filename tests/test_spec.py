"""The frozen description of a GRU stack (``gru_onnx.spec``) and the one dtype table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from gru_onnx import GruOnnxUsageError
from gru_onnx.spec import FLOAT_TYPES, GRUSpec, float_type


def test_spec_round_trips_through_json_and_names_parameters_as_nn_gru():
    spec = GRUSpec(3, 4, num_layers=2, bidirectional=True, activation="leaky_relu(alpha=0.2)", reset_after=False)
    assert GRUSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert spec.all_parameter_names() == tuple(nn.GRU(3, 4, num_layers=2, bidirectional=True).state_dict())
    assert [(d.layer, d.reverse, d.index, d.suffix) for d in spec.directions(1)] == [
        (1, False, 2, "_l1"), (1, True, 3, "_l1_reverse"),
    ]  # fmt: skip
    assert spec.describe() == "2-layer GRU(3->4, leaky_relu(alpha=0.2)/sigmoid, bidirectional, reset_before)"
    assert not spec.is_torch_default and GRUSpec(3, 4).is_torch_default


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hidden_size": 0}, "hidden_size must be a positive integer"),
        ({"input_size": True}, "input_size must be a positive integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"activation": "nope"}, "unknown activation 'nope'"),
    ],
)
def test_spec_refuses_bad_fields(fields, message):
    with pytest.raises(GruOnnxUsageError, match=message):
        GRUSpec(**{"input_size": 3, "hidden_size": 4, **fields})


def test_the_dtype_table():
    assert float_type("float16") is float_type(torch.float16) is FLOAT_TYPES["float16"]
    assert (float_type("float64").torch, float_type("float64").numpy) == (torch.float64, np.dtype("float64"))
    with pytest.raises(GruOnnxUsageError, match="unknown dtype 'int8'; valid dtypes: float32, float16, float64"):
        float_type("int8")
