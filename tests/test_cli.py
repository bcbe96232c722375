"""The gru-onnx command line, used as a person would: exit codes, messages, files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from gru_onnx import CustomGRU

from conftest import numpy_reference, run_ort


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


def test_mismatched_checkpoint_names_parameter_and_shapes(run_cli, tmp_path):
    torch.save(nn.GRU(16, 64).state_dict(), tmp_path / "big.pt")
    result = run_cli("export", "--checkpoint", "big.pt")
    assert result.exit_code == 2
    assert "'weight_ih_l0' has shape (192, 16), the model expects (96, 16)" in result.output
    assert not (tmp_path / "gru.onnx").exists()
    result = run_cli("export", "--checkpoint", "missing.pt")
    assert result.exit_code == 2 and "checkpoint not found: missing.pt" in result.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    result = run_cli("export", "--checkpoint", "junk.pt")
    assert result.exit_code == 2 and "cannot read checkpoint junk.pt" in result.output


def test_checkpoint_weights_are_exported(run_cli, tmp_path):
    source = nn.GRU(16, 32)
    torch.save(source.state_dict(), tmp_path / "gru.pt")
    result = run_cli("export", "--checkpoint", "gru.pt", "--seq-len", "6")
    assert result.exit_code == 0, result.output
    x = torch.randn(6, 2, 16)
    (y, _) = run_ort(tmp_path / "gru.onnx", {"input": x.numpy()})
    np.testing.assert_allclose(y, source(x)[0].detach().numpy(), rtol=1e-5, atol=1e-6)


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


def test_activations_listing(run_cli):
    result = run_cli("activations", "--opset", "17")
    assert result.exit_code == 0
    for name in ("gelu", "silu (swish)", "hard_sigmoid", "HardSigmoid (alpha=0.1667, beta=0.5)", "Erf"):
        assert name in result.output
    assert "Gelu" in run_cli("activations", "--opset", "20").output


@pytest.mark.skipif(shutil.which("gru-onnx") is None, reason="console script not installed")
def test_console_script_readme_command(tmp_path):
    proc = subprocess.run(["gru-onnx", "export", "--activation", "relu"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "gru.onnx").exists()
    bad = subprocess.run(["gru-onnx", "export", "--activation", "nope"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("Error: unknown activation") and "Traceback" not in bad.stderr


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


def test_inspect(run_cli, tmp_path):
    assert run_cli("export", "--strategy", "native", "--activation", "relu", "--lengths").exit_code == 0
    result = run_cli("inspect", "gru.onnx")
    assert result.exit_code == 0, result.output
    for text in ("native", "1-layer GRU(16->32, relu/sigmoid", "[20, batch, 16]", "lengths", "int64",
                 "GRU 1", "onnxruntime-cuda", "fallback", "RNNNeedFallbackToCPU", "ai.onnx 18"):  # fmt: skip
        assert text in result.output, text


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file: missing.onnx"), (b"not onnx at all", "is not a readable ONNX file"), ("truncate", "is not")],
)
def test_inspect_bad_files_exit_2(run_cli, tmp_path, content, message):
    name = "missing.onnx"
    if content == "truncate":
        assert run_cli("export", "--no-check").exit_code == 0
        (tmp_path / "cut.onnx").write_bytes((tmp_path / "gru.onnx").read_bytes()[:200])
        name = "cut.onnx"
    elif content is not None:
        (tmp_path / "junk.onnx").write_bytes(content)
        name = "junk.onnx"
    result = run_cli("inspect", name)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_requested_gpu_runtime_missing_is_exit_2_before_any_work(run_cli, tmp_path):
    from gru_onnx.runners import unavailable_reason

    if unavailable_reason("cuda") is None:
        pytest.skip("this machine has CUDA")
    result = run_cli("export", "--provider", "cuda")
    assert result.exit_code == 2 and "CUDA execution provider not available" in result.output
    assert not (tmp_path / "gru.onnx").exists()


def test_output_path_problems_exit_2_early(run_cli, tmp_path):
    (tmp_path / "adir").mkdir()
    result = run_cli("export", "-o", "adir")
    assert result.exit_code == 2 and "is a directory" in result.output
    result = run_cli("export", "-o", "/proc/gru.onnx")
    assert result.exit_code == 2 and "cannot write to /proc" in result.output


def test_written_file_has_ordinary_permissions(run_cli, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        assert run_cli("export", "--no-check").exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "gru.onnx").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["gru.onnx"]  # no temporary files left


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


def test_checkpoint_messages_say_what_to_do(run_cli, tmp_path):
    torch.save(CustomGRU(16, 32), tmp_path / "module.pt")
    result = run_cli("export", "--checkpoint", "module.pt")
    assert result.exit_code == 2 and "save model.state_dict()" in result.output
    wrapped = nn.Sequential()
    wrapped.rnn = CustomGRU(16, 32)
    torch.save(wrapped.state_dict(), tmp_path / "whole.pt")
    result = run_cli("export", "--checkpoint", "whole.pt")
    assert result.exit_code == 2 and "it has 'rnn.weight_ih_l0'" in result.output
    (tmp_path / "text.pt").write_text("hello")
    result = run_cli("export", "--checkpoint", "text.pt")
    assert result.exit_code == 2 and "not a torch.save file" in result.output


@pytest.mark.skipif(shutil.which("gru-onnx") is None, reason="console script not installed")
def test_console_usage_errors_are_one_line(tmp_path):
    proc = subprocess.run(["gru-onnx", "export", "--hidden-size", "-3"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "Error: Invalid value for '--hidden-size': -3 is not in the range x>=1. (see 'gru-onnx export --help')"
    ]
