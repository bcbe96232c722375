"""The metadata format (``gru_onnx/metadata.schema.json``): every kind of file gru-onnx writes, and
the files earlier versions wrote, validate; broken descriptions are refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import gru_onnx
from gru_onnx import (
    CustomGRU,
    GraphOptions,
    QuantizeOptions,
    SavingOptions,
    ShapeOptions,
    StreamingOptions,
)

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev extra")

DATA = Path(__file__).parent / "data"


def schema() -> dict[str, Any]:
    return json.loads(resources.files("gru_onnx").joinpath("metadata.schema.json").read_text())


def validator() -> Any:
    return jsonschema.Draft202012Validator(schema())


class Tagger(nn.Module):
    """A whole model: named dict outputs (time axes recorded), a GRU stack at a module path."""

    def __init__(self, activation: str = "relu") -> None:
        super().__init__()
        self.enc = CustomGRU(4, 6, batch_first=True, activation=activation)
        self.head = nn.Linear(6, 3)

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        y, _ = self.enc(feats)
        return {"logits": self.head(y), "pooled": y.mean(1)}


class TwoStacks(nn.Module):
    """Two GRUs auto writes differently (default activations: native; gelu: unrolled): strategy mixed."""

    def __init__(self) -> None:
        super().__init__()
        self.a = CustomGRU(4, 6, batch_first=True)
        self.b = CustomGRU(6, 5, batch_first=True, activation="gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)[0])[0]


def _x() -> torch.Tensor:
    return torch.randn(5, 2, 4)


def _xb() -> torch.Tensor:
    return torch.randn(2, 5, 4)


def _bi() -> CustomGRU:
    return CustomGRU(4, 6, num_layers=2, bidirectional=True)


#: name -> (model, args, export keyword groups) of a file of that kind.
Case = Callable[[], tuple[nn.Module, tuple[Any, ...], dict[str, Any]]]
CASES: dict[str, Case] = {
    "unrolled": lambda: (_bi(), (_x(),), {"graph": GraphOptions(strategy="unrolled")}),
    "loop": lambda: (
        _bi(), (_x(),), {"graph": GraphOptions(strategy="loop"), "shapes": ShapeOptions(dynamic_seq=True)},
    ),
    "native": lambda: (_bi(), (_x(),), {"graph": GraphOptions(strategy="native")}),
    "native leaky_relu, target cpu, h0": lambda: (
        CustomGRU(4, 6, activation="leaky_relu(alpha=0.2)"), (_x(), torch.zeros(1, 2, 6)),
        {"graph": GraphOptions(target="cpu")},
    ),
    "auto mixed": lambda: (TwoStacks(), (_xb(),), {}),
    "gelu scaled form, reset before, lengths": lambda: (
        CustomGRU(4, 6, activation="gelu", reset_after=False), (_x(), None, torch.tensor([5, 3])),
        {"graph": GraphOptions(strategy="loop")},
    ),
    "no bias, opset 17": lambda: (CustomGRU(4, 6, bias=False), (_x(),), {"graph": GraphOptions(opset=17)}),
    "float16": lambda: (CustomGRU(4, 6, activation="silu"), (_x(),), {"graph": GraphOptions(dtype="float16")}),
    "whole model": lambda: (Tagger(), (_xb(),), {}),
    "streaming, lone GRU": lambda: (
        CustomGRU(4, 6, batch_first=True), (_xb(),), {"streaming": StreamingOptions(enabled=True)},
    ),
    "streaming, whole model, chunk 1, static batch": lambda: (
        Tagger(), (_xb(),),
        {"streaming": StreamingOptions(enabled=True, chunk=1), "shapes": ShapeOptions(dynamic_batch=False)},
    ),
    "int8 weights": lambda: (Tagger(), (_xb(),), {"quantize": QuantizeOptions(mode="weights")}),
    "int8 dynamic, per tensor": lambda: (
        Tagger(), (_xb(),), {"quantize": QuantizeOptions(mode="dynamic", per_channel=False)},
    ),
    "int8 around a native GRU": lambda: (
        Tagger(activation="tanh"), (_xb(),), {"graph": GraphOptions(strategy="native"),
                                              "quantize": QuantizeOptions(mode="weights")},
    ),
    "external data": lambda: (Tagger(), (_xb(),), {"saving": SavingOptions(external_data=True)}),
}  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The metadata of one file per case (written once, unchecked: only the description matters)."""
    folder = tmp_path_factory.mktemp("metadata")
    out = {}
    for i, (name, case) in enumerate(CASES.items()):
        torch.manual_seed(i)
        model, args, groups = case()
        result = gru_onnx.export(model, args, folder / f"case{i}.onnx", check=None, **groups)
        out[name] = gru_onnx.read_metadata(result.path)
    return out


def test_the_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", list(CASES))
def test_every_kind_of_file_validates(written: dict[str, dict[str, Any]], name: str) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(written[name])]
    assert errors == []


def test_the_cases_cover_every_layout_strategy_and_optional_part(written: dict[str, dict[str, Any]]) -> None:
    """The table above is only worth something if it reaches every branch of the schema."""
    metas = list(written.values())
    stacks = [s for m in metas for s in m["stacks"]]
    assert {s["weights"]["layout"] for s in stacks} == {"folded", "onnx_gru"}
    assert {m["strategy"] for m in metas} == {"unrolled", "loop", "native", "mixed"}
    assert any("input_scale" in s["weights"] for s in stacks)
    assert any("native" in s and "activation_alpha" in s["native"] for s in stacks)
    assert {m["quantization"]["mode"] for m in metas if "quantization" in m} == {"weights", "dynamic"}
    assert any(m.get("quantization", {}).get("left_float") for m in metas)
    shapes = [st["shape"][0] for m in metas if "streaming" in m for st in m["streaming"]["states"]]
    assert {type(b) for b in shapes} == {str, int}
    assert any("time_axes" in m for m in metas)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.onnx")), ids=lambda p: p.name)
def test_files_of_earlier_versions_validate(path: Path) -> None:
    """tests/data holds files written before the 10-node step (weight layout torch, no target or IR record)."""
    meta = gru_onnx.read_metadata(path)
    assert meta["stacks"][0]["weights"]["layout"] == "torch"
    assert [e.message for e in validator().iter_errors(meta)] == []


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _drop(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        target = meta
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


#: (file kind, a change that breaks its description).
BROKEN = {
    "unknown key in a spec": ("unrolled", _set(["stacks", 0, "spec", "peephole"], True)),
    "unknown key in an activation": ("unrolled", _set(["stacks", 0, "spec", "activation", "slope"], 0.1)),
    "spec without hidden_size": ("loop", _drop(["stacks", 0, "spec", "hidden_size"])),
    "activation parameter not a number": (
        "native leaky_relu, target cpu, h0", _set(["stacks", 0, "spec", "activation", "params", "alpha"], "0.2"),
    ),
    "no stacks": ("unrolled", _set(["stacks"], [])),
    "another producer": ("unrolled", _set(["producer"], "tf2onnx")),
    "unknown dtype": ("unrolled", _set(["dtype"], "bfloat16")),
    "folded layout without directions": ("loop", _drop(["stacks", 0, "weights", "directions"])),
    "onnx_gru layer without R": ("native", _drop(["stacks", 0, "weights", "layers", "l0", "R"])),
    "a state shape of two axes": (
        "streaming, lone GRU", _set(["streaming", "states", 0, "shape"], ["batch", 6]),
    ),
    "streaming without chunk": ("streaming, lone GRU", _drop(["chunk"])),
    "unknown quantization mode": ("int8 weights", _set(["quantization", "mode"], "int4")),
    "quantized tensor without its scale": (
        "int8 dynamic, per tensor", lambda m: [r.pop("scale") for r in m["quantization"]["tensors"].values()],
    ),
    "unknown target": ("unrolled", _set(["target"], "tpu")),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_descriptions_are_refused(written: dict[str, dict[str, Any]], name: str) -> None:
    kind, change = BROKEN[name]
    meta = copy.deepcopy(written[kind])
    assert list(validator().iter_errors(meta)) == []
    change(meta)
    assert list(validator().iter_errors(meta)) != []


def test_fields_outside_a_spec_may_be_added_later(written: dict[str, dict[str, Any]]) -> None:
    meta = copy.deepcopy(written["whole model"])
    meta["calibration"] = {"dataset": "later"}
    meta["stacks"][0]["notes"] = {"anything": 1}
    meta["stacks"][0]["weights"]["checksum"] = "abc"
    assert [e.message for e in validator().iter_errors(meta)] == []
