"""Weight layouts (``gru_onnx.weights``): where each layout keeps the nn.GRU parameters, read
back exactly (torch, onnx_gru) or as the sums the gates see (folded), versioned, and files
written before the folding still read. Files are written at the graph level where they can be."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU, GruOnnxUsageError

from helpers import graph_export, small_export

DATA = Path(__file__).parent / "data"
LEGACY = ("legacy_loop_relu", "legacy_unrolled_gelu_reset_before")
STRATEGIES = ("unrolled", "loop", "native")


@pytest.mark.parametrize("reset_after", [True, False])
def test_folded_biases_are_the_sums_of_the_source_biases(reset_after, tmp_path):
    gru, _, result = small_export(tmp_path, strategy="loop", activation="relu", reset_after=reset_after)
    weights = result.metadata["stacks"][0]["weights"]
    assert (weights["layout"], weights["version"]) == ("folded", 1)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(result.path).graph.initializer}
    entry = weights["directions"]["_l0"]
    b_ih, b_hh = (gru.state_dict()[k].double().numpy() for k in ("bias_ih_l0", "bias_hh_l0"))
    want = b_ih + np.r_[b_hh[:10], np.zeros(5) if reset_after else b_hh[10:]]
    np.testing.assert_allclose(stored[entry["bias_x"]], want, rtol=1e-7, atol=1e-7)
    assert ("bias_hn" in entry) == reset_after
    if reset_after:
        np.testing.assert_array_equal(stored[entry["bias_hn"]], b_hh[10:].astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([stored[n] for n in entry["weight_hh"]]),
                                  gru.state_dict()["weight_hh_l0"].numpy())  # fmt: skip


@pytest.mark.parametrize("name", LEGACY)
def test_files_written_before_the_folding_still_pass_check(name, tmp_path, run_cli):
    shutil.copy(DATA / f"{name}.onnx", tmp_path / "old.onnx")
    shutil.copy(DATA / f"{name}.pt", tmp_path / "old.pt")
    meta = gru_onnx.read_metadata(tmp_path / "old.onnx")
    assert meta["stacks"][0]["weights"]["layout"] == "torch"
    assert run_cli("check", "old.onnx").exit_code == 0  # rebuilt from the file by the torch rule
    result = run_cli("check", "old.onnx", "--checkpoint", "old.pt")  # stored weights vs the source
    assert result.exit_code == 0, result.output
    assert "match the source" in result.output
    source = torch.load(tmp_path / "old.pt", weights_only=True)
    source[next(k for k in source if k.startswith("weight_hh"))][0, 0] += 0.05
    torch.save(source, tmp_path / "other.pt")
    assert run_cli("check", "old.onnx", "--checkpoint", "other.pt").exit_code == 1


# Guards: every weight layout reads back the source parameters, exactly where stored as they are, as the
#   rounded sums where folded (trust review, weights)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_layout_reads_back_the_source_parameters(strategy, tmp_path):
    from gru_onnx.rebuild import state_dict_from_file

    gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", reset_after=False)
    result = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy=strategy)
    assert result.parity.weights and all(w.passed for w in result.parity.weights)
    stored = state_dict_from_file(onnx.load(result.path), result.metadata["stacks"][0])
    if result.metadata["stacks"][0]["weights"]["layout"] != "folded":
        for name, tensor in gru.state_dict().items():
            np.testing.assert_array_equal(stored[name].numpy(), tensor.numpy())
        return
    # Folded biases: weights as they are; each bias sum as NumPy forms it, rounded once.
    source = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    for name in source:
        if name.startswith("weight"):
            np.testing.assert_array_equal(stored[name].numpy(), source[name])
        elif name.startswith("bias_ih"):  # reset before: every row of b_hh folds into b_ih
            want = (source[name].astype(np.float64) + source[name.replace("ih", "hh")]).astype(np.float32)
            np.testing.assert_array_equal(stored[name].numpy(), want)
            assert not stored[name.replace("ih", "hh")].numpy().any()


# Guards: weight layouts carry a version; unversioned files (0.1) read as version 1, newer ones are refused
#   (trust review, weights)
def test_weight_layouts_are_versioned(tmp_path):
    from gru_onnx.rebuild import state_dict_from_file

    gru = CustomGRU(3, 4, activation="relu")
    result = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="loop", check=False)
    model = onnx.load(result.path)
    stack = dict(result.metadata["stacks"][0])
    assert stack["weights"]["layout"] == "folded" and stack["weights"]["version"] == 1
    unversioned = {**stack, "weights": {k: v for k, v in stack["weights"].items() if k != "version"}}
    assert set(state_dict_from_file(model, unversioned)) == set(gru.state_dict())  # files from 0.1
    newer = {**stack, "weights": {**stack["weights"], "version": 99}}
    with pytest.raises(GruOnnxUsageError, match="version 99 is newer than this gru-onnx reads"):
        state_dict_from_file(model, newer)
