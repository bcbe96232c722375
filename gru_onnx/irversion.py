"""IR versions: stamp each written file with the lowest ONNX IR version its content needs.

A runtime refuses a file whose IR version is newer than the ONNX it was built with
(ONNX Runtime 1.16: ``Unsupported model IR version: 10, max supported IR version: 9``) even
when nothing in the file needs the newer IR. torch.onnx stamps every file IR 10, so gru-onnx
restamps it: the floor of its opsets (``onnx.helper.find_min_ir_version_for``: opsets 17-18
IR 8, 19-20 IR 9, 21-22 IR 10, 23 IR 11), raised by what the file actually holds:

- element types newer than the floor: float8 (IR 9), 4-bit integers (IR 10), FLOAT4E2M1
  (IR 11), FLOAT8E8M0 (IR 12), 2-bit integers (IR 13), float6 (IR 14), wherever they appear
  (initializers, constants, value types, type-naming attributes such as Cast's ``to``);
- fields newer than the floor: model-local functions, Optional and SparseTensor types (IR 8),
  function attribute defaults (IR 9), overloads (IR 10), multi-device configurations (IR 11).

``metadata_props`` on graphs, nodes, value infos, tensors and functions are IR 10 too, but they
carry only annotations (torch.onnx's export signature): below IR 10 they are dropped rather than
counted. gru-onnx's own description lives in the model's ``metadata_props`` (IR 1), and records
the stamped version under ``"ir_version"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import onnx
from google.protobuf.message import Message

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.registry import METADATA_KEY

#: The IR version that introduced each element type newer than IR 8 (by TensorProto name;
#: types this onnx does not define are left out).
TYPE_IR = {
    "FLOAT8E4M3FN": 9,
    "FLOAT8E4M3FNUZ": 9,
    "FLOAT8E5M2": 9,
    "FLOAT8E5M2FNUZ": 9,
    "UINT4": 10,
    "INT4": 10,
    "FLOAT4E2M1": 11,
    "FLOAT8E8M0": 12,
    "UINT2": 13,
    "INT2": 13,
    "FLOAT6E2M3": 14,
    "FLOAT6E3M2": 14,
}
_DATA_TYPES = {getattr(onnx.TensorProto, n): (ir, n) for n, ir in TYPE_IR.items() if hasattr(onnx.TensorProto, n)}

#: Fields whose presence needs a given IR version: (message, field) -> (IR, what it is).
FIELD_IR = {
    ("onnx.ModelProto", "functions"): (8, "model-local functions"),
    ("onnx.TypeProto", "optional_type"): (8, "an Optional type"),
    ("onnx.TypeProto", "sparse_tensor_type"): (8, "a SparseTensor type"),
    ("onnx.FunctionProto", "attribute_proto"): (9, "function attribute defaults"),
    ("onnx.NodeProto", "overload"): (10, "a node overload"),
    ("onnx.FunctionProto", "overload"): (10, "a function overload"),
    ("onnx.NodeProto", "device_configurations"): (11, "a multi-device node configuration"),
    ("onnx.ModelProto", "configuration"): (11, "a multi-device configuration"),
}
_FIELD_RULES: dict[str, dict[str, tuple[int, str]]] = {}
for (_message, _field), _rule in FIELD_IR.items():
    _FIELD_RULES.setdefault(_message, {})[_field] = _rule
#: Fields holding an element type, by message.
_TYPE_FIELDS = {
    "onnx.TensorProto": "data_type",
    "onnx.TypeProto.Tensor": "elem_type",
    "onnx.TypeProto.SparseTensor": "elem_type",
    "onnx.TypeProto.Map": "key_type",
}
#: Integer attributes of standard ops that name an element type (Cast's ``to``, ...).
_TYPE_ATTRIBUTES = {"to", "dtype", "output_dtype"}
#: Annotations on everything but the model itself, introduced with IR 10 (dropped below it).
METADATA_PROPS_IR = 10


@dataclass(frozen=True)
class IrReport:
    """A file's stored IR version beside the lowest one its content needs, and why."""

    stored: int
    needed: int
    reason: str

    @property
    def higher_than_needed(self) -> bool:
        """True when older runtimes refuse the file for no reason in its content."""
        return self.stored > self.needed

    def warning(self) -> str | None:
        """One line for ``check`` when the stored version is higher than needed, else None."""
        if not self.higher_than_needed:
            return None
        known = " (ONNX Runtime before 1.18 reads IR 9 at most)" if self.stored >= 10 > self.needed else ""
        return (
            f"the file is stamped IR {self.stored} but its content needs only IR {self.needed} ({self.reason}): "
            f"runtimes that read only older IR versions refuse it{known}; writing it again with gru-onnx stamps "
            f"IR {self.needed}"
        )


def needed_ir_version(model: onnx.ModelProto) -> tuple[int, str]:
    """The lowest IR version ``model`` can be stamped with, and a reason naming what forces it
    (``"opset 17 needs IR 8"``, ``"a FLOAT8E4M3FN tensor needs IR 9"``). Every graph is looked
    at: subgraphs, initializers (sparse too), value types, attributes and functions."""
    needed, reason = _opset_floor(model)
    for message in _messages(model):
        name = message.DESCRIPTOR.full_name
        for field, (ir, what) in _FIELD_RULES.get(name, {}).items():
            if ir > needed and _present(message, field):
                needed, reason = ir, f"{what} needs IR {ir}"
        found = _data_type_rule(message, name)
        if found is not None and found[0] > needed:
            needed, reason = found
    return needed, reason


def stamp(model: onnx.ModelProto, ir_version: int | None = None) -> int:
    """Stamp ``model`` (in place) with the lowest IR version it needs, or with ``ir_version``;
    returns the version written. Below IR 10 the IR-10 annotations (``metadata_props`` of
    graphs, nodes, value infos, tensors, functions) are dropped. A gru-onnx description in the
    model's metadata records the version. Asking for less than the content needs, or for more
    than this onnx knows, is a one-line :class:`GruOnnxUsageError`."""
    needed, reason = needed_ir_version(model)
    target = needed if ir_version is None else _checked(ir_version, needed, reason)
    model.ir_version = target
    if target < METADATA_PROPS_IR:
        for message in _messages(model):
            if message is not model and "metadata_props" in message.DESCRIPTOR.fields_by_name:
                message.ClearField("metadata_props")
    _record(model, target)
    return target


def ir_report(model: onnx.ModelProto) -> IrReport:
    """``model``'s stored IR version, the lowest it needs and why (for ``inspect`` and ``check``)."""
    needed, reason = needed_ir_version(model)
    return IrReport(model.ir_version, needed, reason)


def check_request(ir_version: int | None, opset: int) -> None:
    """Refuse a requested IR version that opset ``opset`` (default domain) already rules out,
    before an export's work; :func:`stamp` still checks the written content."""
    if ir_version is not None:
        model = onnx.helper.make_model(onnx.GraphProto(), opset_imports=[onnx.helper.make_opsetid("", opset)])
        _checked(ir_version, *_opset_floor(model))


def _checked(ir_version: int, needed: int, reason: str) -> int:
    """``ir_version`` when a file needing ``needed`` (for ``reason``) can be stamped with it."""
    if isinstance(ir_version, bool) or not isinstance(ir_version, int):
        raise GruOnnxUsageError(f"the IR version must be an integer, got {ir_version!r}")
    if ir_version < needed:
        raise GruOnnxUsageError(f"cannot write IR version {ir_version}: {reason}")
    if ir_version > onnx.IR_VERSION:
        raise GruOnnxUsageError(
            f"cannot write IR version {ir_version}: onnx {onnx.__version__} knows IR versions up to {onnx.IR_VERSION}"
        )
    return ir_version


def _opset_floor(model: onnx.ModelProto) -> tuple[int, str]:
    """The highest IR version any imported opset (model or function) needs, with its reason."""
    imports = [*model.opset_import, *(o for f in model.functions for o in f.opset_import)]
    best, reason = 3, "IR 3 is the oldest with opset imports"
    newest_known = max(v for (d, v) in onnx.helper.OP_SET_ID_VERSION_MAP if d == "ai.onnx")
    for opset in imports:
        domain = opset.domain or "ai.onnx"
        label = "opset" if domain == "ai.onnx" else f"{domain} opset"
        if domain == "ai.onnx" and opset.version > newest_known:
            found, why = onnx.IR_VERSION, f"{label} {opset.version} is newer than onnx {onnx.__version__} knows"
        else:
            found = onnx.helper.find_min_ir_version_for([opset], ignore_unknown=True)
            why = f"{label} {opset.version} needs IR {found}"
        if found > best:
            best, reason = found, why
    return best, reason


def _data_type_rule(message: Message, name: str) -> tuple[int, str] | None:
    """The IR an element type held by ``message`` needs, with its reason, if above IR 8."""
    field = _TYPE_FIELDS.get(name)
    if field is not None:
        found = _DATA_TYPES.get(getattr(message, field))
        what = "tensor" if name == "onnx.TensorProto" else "value type"
        return (found[0], f"a {found[1]} {what} needs IR {found[0]}") if found else None
    if name == "onnx.NodeProto" and message.domain in ("", "ai.onnx"):  # type: ignore[attr-defined]
        for attr in message.attribute:  # type: ignore[attr-defined]
            if attr.name in _TYPE_ATTRIBUTES and attr.type == onnx.AttributeProto.INT and attr.i in _DATA_TYPES:
                ir, type_name = _DATA_TYPES[attr.i]
                return ir, f"{message.op_type} to {type_name} needs IR {ir}"  # type: ignore[attr-defined]
    return None


def _present(message: Message, field: str) -> bool:
    """True when ``field`` (singular or repeated) of ``message`` is set."""
    value = getattr(message, field)
    if isinstance(value, Message | str | int | float | bytes):
        return message.HasField(field)
    return len(value) > 0


def _messages(message: Message) -> Iterator[Message]:
    """``message`` and every message inside it, depth first. Only message fields are read, so
    tensor data (bytes, numbers) is never copied out of the protobuf."""
    yield message
    for field in message.DESCRIPTOR.fields:
        if field.message_type is None:
            continue
        value = getattr(message, field.name)
        if isinstance(value, Message):
            if message.HasField(field.name):
                yield from _messages(value)
        else:  # a repeated field (onnx.proto has no maps)
            for item in value:
                yield from _messages(item)


def _record(model: onnx.ModelProto, ir_version: int) -> None:
    """Write ``ir_version`` into the gru-onnx description, if the model has one."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            description = json.loads(prop.value)
            description["ir_version"] = ir_version
            prop.value = json.dumps(description, sort_keys=True)
            return
