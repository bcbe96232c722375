"""Hostile files, fuzzed (trust review II): mutations of a valid file's metadata JSON and ONNX fields,
checked in-process against the source's checkpoint. Every run ends with exit 0, 1 or 2 (never 3, a
bug of ours) within a time and memory bound, and never PASS for a file whose numbers changed.

Profiles as in test_properties: ``ci`` (default) derandomized and bounded; ``thorough``
(``GRU_ONNX_PROPERTIES=thorough``) draws many more at random.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

import gru_onnx
from gru_onnx import CustomGRU

PROFILES = {
    "ci": settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)),
    "thorough": settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck)),
}
PROFILE = PROFILES[os.environ.get("GRU_ONNX_PROPERTIES", "ci")]
X = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path, CustomGRU]:
    folder = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    gru = CustomGRU(3, 4, num_layers=2, activation="relu")
    torch.save(gru.state_dict(), folder / "src.pt")
    gru_onnx.export(gru, (torch.randn(6, 2, 3),), folder / "base.onnx", graph=gru_onnx.GraphOptions(strategy="loop"),
                    shapes=gru_onnx.ShapeOptions(dynamic_seq=True), check=None)  # fmt: skip
    return (folder / "base.onnx").read_bytes(), folder / "src.pt", gru.eval()


def _differs_from_source(data: bytes, source: CustomGRU) -> bool:
    """Whether ONNX Runtime's outputs for an input the file takes differ from the source's (or it
    does not run at all): an independent oracle of "the numbers changed"."""
    try:
        model = onnx.load_from_string(data)
        dims = [d.dim_value if d.HasField("dim_value") else n
                for d, n in zip(model.graph.input[0].type.tensor_type.shape.dim, X.shape, strict=True)]  # fmt: skip
        x = np.resize(X, dims).astype(np.float32)
        outputs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    except Exception:
        return True
    with torch.no_grad():
        expected = [t.numpy() for t in source(torch.from_numpy(x))]
    pairs = zip(outputs, expected, strict=False)
    return len(outputs) != len(expected) or any(
        o.shape != e.shape or not np.allclose(o, e, atol=1e-4, rtol=1e-3) for o, e in pairs
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(value, prefix=()):
    """Every path into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


@st.composite
def metadata_mutation(draw, meta):
    paths = [p for p in _paths(meta) if p]
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    value = draw(json_values)
    return "metadata", (path, action, value)


def _mutate_metadata(meta: dict, path: tuple, action: str, value) -> dict:
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[str(value)[:6] or "k"] = value
    else:
        parent[last] = value
    return meta


@st.composite
def onnx_mutation(draw, model: onnx.ModelProto):
    kind = draw(st.sampled_from(["weight", "attribute", "rewire", "dim", "drop_node", "op_type", "versions"]))
    return "onnx", (kind, draw(st.integers(0, 10**6)), draw(st.floats(-3, 3, allow_nan=False)))


def _mutate_onnx(model: onnx.ModelProto, kind: str, pick: int, amount: float) -> bool:
    """Mutate ``model`` in place; True when a weight's numbers changed for sure."""
    from gru_onnx.protos import all_graphs

    graphs = list(all_graphs(model.graph))
    nodes = [n for g in graphs for n in g.node]
    if kind == "weight":
        tensors = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims]
        tensor = tensors[pick % len(tensors)]
        values = numpy_helper.to_array(tensor).copy()
        flat = values.reshape(-1)
        flat[pick % flat.size] += 0.05 + abs(amount)
        tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
        return True
    if kind == "attribute":
        with_attrs = [n for n in nodes if any(a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT)
                                              for a in n.attribute)]  # fmt: skip
        node = with_attrs[pick % len(with_attrs)]
        attr = next(a for a in node.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT))
        if attr.type == onnx.AttributeProto.INT:
            attr.i = int(attr.i + 1 + pick % 3)
        else:
            attr.f = attr.f + amount + 0.5
    elif kind == "rewire":
        node = nodes[pick % len(nodes)]
        names = [o for n in nodes for o in n.output] + [t.name for t in model.graph.initializer]
        if node.input:
            node.input[pick % len(node.input)] = names[pick % len(names)]
    elif kind == "dim":
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[pick % len(dims)].dim_value = 1 + pick % 7
    elif kind == "drop_node":
        graph = graphs[pick % len(graphs)]
        if graph.node:
            del graph.node[pick % len(graph.node)]
    elif kind == "op_type":
        nodes[pick % len(nodes)].op_type = ["Relu", "Sigmoid", "Add", "Identity"][pick % 4]
    elif kind == "versions":
        model.ir_version = pick % 14
        model.opset_import[0].version = pick % 30
    return False


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@PROFILE
@given(data=st.data())
def test_mutated_files_end_in_0_1_or_2_and_never_pass_with_changed_numbers(base, tmp_path_factory, data):
    from click.testing import CliRunner

    from gru_onnx.cli import cli

    original, checkpoint, source_module = base
    model = onnx.load_from_string(original)
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == "gru_onnx"))
    source, (a, b, c) = data.draw(metadata_mutation(meta) | onnx_mutation(model), label="mutation")
    weights_changed = False
    if source == "metadata":
        mutated = _mutate_metadata(meta, a, b, c)
        prop = next(p for p in model.metadata_props if p.key == "gru_onnx")
        prop.value = json.dumps(mutated, allow_nan=True)
    else:
        weights_changed = _mutate_onnx(model, a, b, c)
    folder = tmp_path_factory.mktemp("case")
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    before, started = _peak_mib(), time.perf_counter()
    result = CliRunner().invoke(
        cli, ["check", str(path), "--checkpoint", str(checkpoint), "--samples", "1", "--scale", "1"],
        catch_exceptions=False,
    )  # fmt: skip
    event(f"exit {result.exit_code}: {source} {a if source == 'onnx' else b}")
    assert result.exit_code in (0, 1, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert time.perf_counter() - started < 60 and _peak_mib() - before < 1024
    if result.exit_code == 0:
        assert not weights_changed and not _differs_from_source(path.read_bytes(), source_module), (
            source, a, b, result.output,
        )  # fmt: skip
