"""gru_onnx.wellformed: a file held to itself before anything in it is trusted (attack review of
the metadata hardening): subgraph initializers shadowing the weights the check reads, tensor data
that does not match its dims, graph inputs of unknown type or negative size. Each was exit 0
(a shadowed weight passed the check) or exit 3; each is now one line, exit 2, naming the tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU, GraphOptions, StreamingOptions

COMMANDS = {
    "check": ["check", "{}", "--samples", "1"], "bench": ["bench", "{}", "--runs", "1"],
    "package-web": ["package", "{}", "--web", "bundle"],
}  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wellformed")
    torch.manual_seed(0)
    gru = CustomGRU(4, 6, activation="relu")
    x = (torch.randn(5, 2, 4),)
    paths = {name: folder / f"{name}.onnx" for name in ("plain", "loop", "int8", "stream", "native", "ext")}
    gru_onnx.export(gru, x, paths["plain"], check=None)
    gru_onnx.export(gru, x, paths["loop"], graph=GraphOptions(strategy="loop"), check=None)
    gru_onnx.export(gru, x, paths["native"], graph=GraphOptions(strategy="native"), check=None)
    # int8 weights kept inside the loop body
    gru_onnx.quantize(paths["loop"], paths["int8"], gru_onnx.QuantizeOptions(mode="weights"))
    gru_onnx.export(CustomGRU(4, 6, batch_first=True, activation="relu"), (torch.randn(2, 5, 4),), paths["stream"],
                    streaming=StreamingOptions(enabled=True), check=None)  # fmt: skip
    big = CustomGRU(16, 32, activation="relu")
    gru_onnx.export(big, (torch.randn(5, 2, 16),), paths["ext"], saving=gru_onnx.SavingOptions(external_data=True),
                    check=None)  # fmt: skip
    torch.save(gru.state_dict(), folder / "ckpt.pt")
    paths["ckpt"] = folder / "ckpt.pt"
    return paths


def _body(model: onnx.ModelProto) -> onnx.GraphProto:
    (scan,) = [n for n in model.graph.node if n.op_type == "Scan"]
    return next(a.g for a in scan.attribute if a.name == "body")


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def test_gru_onnx_files_are_well_formed(files, run_cli):
    """The loop's and streaming's bodies, int8 weights kept inside a body, native, external data."""
    for name in ("plain", "loop", "int8", "stream", "native", "ext"):
        result = run_cli("check", str(files[name]), "--samples", "1")
        assert result.exit_code == 0, (name, result.output)


def test_a_body_initializer_shadowing_a_weight_is_refused(files, tmp_path, run_cli):
    """ONNX Runtime runs the body's copy, 1e-5 off; the check read the outer one and said the
    weights match (exit 0)."""
    model = onnx.load(files["loop"])
    outer = numpy_helper.to_array(_initializer(model, "weight_hh_l0.n")).copy()
    outer.flat[0] += 1e-5
    _body(model).initializer.append(numpy_helper.from_array(outer, "weight_hh_l0.n"))
    onnx.checker.check_model(model)  # ONNX accepts it
    onnx.save(model, tmp_path / "shadow.onnx")
    result = run_cli("check", str(tmp_path / "shadow.onnx"), "--checkpoint", str(files["ckpt"]))
    assert result.exit_code == 2, result.output
    assert "'weight_hh_l0.n', already defined outside it" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_a_shadowing_body_beside_a_misshapen_weight_is_refused(files, tmp_path, run_cli, command):
    """The outer tensor with wrong dims, a correct copy in the body: exit 3 before."""
    model = onnx.load(files["loop"])
    good = numpy_helper.to_array(_initializer(model, "weight_hh_l0.n"))
    _body(model).initializer.append(numpy_helper.from_array(good, "weight_hh_l0.n"))
    _initializer(model, "weight_hh_l0.n").CopyFrom(numpy_helper.from_array(np.zeros((3, 3), np.float32),
                                                                          "weight_hh_l0.n"))  # fmt: skip
    onnx.save(model, tmp_path / "f.onnx")
    result = run_cli(*[a.format(tmp_path / "f.onnx") for a in COMMANDS[command]])
    assert result.exit_code == 2 and "already defined outside it" in result.output, result.output
    assert not (tmp_path / "bundle").exists()


def test_a_body_node_output_or_input_shadowing_an_outer_name_is_refused(files, tmp_path, run_cli):
    for kind in ("output", "input"):
        model = onnx.load(files["loop"])
        body = _body(model)
        if kind == "output":
            body.node[0].output[0] = "weight_ih_l0"
            message = "'weight_ih_l0', already defined outside it"
        else:
            body.input[0].name = model.graph.input[0].name
            message = f"'{model.graph.input[0].name}', already defined outside it"
        onnx.save(model, tmp_path / f"{kind}.onnx")
        result = run_cli("check", str(tmp_path / f"{kind}.onnx"))
        assert result.exit_code == 2 and message in result.output, result.output


def _truncated(model):
    tensor = _initializer(model, "weight_ih_l0")
    tensor.raw_data = tensor.raw_data[:-4]


def _retyped(data_type):
    def change(model):
        _initializer(model, "weight_ih_l0").data_type = data_type

    return change


def _typed_fields(model):
    tensor = _initializer(model, "weight_ih_l0")
    values = numpy_helper.to_array(tensor).ravel()[:-1]
    tensor.ClearField("raw_data")
    tensor.float_data.extend(values.tolist())


DATA = {
    "raw-truncated": (_truncated, "needs 288 bytes; it holds 284 bytes"),
    "double": (_retyped(onnx.TensorProto.DOUBLE), "DOUBLE [18, 4], which needs 576 bytes; it holds 288 bytes"),
    "string": (_retyped(onnx.TensorProto.STRING), "holds strings as raw data"),
    "undefined": (_retyped(0), "has data type UNDEFINED"),
    "float-data-short": (_typed_fields, "needs 288 bytes; it holds 71 values in float_data"),
}


@pytest.mark.parametrize("case", DATA)
@pytest.mark.parametrize("command", COMMANDS)
def test_tensor_data_that_does_not_match_its_dims_is_refused(files, tmp_path, run_cli, case, command):
    change, message = DATA[case]
    model = onnx.load(files["plain"])
    change(model)
    onnx.save(model, tmp_path / "f.onnx")
    result = run_cli(*[a.format(tmp_path / "f.onnx") for a in COMMANDS[command]])
    assert result.exit_code == 2, result.output
    assert "'weight_ih_l0'" in result.output and message in result.output, result.output


@pytest.mark.parametrize("length", ["6148", "100"])
@pytest.mark.parametrize("command", COMMANDS)
def test_an_external_length_that_does_not_match_its_dims_is_refused(files, tmp_path, run_cli, length, command):
    folder = files["ext"].parent
    model = onnx.load(files["ext"], load_external_data=False)
    tensor = _initializer(model, "weight_ih_l0")
    next(e for e in tensor.external_data if e.key == "length").value = length
    target = folder / f"len{length}-{command}.onnx"
    onnx.save(model, target)
    result = run_cli(*[a.format(target) for a in COMMANDS[command]])
    assert result.exit_code == 2, result.output
    assert f"needs 6144 bytes; its external data is {length} bytes long" in result.output


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("input", lambda v: setattr(v.type.tensor_type, "elem_type", 0), "input 'input' has element type UNDEFINED"),
        ("state_in", lambda v: setattr(v.type.tensor_type, "elem_type", 0),
         "input 'state_in' has element type UNDEFINED"),
        ("input", lambda v: setattr(v.type.tensor_type.shape.dim[2], "dim_value", -5),
         "input 'input' declares axis 2 of size -5"),
    ],
    ids=["input-undefined", "state-undefined", "negative-dim"],
)  # fmt: skip
@pytest.mark.parametrize("command", COMMANDS)
def test_graph_inputs_of_unknown_type_or_negative_size_are_refused(files, tmp_path, run_cli, name, change, message,
                                                                    command):  # fmt: skip
    model = onnx.load(files["stream"])
    change(next(v for v in model.graph.input if v.name == name))
    onnx.save(model, tmp_path / "f.onnx")
    result = run_cli(*[a.format(tmp_path / "f.onnx") for a in COMMANDS[command]])
    assert result.exit_code == 2 and message in result.output, result.output
