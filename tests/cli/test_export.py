"""``gru-onnx export``, used as a person would: the embedded default model and its options,
``--model`` factories and their options, checkpoints, ``--external-data``, streaming, targets."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch

import gru_onnx
from gru_onnx import CustomGRU, StreamingSession, read_metadata
from gru_onnx.metadata import load_model
from gru_onnx.rebuild import reference_from_file

import flat
from helpers import numpy_reference, run_ort, stream

TOL = {"rtol": 1e-4, "atol": 1e-5}


def _outputs(path) -> list[str]:
    return [o.name for o in onnx.load(path).graph.output]


def test_default_export_is_the_documented_model(run_cli, tmp_path):
    result = run_cli("export", "--activation", "relu")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "unrolled" in result.output
    # README: input 16, hidden 32, 1 layer, seq 20, seed 0 -> same weights as this module.
    torch.manual_seed(0)
    expected = CustomGRU(16, 32, activation="relu")
    model = onnx.load(tmp_path / "gru.onnx")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    source = {k: v.double().numpy() for k, v in expected.state_dict().items()}
    for name in ("weight_ih_l0", "weight_hh_l0"):
        stored = inits[name] if name in inits else np.concatenate([inits[f"{name}.rz"], inits[f"{name}.n"]])
        np.testing.assert_array_equal(stored, source[name].astype(np.float32))
    # the folded biases: r and z see b_ih + b_hh, the candidate b_in and b_hn apart
    np.testing.assert_array_equal(inits["bias_ih_l0.folded"][:64],
                                  (source["bias_ih_l0"] + source["bias_hh_l0"])[:64].astype(np.float32))  # fmt: skip
    np.testing.assert_array_equal(inits["bias_ih_l0.folded"][64:], source["bias_ih_l0"][64:].astype(np.float32))
    np.testing.assert_array_equal(inits["bias_hh_l0.n"], source["bias_hh_l0"][64:].astype(np.float32))
    x = torch.randn(20, 3, 16)
    y, _ = run_ort(tmp_path / "gru.onnx", {"input": x.numpy()})
    np.testing.assert_allclose(y, numpy_reference(expected, x)[0], rtol=1e-4, atol=1e-5)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 20


def test_every_constructor_option(run_cli, tmp_path):
    result = run_cli(
        "export", "--activation", "leaky_relu(alpha=0.2)", "--recurrent-activation", "hard_sigmoid",
        "--reset-before", "--input-size", "3", "--hidden-size", "5", "--num-layers", "2", "--no-bias",
        "--batch-first", "--bidirectional", "--seq-len", "4", "--batch", "3", "--with-h0", "--opset", "20",
        "-o", "out/m.onnx", "--seed", "7", "--atol", "1e-5", "--rtol", "1e-4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import gru_onnx

    meta = gru_onnx.read_metadata(tmp_path / "out" / "m.onnx")
    spec = meta["stacks"][0]["spec"]
    assert spec["activation"] == {"name": "leaky_relu", "params": {"alpha": 0.2}}
    assert spec["recurrent_activation"]["name"] == "hard_sigmoid"
    assert (spec["reset_after"], spec["bias"], spec["batch_first"], spec["bidirectional"]) == (False, False, True, True)
    assert (spec["input_size"], spec["hidden_size"], spec["num_layers"]) == (3, 5, 2)
    assert meta["opset"] == 20 and meta["stacks"][0]["has_h0"]


def test_unknown_activation_lists_valid_names_and_writes_nothing(run_cli, tmp_path):
    result = run_cli("export", "--activation", "gelux")
    assert result.exit_code == 2
    assert "unknown activation 'gelux'; valid names:" in result.output and "gelu" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "gru.onnx").exists()


FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU, register_activation

class Tagger(nn.Module):
    def __init__(self, activation="gelu"):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.rnn = CustomGRU(8, 10, batch_first=True, activation=activation)
        self.head = nn.Linear(10, 3)

    def forward(self, tokens):
        return self.head(self.rnn(self.embed(tokens))[0])

def tagger():
    return Tagger(), (torch.randint(0, 30, (2, 7)),)

def broken():
    register_activation("cli_mismatch", torch.relu, lambda op, x: op.Tanh(x), overwrite=True)
    return Tagger("cli_mismatch"), (torch.randint(0, 30, (2, 7)),)
"""


def test_model_factory_exports_a_whole_model(run_cli, tmp_path):
    (tmp_path / "mymodels.py").write_text(textwrap.dedent(FACTORY))
    result = run_cli("export", "--model", "mymodels:tagger", "-o", "tagger.onnx")
    assert result.exit_code == 0, result.output
    assert "rnn:" in result.output
    (logits,) = run_ort(tmp_path / "tagger.onnx", {"tokens": np.zeros((4, 7), dtype=np.int64)})
    assert logits.shape == (4, 7, 3)


def test_parity_failure_exits_1(run_cli, tmp_path):
    (tmp_path / "mymodels.py").write_text(textwrap.dedent(FACTORY))
    sys.modules.pop("mymodels", None)
    result = run_cli("export", "--model", "mymodels:broken")
    assert result.exit_code == 1
    assert "FAIL" in result.output and "parity check failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "mymodels:tagger", "--activation", "relu"], "--activation cannot be combined with --model"),
        (["--model", "nodots"], "--model must look like package.module:factory"),
        (["--model", "no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
        (["--opset", "9"], "opset 9 is not supported"),
        (["--strategy", "magic"], "unknown export strategy 'magic'"),
        (["--hidden-size", "0"], "Invalid value for '--hidden-size'"),
    ],
)
def test_usage_errors_exit_2(run_cli, tmp_path, args, message):
    (tmp_path / "mymodels.py").write_text(textwrap.dedent(FACTORY))
    result = run_cli("export", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "gru.onnx").exists()


def test_no_check(run_cli):
    result = run_cli("export", "--no-check", "--activation", "mish")
    assert result.exit_code == 0 and "not checked" in result.output


def test_strategy_dtype_lengths_and_dynamic_seq_options(run_cli, tmp_path):
    result = run_cli("export", "--activation", "gelu", "--strategy", "loop", "--dynamic-seq", "--lengths",
                 "--batch-first", "--seq-len", "6", "--batch", "3", "--dtype", "float16", "-o", "dyn.onnx")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "loop" in result.output and "float16" in result.output
    import gru_onnx

    meta = gru_onnx.read_metadata(tmp_path / "dyn.onnx")
    assert meta["dtype"] == "float16" and meta["dynamic_seq"] and meta["stacks"][0]["has_lengths"]
    x = np.random.randn(2, 9, 16).astype(np.float16)
    y, _ = run_ort(tmp_path / "dyn.onnx", {"input": x, "lengths": np.array([9, 4], dtype=np.int64)})
    assert y.shape == (2, 9, 32) and y.dtype == np.float16 and not y[1, 4:].any()


def test_auto_reports_its_choice(run_cli):
    result = run_cli("export")
    assert result.exit_code == 0, result.output
    assert "native: default activations" in result.output
    result = run_cli("export", "--activation", "relu", "--seq-len", "300", "-o", "long.onnx")
    assert result.exit_code == 0 and "loop: static length 300" in result.output


def test_native_with_non_default_activations_says_where_it_runs(run_cli):
    result = run_cli("export", "--strategy", "native", "--activation", "relu")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-cuda: fallback" in result.output
    result = run_cli("export", "--strategy", "native", "--activation", "gelu")
    assert result.exit_code == 2 and "cannot express activation 'gelu'" in result.output


def test_unrolled_with_dynamic_seq_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("export", "--strategy", "unrolled", "--dynamic-seq")
    assert result.exit_code == 2 and "fixes the sequence length" in result.output
    assert not (tmp_path / "gru.onnx").exists()


def test_requested_gpu_runtime_missing_is_exit_2_before_any_work(run_cli, tmp_path):
    from gru_onnx.runners import unavailable_reason

    if unavailable_reason("cuda") is None:
        pytest.skip("this machine has CUDA")
    result = run_cli("export", "--provider", "cuda")
    assert result.exit_code == 2 and "CUDA execution provider not available" in result.output
    assert not (tmp_path / "gru.onnx").exists()


BROKEN_FACTORIES = {
    "syntax_bad.py": "def f(:\n    pass\n",
    "raises.py": "def f():\n    raise ValueError('boom in factory')\n",
    "not_a_pair.py": "def f():\n    return 42\n",
}


@pytest.mark.parametrize(
    ("module", "message"),
    [("syntax_bad", "cannot import 'syntax_bad': SyntaxError"), ("raises", "raised ValueError: boom in factory"),
     ("not_a_pair", "must return (module, example_args)")],
)  # fmt: skip
def test_broken_factories_exit_2(run_cli, tmp_path, module, message):
    for name, body in BROKEN_FACTORIES.items():
        (tmp_path / name).write_text(body)
    result = run_cli("export", "--model", f"{module}:f")
    assert result.exit_code == 2 and message in result.output


def test_factory_options_apply_and_flags_override_them(run_cli, tmp_path, factory_module):
    result = run_cli("export", "--model", f"{factory_module}:with_options", "-o", "a.onnx")
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path / "a.onnx")
    assert meta["strategy"] == "loop" and meta["dynamic_seq"]
    assert _outputs(tmp_path / "a.onnx") == ["tags"]
    (tags,) = run_ort(tmp_path / "a.onnx", {"feats": np.ones((1, 9, 4), np.float32)})
    assert tags.shape == (1, 9, 3)  # dynamic batch and sequence, as the options asked

    result = run_cli("export", "--model", f"{factory_module}:with_options", "--strategy", "native", "-o", "b.onnx")
    assert result.exit_code == 0, result.output
    assert read_metadata(tmp_path / "b.onnx")["strategy"] == "native"


def test_unknown_factory_option_is_a_usage_error(run_cli, factory_module, tmp_path):
    result = run_cli("export", "--model", f"{factory_module}:unknown_option", "-o", "c.onnx")
    assert result.exit_code == 2
    assert "unknown export option 'colour'" in result.output
    assert not (tmp_path / "c.onnx").exists()


def test_static_batch_of_one(run_cli, tmp_path):
    result = run_cli("export", "--activation", "relu", "--static-batch", "--batch", "1", "-o", "b1.onnx")
    assert result.exit_code == 0, result.output
    model = onnx.load(tmp_path / "b1.onnx")
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [20, 1, 16]
    assert read_metadata(tmp_path / "b1.onnx")["dynamic_batch"] is False
    inspected = run_cli("inspect", "b1.onnx")
    assert "batch axis     static" in inspected.output
    checked = run_cli("check", "b1.onnx")
    assert checked.exit_code == 0, checked.output  # no sample at another batch size for a static axis


def test_batch_one_needs_static_batch(run_cli, tmp_path):
    result = run_cli("export", "--activation", "relu", "--batch", "1", "-o", "x.onnx")
    assert result.exit_code == 2
    assert "--static-batch" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export_check_inspect_on_a_lone_gru(run_cli, tmp_path):
    result = run_cli("export", "--external-data", "--no-check", "-o", "gru.onnx")
    assert result.exit_code == 0, result.output
    (data,) = [p for p in tmp_path.iterdir() if p.name.endswith(".data")]
    assert f"{data.name} (" in result.output and "external data" in result.output
    # check rebuilds the reference from the file: its GRU weights are read from the data file.
    checked = run_cli("check", "gru.onnx")
    assert checked.exit_code == 0, checked.output
    verdicts = [line.split()[-1] for line in checked.output.splitlines() if line.strip().startswith("ort-cpu")]
    assert verdicts == ["pass", "pass"]
    torch.manual_seed(0)  # the CLI's default model, seed 0
    source = CustomGRU(16, 32)
    rebuilt = reference_from_file(load_model(tmp_path / "gru.onnx"), gru_onnx.read_metadata(tmp_path / "gru.onnx"))
    for name, tensor in source.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[name], tensor, rtol=0, atol=0)
    shown = run_cli("inspect", "gru.onnx")
    assert shown.exit_code == 0, shown.output
    assert f"external data  {data.name} (" in shown.output
    default = run_cli("export", "--no-check", "-o", "inline.onnx")
    assert default.exit_code == 0 and not list(tmp_path.glob("inline.onnx.*"))


def test_target_on_the_command_line_and_bad_targets(tmp_path, run_cli):
    result = run_cli("export", "--activation", "relu", "--target", "cpu", "-o", "c.onnx")
    assert result.exit_code == 0, result.output
    assert gru_onnx.read_metadata(tmp_path / "c.onnx")["stacks"][0]["strategy"] == "native"
    with pytest.raises(gru_onnx.GruOnnxUsageError, match="unknown target 'gpu'"):
        flat.export(CustomGRU(4, 5), (torch.randn(3, 2, 4),), tmp_path / "x.onnx", target="gpu")
    assert not (tmp_path / "x.onnx").exists()
    assert run_cli("export", "--target", "gpu").exit_code == 2


def test_cli_export_inspect_check(run_cli, tmp_path):
    result = run_cli("export", "--streaming", "--chunk", "4", "--strategy", "unrolled", "--activation", "relu",
                     "--reset-before", "--num-layers", "2", "--batch-first", "-o", "s.onnx")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "state_in -> state_out" in result.output and "chunks of 4 steps" in result.output
    meta = read_metadata(tmp_path / "s.onnx")
    assert meta["chunk"] == 4 and meta["streaming"]["states"][0]["shape"] == ["batch", 2, 32]
    shown = run_cli("inspect", "s.onnx")
    assert shown.exit_code == 0 and "state_in -> state_out: model [batch, 2, 32]" in shown.output
    checked = run_cli("check", "s.onnx", "--streaming")
    assert checked.exit_code == 0, checked.output
    assert "chunks 4" in checked.output
    # The file itself against an independent reference: chunks of 4 from zero states.
    torch.manual_seed(0)
    gru = CustomGRU(16, 32, num_layers=2, batch_first=True, activation="relu", reset_after=False)
    x = torch.randn(2, 12, 16)
    with StreamingSession(tmp_path / "s.onnx") as session:
        got = stream(session, {"input": x.numpy()}, [4, 4, 4])["output"]
    np.testing.assert_allclose(got, numpy_reference(gru, x)[0], **TOL)


STREAMING_FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = CustomGRU(3, 4, batch_first=True, activation="relu")
        self.b = CustomGRU(4, 2, batch_first=True, activation="relu", reset_after=False)
    def forward(self, x):
        return self.b(self.a(x)[0])[0]

def make():
    torch.manual_seed(0)
    return Net(), (torch.randn(2, 6, 3),), {"streaming": True}
"""


def test_cli_model_factory_with_streaming_option(run_cli, tmp_path):
    (tmp_path / "streamy.py").write_text(textwrap.dedent(STREAMING_FACTORY))
    result = run_cli("export", "--model", "streamy:make", "-o", "m.onnx")
    assert result.exit_code == 0, result.output
    assert [s["input"] for s in read_metadata(tmp_path / "m.onnx")["streaming"]["states"]] == [
        "a_state_in", "b_state_in",
    ]  # fmt: skip
    checked = run_cli("check", "m.onnx", "--model", "streamy:make", "--chunks", "1,5")
    assert checked.exit_code == 0, checked.output
    assert "chunks 5" in checked.output


def test_cli_keras_does_not_combine_with_other_sources(run_cli, tmp_path):
    result = run_cli("export", "--keras", "m.keras", "--hidden-size", "8")
    assert result.exit_code == 2 and "--hidden-size cannot be combined with --keras" in result.output


CONV_FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class ConvFront(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.gru = CustomGRU(4, 5, batch_first=True)
    def forward(self, x):
        return self.gru(self.conv(x.transpose(1, 2)).transpose(1, 2))[0]

def make():
    torch.manual_seed(0)
    return ConvFront(), (torch.randn(2, 9, 4),)
"""


def test_a_streaming_export_failing_only_in_chunks_names_the_frame_local_rule(run_cli, tmp_path, monkeypatch):
    """The check's hint reached ``check`` but not ``export``: its last line only said "parity check failed"."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "convy.py").write_text(textwrap.dedent(CONV_FACTORY))
    result = run_cli("export", "--model", "convy:make", "--streaming", "-o", "c.onnx")
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert "parity check failed against PyTorch" in last and "frame-local" in last
    assert (tmp_path / "c.failed.onnx").is_file() and not (tmp_path / "c.onnx").exists()
