"""``gru_onnx.export`` end to end: the graph's interface and metadata, whole models, errors that
leave no file, a failed check reported, a type error named, byte-identical files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gru_onnx import CustomGRU, ExportError, GruOnnxUsageError, register_activation

import flat
from helpers import inputs, make, run_ort


def export_and_run(gru, args, tmp_path, **kwargs):
    path = tmp_path / "gru.onnx"
    kwargs.setdefault("strategy", "unrolled")
    result = flat.export(gru, args, path, **kwargs)
    feeds = {name: a.numpy() for name, a in zip(["input", "h0"], args, strict=False)}
    return result, run_ort(path, feeds)


def test_graph_interface_metadata_and_weights_stored_once(tmp_path):
    gru = make(2, True, activation="leaky_relu(alpha=0.2)", reset_after=False)
    args = inputs(gru, seq=6, with_h0=True)
    result, _ = export_and_run(gru, args, tmp_path)
    model = onnx.load(result.path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input", "h0"]
    assert [o.name for o in model.graph.output] == ["output", "h_n"]
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "batch"
    assert model.graph.output[1].type.tensor_type.shape.dim[1].dim_param == "batch"
    # Each parameter stored once (not once per step), in the folded layout: weight_ih as it is,
    # weight_hh as two row blocks (r,z rows and n rows), and this reset-before GRU's biases as
    # one sum b_ih + b_hh per direction, as the metadata lists them.
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    stored = json.loads(next(p.value for p in model.metadata_props if p.key == "gru_onnx"))["stacks"][0]
    state = gru.state_dict()
    for d in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        entry = stored["weights"]["directions"][d]
        assert set(entry) == {"weight_ih", "weight_hh", "bias_x"}
        np.testing.assert_array_equal(arrays[entry["weight_ih"]], state[f"weight_ih{d}"].numpy())
        np.testing.assert_array_equal(np.concatenate([arrays[b] for b in entry["weight_hh"]]),
                                      state[f"weight_hh{d}"].numpy())  # fmt: skip
        bias = state[f"bias_ih{d}"].double().numpy() + state[f"bias_hh{d}"].double().numpy()
        np.testing.assert_array_equal(arrays[entry["bias_x"]], bias.astype(np.float32))
    assert len([n for n in arrays if n.startswith(("weight_", "bias_"))]) == 4 * 4
    # 6 steps x 2 layers x 2 directions: one recurrent Gemm (r,z) + one (n) each
    assert result.node_counts["Gemm"] == 6 * 2 * 2 * 2
    assert result.node_counts["MatMul"] == 4  # input projection: one per layer and direction
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == "gru_onnx"))
    assert meta["strategy"] == "unrolled" and meta["opset"] == 18
    (stack,) = meta["stacks"]
    assert stack["spec"]["activation"] == {"name": "leaky_relu", "params": {"alpha": 0.2}}
    assert stack["spec"]["reset_after"] is False and stack["seq_len"] == 6 and stack["has_h0"]
    assert stack["weights"]["directions"]["_l1_reverse"]["weight_hh"] == [
        "weight_hh_l1_reverse.rz",
        "weight_hh_l1_reverse.n",
    ]


class Tagger(nn.Module):
    """Embedding -> CustomGRU -> Linear: a whole model, batch first."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.encoder = CustomGRU(8, 12, num_layers=2, batch_first=True, bidirectional=True, activation="silu")
        self.head = nn.Linear(24, 5)

    def forward(self, tokens):
        y, _ = self.encoder(self.embed(tokens))
        return self.head(y)


def test_whole_model_with_dynamic_batch(tmp_path):
    model = Tagger()
    tokens = torch.randint(0, 50, (2, 9))
    result = flat.export(model, (tokens,), tmp_path / "tagger.onnx", strategy="unrolled")
    assert result.passed
    assert result.metadata["stacks"][0]["path"] == "encoder"
    assert result.metadata["stacks"][0]["weights"]["directions"]["_l0"]["weight_ih"] == "encoder.weight_ih_l0"
    onnx_model = onnx.load(result.path)
    (inp,) = onnx_model.graph.input
    batch_feed = torch.randint(0, 50, (5, 9))  # another batch size than the example
    (logits,) = run_ort(result.path, {inp.name: batch_feed.numpy()})
    with torch.no_grad():
        want = model(batch_feed).numpy()
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5)
    assert logits.shape == (5, 9, 5)


def test_errors_leave_no_file(tmp_path):
    out = tmp_path / "never.onnx"
    with pytest.raises(GruOnnxUsageError, match="contains no CustomGRU"):
        flat.export(nn.Linear(3, 3), (torch.randn(2, 3),), out)
    with pytest.raises(GruOnnxUsageError, match="'nope'; valid strategies: auto, loop, native, unrolled"):
        flat.export(make(), inputs(make()), out, strategy="nope")
    with pytest.raises(GruOnnxUsageError, match="opset 12 is not supported"):
        flat.export(make(), inputs(make()), out, opset=12)
    assert list(tmp_path.iterdir()) == []


def test_parity_failure_is_reported(tmp_path):
    register_activation("mismatched", torch.relu, lambda op, x: op.Tanh(x), overwrite=True)
    gru = make(1, activation="mismatched")
    result = flat.export(gru, inputs(gru), tmp_path / "bad.onnx", strategy="unrolled")
    assert not result.passed
    (runtime,) = result.parity.results
    assert runtime.status == "failed"
    assert all(not o.passed and o.max_abs > 1e-3 for o in runtime.outputs)


# Guards: an op given a type it does not take (a float-only Celu in float16) is a clear ExportError, no file
#   (trust review, item 2)
def test_an_op_given_a_type_it_does_not_take_is_a_clear_export_error(tmp_path, run_cli):
    register_activation("celu_float_only", F.celu, lambda op, x: op.Celu(x), overwrite=True)
    gru = CustomGRU(4, 6, activation="celu_float_only")
    with pytest.raises(ExportError, match="does not type-check"):
        flat.export(gru, (torch.randn(5, 2, 4),), tmp_path / "c.onnx", dtype="float16")
    assert not (tmp_path / "c.onnx").exists()


STRATEGIES = ("unrolled", "loop", "native")
#: The reproducibility model, exported once per strategy, each in a fresh child of one other
#: process (forked after torch is imported): "another process" without a torch import each.
_EXPORT_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch, gru_onnx
    from gru_onnx import CustomGRU
    for strategy in sys.argv[2:]:
        pid = os.fork()
        if pid == 0:
            torch.manual_seed(0)
            gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", reset_after=False)
            gru_onnx.export(gru, (torch.randn(5, 2, 3),), os.path.join(sys.argv[1], strategy + ".onnx"),
                            graph=gru_onnx.GraphOptions(strategy=strategy), check=None)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0, strategy
    """
)


@pytest.fixture(scope="module")
def exported_elsewhere(tmp_path_factory):
    """The folder holding ``<strategy>.onnx`` written by another process."""
    folder = tmp_path_factory.mktemp("elsewhere")
    subprocess.run([sys.executable, "-c", _EXPORT_SCRIPT, str(folder), *STRATEGIES], check=True, capture_output=True)
    return folder


# Guards: the same model and inputs give byte-identical files, in one process and across
# processes (trust review, item 4)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_inputs_give_byte_identical_files(strategy, tmp_path, exported_elsewhere):
    digests = []
    for i in range(2):  # twice in this process ...
        torch.manual_seed(0)
        gru = CustomGRU(3, 4, num_layers=2, bidirectional=True, activation="relu", reset_after=False)
        path = flat.export(gru, (torch.randn(5, 2, 3),), tmp_path / f"{i}.onnx", strategy=strategy, check=False)
        digests.append(hashlib.sha256(path.path.read_bytes()).hexdigest())
    other = exported_elsewhere / f"{strategy}.onnx"  # ... and once in another
    digests.append(hashlib.sha256(other.read_bytes()).hexdigest())
    assert len(set(digests)) == 1
