"""A CI test that exports a whole model and gates on parity (run: pytest examples/test_ci_parity.py).

The ``gru_onnx_export`` fixture comes with gru-onnx (a pytest plugin); ``assert_parity`` is
the same gate for a file you already have.
"""

from __future__ import annotations

import gru_onnx
from examples.tagger import make_model
from gru_onnx import CheckOptions, GraphOptions, ShapeOptions
from gru_onnx.testing import assert_parity


def test_tagger_exports_and_matches(gru_onnx_export):
    model, args = make_model()
    result = gru_onnx_export(model, args, check=CheckOptions(providers=("cpu", "openvino")))
    # GELU is not in ONNX's GRU list, and 20 steps are short: auto unrolls.
    assert result.metadata["stacks"][0]["strategy"] == "unrolled"


def test_existing_file_still_matches(tmp_path):
    model, args = make_model()
    path = gru_onnx.export(
        model, args, tmp_path / "tagger.onnx", graph=GraphOptions(strategy="loop"),
        shapes=ShapeOptions(dynamic_seq=True), check=None,
    ).path  # fmt: skip
    report = assert_parity(model, path, args, check=CheckOptions(providers=("all",)))
    assert report.passed
