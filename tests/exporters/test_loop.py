"""The loop strategy: the Scan body at the floor of nodes per step, and the Scan-output rule
ONNX Runtime needs. Written at the graph level (``helpers.graph_export``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from helpers import numpy_reference, run_ort, scan_bodies, small_export

LOOP_BODIES = [
    # reset after: Gemm + Sigmoid fuse into one FusedGemm in ONNX Runtime
    ({"activation": "relu"}, ["Gemm", "Sigmoid", "Split", "Gemm", "Mul", "Add", "Relu", "Sub", "Mul", "Add"]),
    # reset before: W_hn (r * h) + x_n is one Gemm with C
    ({"activation": "relu", "reset_after": False},
     ["Gemm", "Sigmoid", "Split", "Mul", "Gemm", "Relu", "Sub", "Mul", "Add"]),
    # erf gelu below opset 20: the state carried times sqrt(2), the activation y * (1 + erf(y))
    ({"activation": "gelu"},
     ["Gemm", "Sigmoid", "Split", "Gemm", "Mul", "Add", "Erf", "Add", "Mul", "Sub", "Mul", "Add"]),
    ({"activation": "gelu", "opset": 20},
     ["Gemm", "Sigmoid", "Split", "Gemm", "Mul", "Add", "Gelu", "Sub", "Mul", "Add"]),
    # other gates: the registry's emitter in Sigmoid's place
    ({"activation": "tanh", "recurrent_activation": "hard_sigmoid"},
     ["Gemm", "HardSigmoid", "Split", "Gemm", "Mul", "Add", "Tanh", "Sub", "Mul", "Add"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "ops"), LOOP_BODIES, ids=["relu", "relu-reset-before", "gelu-18", "gelu-20", "hard-sigmoid"]
)
def test_loop_body_is_the_floor(options, ops, tmp_path):
    _, _, result = small_export(tmp_path, strategy="loop", **options)
    assert result.passed, result.parity.summary()
    (body,) = scan_bodies(onnx.load(result.path))
    assert [n.op_type for n in body.node] == ops


@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_no_scan_body_lists_a_value_twice_among_its_outputs(activation, lengths, tmp_path):
    """ONNX Runtime loads and runs a Scan body listing one value twice among its outputs, and
    returns wrong numbers from step 2 on; every body we write has distinct outputs, and the
    numbers agree with the reference past step 2."""
    gru, (x, h0, lens), result = small_export(tmp_path, strategy="loop", activation=activation, bidirectional=True,
                                              lengths=lengths, seq=6)  # fmt: skip
    bodies = scan_bodies(onnx.load(result.path))
    assert len(bodies) == 2
    for body in bodies:
        names = [o.name for o in body.output]
        inputs = {i.name for i in body.input}
        assert len(names) == len(set(names)) and not inputs & set(names)
    feeds = {"input": x.numpy()} | ({"lengths": lens.numpy()} if lens is not None else {})
    y, h_n = run_ort(result.path, feeds)
    want_y, want_h = numpy_reference(gru, x, h0, lens)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-4, atol=1e-5)
