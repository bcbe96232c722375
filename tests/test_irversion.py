"""IR versions (gru_onnx.irversion): each rule on a small hand-built model, then written files."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch
from onnx import TensorProto, helper

from gru_onnx import CustomGRU, read_metadata
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.irversion import check_request, ir_report, needed_ir_version, stamp
from gru_onnx.saving import save_model

from flat import export, quantize
from helpers import run_ort


def _model(opset: int = 18, nodes=(), initializers=(), outputs=None, **kwargs) -> onnx.ModelProto:
    """``y = Identity(x)`` (plus ``nodes``) at ``opset``, stamped IR 10 as torch.onnx writes."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="id"), *nodes],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kwargs)
    model.ir_version = 10
    return model


def _tensor(data_type: int, name: str = "w") -> onnx.TensorProto:
    return helper.make_tensor(name, data_type, [2], [0, 1])


# ---------------------------------------------------------------- the opset floor


@pytest.mark.parametrize(("opset", "ir_version"), [(13, 7), (17, 8), (18, 8), (19, 9), (20, 9), (21, 10), (23, 11)])
def test_the_opset_sets_the_floor(opset, ir_version):
    model = _model(opset)
    assert needed_ir_version(model) == (ir_version, f"opset {opset} needs IR {ir_version}")
    assert stamp(model) == ir_version == model.ir_version
    onnx.checker.check_model(model, full_check=True)


def test_a_function_opset_raises_the_floor():
    function = helper.make_function("local", "f", ["a"], ["b"], [helper.make_node("Identity", ["a"], ["b"])],
                                    [helper.make_opsetid("", 21)])  # fmt: skip
    model = _model(18, functions=[function])
    assert needed_ir_version(model) == (10, "opset 21 needs IR 10")


# ---------------------------------------------------------------- content above the floor


def _in_subgraph(tensor: onnx.TensorProto) -> onnx.NodeProto:
    """An If whose then-branch holds ``tensor`` as an initializer (a subgraph two levels down)."""
    inner = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "inner", [],
                              [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])], [tensor])  # fmt: skip
    branch = helper.make_graph([helper.make_node("If", ["c"], ["u"], then_branch=inner, else_branch=inner)], "then",
                               [], [helper.make_tensor_value_info("u", TensorProto.FLOAT, [2])])  # fmt: skip
    return helper.make_node("If", ["c"], ["z"], then_branch=branch, else_branch=branch)


def _sparse(data_type: int) -> onnx.SparseTensorProto:
    return helper.make_sparse_tensor(_tensor(data_type, "s"), helper.make_tensor("i", TensorProto.INT64, [2], [0, 1]),
                                     [4])  # fmt: skip


@pytest.mark.parametrize(
    ("content", "ir_version", "reason"),
    [
        ({"initializers": [_tensor(TensorProto.FLOAT8E4M3FN)]}, 9, "a FLOAT8E4M3FN tensor needs IR 9"),
        ({"initializers": [_tensor(TensorProto.INT4)]}, 10, "a INT4 tensor needs IR 10"),
        ({"initializers": [_tensor(TensorProto.FLOAT4E2M1)]}, 11, "a FLOAT4E2M1 tensor needs IR 11"),
        ({"nodes": [_in_subgraph(_tensor(TensorProto.FLOAT8E5M2))]}, 9, "a FLOAT8E5M2 tensor needs IR 9"),
        ({"nodes": [helper.make_node("Constant", [], ["k"], value=_tensor(TensorProto.UINT4, "k"))]}, 10,
         "a UINT4 tensor needs IR 10"),
        ({"nodes": [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT8E4M3FNUZ)]}, 9,
         "Cast to FLOAT8E4M3FNUZ needs IR 9"),
        ({"outputs": [helper.make_tensor_value_info("y", TensorProto.INT4, [2])]}, 10,
         "a INT4 value type needs IR 10"),
        ({"nodes": [helper.make_node("Identity", ["x"], ["o"], overload="fast")]}, 10, "a node overload needs IR 10"),
    ],
    ids=["float8", "int4", "float4", "float8-in-nested-subgraph", "uint4-constant", "cast-to-float8", "int4-output",
         "overload"],
)  # fmt: skip
def test_content_raises_the_version_above_the_opset_floor(content, ir_version, reason):
    model = _model(18, **content)
    assert needed_ir_version(model) == (ir_version, reason)
    assert stamp(model) == ir_version


def test_a_sparse_initializer_counts():
    model = _model(18)
    model.graph.sparse_initializer.append(_sparse(TensorProto.FLOAT8E4M3FN))
    assert needed_ir_version(model) == (9, "a FLOAT8E4M3FN tensor needs IR 9")


def test_the_content_stamped_higher_still_checks():
    """A file that needs more than its opset floor is stamped higher and passes the checker."""
    model = _model(18, initializers=[_tensor(TensorProto.FLOAT8E4M3FN)],
                   outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]),
                            helper.make_tensor_value_info("w", TensorProto.FLOAT8E4M3FN, [2])])  # fmt: skip
    assert stamp(model) == 9
    onnx.checker.check_model(model, full_check=True)


# ---------------------------------------------------------------- requests and IR-10 annotations


def test_asking_for_less_than_the_content_needs_is_refused_with_the_reason():
    with pytest.raises(GruOnnxUsageError, match=r"^cannot write IR version 7: opset 17 needs IR 8$"):
        stamp(_model(17), 7)
    with pytest.raises(GruOnnxUsageError, match=r"^cannot write IR version 8: a INT4 tensor needs IR 10$"):
        stamp(_model(18, initializers=[_tensor(TensorProto.INT4)]), 8)
    with pytest.raises(GruOnnxUsageError, match="knows IR versions up to"):
        stamp(_model(18), onnx.IR_VERSION + 1)
    with pytest.raises(GruOnnxUsageError, match="must be an integer"):
        stamp(_model(18), True)
    with pytest.raises(GruOnnxUsageError, match=r"^cannot write IR version 8: opset 21 needs IR 10$"):
        check_request(8, 21)
    check_request(8, 18)
    check_request(None, 25)


def _annotated(ir_version_request: int | None) -> onnx.ModelProto:
    model = _model(18)
    helper.set_model_props(model, {"gru_onnx": json.dumps({"producer": "gru-onnx"}), "other": "kept"})
    for holder in (model.graph, model.graph.input[0], model.graph.node[0]):
        holder.metadata_props.add(key="pkg.torch", value="annotation")
    stamp(model, ir_version_request)
    return model


def test_below_ir_10_the_annotations_are_dropped_and_the_model_metadata_kept():
    model = _annotated(None)
    assert model.ir_version == 8
    assert not model.graph.metadata_props and not model.graph.input[0].metadata_props
    assert not model.graph.node[0].metadata_props
    props = {p.key: p.value for p in model.metadata_props}
    assert props["other"] == "kept"
    assert json.loads(props["gru_onnx"]) == {"ir_version": 8, "producer": "gru-onnx"}
    onnx.checker.check_model(model, full_check=True)


def test_asking_for_a_higher_version_is_honoured_and_keeps_annotations_from_ir_10():
    model = _annotated(10)
    assert model.ir_version == 10 and len(model.graph.metadata_props) == 1
    assert json.loads({p.key: p.value for p in model.metadata_props}["gru_onnx"])["ir_version"] == 10
    assert _annotated(9).graph.metadata_props == []


def test_the_report_warns_when_stored_is_higher_than_needed():
    report = ir_report(_model(17))
    assert (report.stored, report.needed, report.reason) == (10, 8, "opset 17 needs IR 8")
    assert report.higher_than_needed
    assert report.warning() == (
        "the file is stamped IR 10 but its content needs only IR 8 (opset 17 needs IR 8): runtimes that read only "
        "older IR versions refuse it (ONNX Runtime before 1.18 reads IR 9 at most); writing it again with gru-onnx "
        "stamps IR 8"
    )
    model = _model(17)
    stamp(model)
    assert ir_report(model).warning() is None


# ---------------------------------------------------------------- written files


@pytest.fixture(scope="module")
def gru() -> CustomGRU:
    torch.manual_seed(0)
    return CustomGRU(8, 16, num_layers=2, activation="relu").eval()


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("strategy", ["loop", "unrolled"])
def test_opset_17_and_18_files_are_ir_8_checked_and_recorded(gru, tmp_path, opset, strategy):
    x = torch.randn(5, 2, 8)
    path = tmp_path / "gru.onnx"
    export(gru, (x,), path, strategy=strategy, opset=opset, check=False)
    model = onnx.load(path)
    assert model.ir_version == 8 and read_metadata(model)["ir_version"] == 8
    onnx.checker.check_model(model, full_check=True)
    graphs = [model.graph, *(a.g for n in model.graph.node for a in n.attribute if a.type == a.GRAPH)]
    assert not any(g.metadata_props for g in graphs)
    assert not any(v.metadata_props for g in graphs for v in (*g.input, *g.output, *g.value_info))
    with torch.no_grad():
        want = gru(x)[0].numpy()
    np.testing.assert_allclose(run_ort(path, {"input": x.numpy()})[0], want, rtol=1e-4, atol=1e-5)


def test_int8_and_external_data_files_are_stamped(gru, tmp_path):
    source = tmp_path / "float.onnx"
    export(gru, (torch.randn(5, 2, 8),), source, strategy="loop", opset=17, check=False, external_data=True)
    assert onnx.load(source, load_external_data=False).ir_version == 8
    for mode in ("weights", "dynamic"):
        quantize(source, tmp_path / f"{mode}.onnx", mode=mode)
        model = onnx.load(tmp_path / f"{mode}.onnx")
        assert model.ir_version == 8 and read_metadata(model)["ir_version"] == 8


def test_a_newer_opset_is_stamped_by_its_floor(gru, tmp_path):
    export(gru, (torch.randn(5, 2, 8),), tmp_path / "g.onnx", strategy="loop", opset=21, check=False)
    assert onnx.load(tmp_path / "g.onnx").ir_version == 10


def test_save_model_refuses_a_too_low_request_and_writes_nothing(tmp_path):
    with pytest.raises(GruOnnxUsageError, match=r"^cannot write IR version 7: opset 18 needs IR 8$"):
        save_model(ir.from_proto(_model(18)), tmp_path / "m.onnx", ir_version=7)
    assert list(tmp_path.iterdir()) == []
    save_model(ir.from_proto(_model(18)), tmp_path / "m.onnx", ir_version=9)
    assert onnx.load(tmp_path / "m.onnx").ir_version == 9


def test_the_cli_asks_for_an_ir_version_shows_it_and_warns_when_higher(tmp_path, run_cli):
    """--ir-version (the saving group): refused before any work when the content needs more;
    inspect shows the stored and needed versions; check warns when the file is stamped higher."""
    refused = run_cli("export", "--no-check", "--opset", "17", "--ir-version", "7", "-o", "low.onnx")
    assert refused.exit_code == 2 and "cannot write IR version 7: opset 17 needs IR 8" in refused.output
    assert not (tmp_path / "low.onnx").exists()
    assert run_cli("export", "--no-check", "--ir-version", "10", "-o", "high.onnx").exit_code == 0
    assert onnx.load(tmp_path / "high.onnx").ir_version == 10
    shown = run_cli("inspect", "high.onnx")
    assert "10, higher than its content needs 8: opset 18 needs IR 8" in shown.output.replace("\n", " ")
    checked = run_cli("check", "high.onnx")
    assert checked.exit_code == 0
    assert "stamped IR 10 but its content needs only IR 8" in checked.output.replace("\n", " ")
