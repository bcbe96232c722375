"""Property-based parity: random GRU configurations, exported and run on ONNX Runtime, against
the NumPy reference (tests/reference.py), written from the equations and independent of the code.

Profiles: ``ci`` (the default) is derandomized, so every run tries the same configurations,
with a bounded number of examples; ``thorough`` (``GRU_ONNX_PROPERTIES=thorough``) draws many
more, at random. Every failure found becomes a plain regression test below the property.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gru_onnx import CustomGRU
from gru_onnx.activations import parse_activation

from helpers import graph_export, numpy_reference, run_ort

PROFILES = {
    "ci": settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)),
    "thorough": settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck)),
}
PROFILE = PROFILES[os.environ.get("GRU_ONNX_PROPERTIES", "ci")]

_num = st.floats(allow_nan=False, allow_infinity=False, width=32)
#: Candidate activations with parameter ranges (builtins only; tests register others).
CANDIDATES = {
    "tanh": {}, "relu": {}, "relu6": {}, "selu": {}, "gelu": {}, "gelu_tanh": {}, "silu": {}, "mish": {},
    "softsign": {}, "hard_swish": {}, "linear": {}, "sigmoid": {},
    "leaky_relu": {"alpha": _num.filter(lambda v: 0 <= v <= 0.5)},
    "elu": {"alpha": _num.filter(lambda v: 0.1 <= v <= 2)},
    "celu": {"alpha": _num.filter(lambda v: 0.2 <= v <= 2)},
    "softplus": {"beta": _num.filter(lambda v: 0.5 <= v <= 3), "threshold": _num.filter(lambda v: 5 <= v <= 25)},
    "hardtanh": {"min_val": _num.filter(lambda v: -2 <= v <= -0.5), "max_val": _num.filter(lambda v: 0.5 <= v <= 2)},
}  # fmt: skip
#: Gates stay within [0, 1] (unbounded gates let the state explode, which proves nothing).
GATES = {
    "sigmoid": {},
    "hard_sigmoid": {"alpha": _num.filter(lambda v: 0.1 <= v <= 0.5), "beta": _num.filter(lambda v: 0.3 <= v <= 0.7)},
}


@st.composite
def activations(draw, table):
    name = draw(st.sampled_from(sorted(table)))
    params = {k: round(draw(v), 3) for k, v in table[name].items()}
    text = name + ("(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "")
    return parse_activation(text)


@st.composite
def configurations(draw):
    config = {
        "input_size": draw(st.integers(1, 5)),
        "hidden_size": draw(st.integers(1, 6)),
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "reset_after": draw(st.booleans()),
        "activation": draw(activations(CANDIDATES)),
        "recurrent_activation": draw(activations(GATES)),
    }
    natives = config["activation"].native() is not None and config["recurrent_activation"].native() is not None
    strategies = ["unrolled", "loop", "auto"] + (["native"] if natives else [])
    export = {
        "strategy": draw(st.sampled_from(strategies)),
        "opset": draw(st.integers(17, 25)),
        "dtype": draw(st.sampled_from(["float32", "float32", "float16"])),
    }
    data = {
        "seq": draw(st.integers(1, 7)),
        "batch": draw(st.integers(2, 4)),
        "h0": draw(st.booleans()),
        "lengths": draw(st.sampled_from([None, "some_full", "none_full"])),
        "scale": draw(st.sampled_from([1.0, 10.0, 100.0]) if export["dtype"] == "float32" else st.just(1.0)),
        "seed": draw(st.integers(0, 2**16)),
    }
    if export["strategy"] != "unrolled" and data["seq"] >= 2:  # torch.export needs 2 for a dynamic axis
        export["dynamic_seq"] = draw(st.booleans())
    return config, export, data


def _inputs(gru: CustomGRU, data: dict, seq: int, batch: int, gen: torch.Generator):
    spec = gru.spec
    shape = (batch, seq, spec.input_size) if spec.batch_first else (seq, batch, spec.input_size)
    x = data["scale"] * torch.randn(*shape, generator=gen)
    h0 = 0.5 * data["scale"] * torch.randn(spec.num_layers * spec.num_directions, batch, spec.hidden_size,
                                           generator=gen) if data["h0"] else None  # fmt: skip
    lengths = None
    if data["lengths"]:
        lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
        if data["lengths"] == "some_full":
            lengths[0] = seq
        else:  # a batch in which no sequence is full length
            lengths = torch.clamp(lengths, max=max(seq - 1, 1))
    return x, h0, lengths


def check_configuration(config: dict, export: dict, data: dict, tmp_path) -> None:
    """Export one configuration and compare ONNX Runtime with the NumPy reference (float32),
    or with the float16 PyTorch model through the package's own check (float16)."""
    torch.manual_seed(data["seed"])
    gru = CustomGRU(**config)
    gen = torch.Generator().manual_seed(data["seed"])
    args = _inputs(gru, data, data["seq"], data["batch"], gen)
    half = export["dtype"] == "float16"
    # At the graph level: the file export writes, byte for byte (exporters/test_strategies.py
    # holds that), without torch.export's seconds per case.
    result = graph_export(gru, args, tmp_path / "p.onnx", check=half, **export)
    if half:
        assert result.passed, result.parity.summary()
        return
    # Run the file at the example's sizes, and at other sizes where its axes are dynamic.
    runs = [args]
    if export.get("dynamic_seq") or result.metadata["stacks"][0]["seq_len"] is None:
        runs.append(_inputs(gru, data, data["seq"] + 2, data["batch"] + 1, gen))
    else:
        runs.append(_inputs(gru, data, data["seq"], data["batch"] + 1, gen))
    names = ("input", "h0", "lengths")
    for x, h0, lengths in runs:
        feeds = {n: a.numpy() for n, a in zip(names, (x, h0, lengths), strict=True) if a is not None}
        y, h_n = run_ort(result.path, feeds)
        want_y, want_h = numpy_reference(gru, x, h0, lengths)
        tol = {"rtol": 2e-4, "atol": 2e-5 * data["scale"]}
        np.testing.assert_allclose(y, want_y, **tol, err_msg=f"{config} {export} {data}")
        np.testing.assert_allclose(h_n, want_h, **tol, err_msg=f"{config} {export} {data}")


@PROFILE
@given(case=configurations())
def test_random_configurations_match_the_numpy_reference(case, tmp_path_factory):
    config, export, data = case
    check_configuration(config, export, data, tmp_path_factory.mktemp("prop"))


# Regression cases found by the property above, kept as plain tests. (float16 cases draw unit
# inputs only: at x100 float16's 3 digits give errors of several units in states of hundreds,
# which says nothing about the file; the check's own float16 scales stop at x4.)
REGRESSIONS = [
    # celu in float16 crashed the export (ONNX's Celu is float32-only).
    ({"input_size": 2, "hidden_size": 3, "num_layers": 1, "bidirectional": False, "batch_first": False, "bias": True,
      "reset_after": True, "activation": parse_activation("celu(alpha=0.5)"),
      "recurrent_activation": parse_activation("sigmoid")},
     {"strategy": "loop", "opset": 18, "dtype": "float16"},
     {"seq": 3, "batch": 2, "h0": False, "lengths": None, "scale": 1.0, "seed": 1}),
]  # fmt: skip


@pytest.mark.parametrize("case", REGRESSIONS, ids=lambda c: f"{c[0]['activation']}-{c[1]['strategy']}")
def test_regressions_found_by_the_property(case, tmp_path):
    check_configuration(*case, tmp_path)
