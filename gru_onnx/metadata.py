"""The JSON description every exported file carries in ``metadata_props["gru_onnx"]``, and loading files.

It holds the package version, requested and used strategies, opset, dtype, and for each GRU
stack its module path, full spec, strategy and reason, static sequence length, optional
inputs and where its weights are: enough to rebuild the PyTorch reference from the file.

What a file claims is checked against what it is before anything is trusted or allocated:
the JSON against its schema (``gru_onnx/metadata.schema.json``; one entry only), then every
size the metadata states against the initializers' shapes and the graph's inputs
(:func:`check_against_file`). A file that fails is refused with one line (exit 2).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
import onnx
from google.protobuf.message import DecodeError

from gru_onnx import saving
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import regular_file
from gru_onnx.protos import all_graphs
from gru_onnx.registry import MAX_OPSET, METADATA_KEY
from gru_onnx.spec import GRUSpec
from gru_onnx.weights import expected_shapes, stored_names
from gru_onnx.wellformed import check_well_formed, few, type_name

#: The metadata format this gru-onnx writes (2: each stack records its weights' consumers).
FORMAT = 2
#: The largest metadata entry read (real ones are a few KiB).
MAX_METADATA_BYTES = 4 * 2**20


def data_file_paths(path: str | os.PathLike[str]) -> list[Path]:
    """The external data files the ONNX file at ``path`` names, read from the file without its
    data (a loaded model's tensors are inline and name none): what no output may be written over."""
    return [d.path for d in saving.data_files(load_model(path, weights="none"), path)]


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema the metadata follows (``gru_onnx/metadata.schema.json``)."""
    return json.loads(resources.files("gru_onnx").joinpath("metadata.schema.json").read_text())


def load_model(path: str | os.PathLike[str], *, weights: Literal["gru", "none", "all"] = "gru") -> onnx.ModelProto:
    """Load an ONNX file, or a one-line usage error when it is missing, truncated, not ONNX, or
    its metadata does not hold against the file.

    A file with external data (:mod:`gru_onnx.saving`) keeps its tensors on disk except, with
    ``weights="gru"``, the GRU stacks' weights its metadata names (what rebuilding the reference
    and checking weights read), or all of them with ``"all"``. Both first check every data file
    it names (present, complete, inside the model's folder); ``"none"`` reads and checks none.
    """
    path = regular_file(path, "ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    if not model.graph.output:
        raise GruOnnxUsageError(f"{path} is not a readable ONNX file (no graph outputs)")
    _refuse_future(model, path)
    check_well_formed(model)  # before the metadata is read
    metadata = find_metadata(model)
    if metadata is not None:
        _check_metadata(model, metadata)
    if weights == "none" or not saving.validate_data_files(model, path):
        return model
    if weights == "all":
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    else:
        saving.load_external_tensors(model, path, _gru_tensor_names(metadata or {}))
    return model


def _refuse_future(model: onnx.ModelProto, path: Path) -> None:
    """A file newer than what gru-onnx and its runtimes read (IR version, default opset) is refused."""
    if model.ir_version > onnx.IR_VERSION:
        raise GruOnnxUsageError(
            f"{path} has IR version {model.ir_version}, newer than this onnx package reads ({onnx.IR_VERSION})"
        )
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    if opsets.get("ai.onnx", 0) > MAX_OPSET:
        raise GruOnnxUsageError(
            f"{path} uses opset {opsets['ai.onnx']}, newer than gru-onnx and its runtimes support ({MAX_OPSET})"
        )


def _gru_tensor_names(metadata: Mapping[str, Any]) -> set[str]:
    """The initializers a check reads from a file: the GRU stacks' weights, for int8 files
    their int8 values, and every quantization scale (see :mod:`gru_onnx.quantization`)."""
    names = {name for stack in metadata.get("stacks", []) for name in stored_names(stack["weights"])}
    records = (metadata.get("quantization") or {}).get("tensors", {})
    names |= {record["values"] for name, record in records.items() if name in names}
    names |= {record["scale"] for record in records.values()}
    return names


def parse_metadata(text: str) -> dict[str, Any]:
    """The metadata JSON, checked against its schema; anything else is a one-line usage error."""
    if len(text) > MAX_METADATA_BYTES:
        raise GruOnnxUsageError(f"the gru-onnx metadata takes {len(text)} bytes, more than it ever does; refusing it")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GruOnnxUsageError(f"the gru-onnx metadata is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise GruOnnxUsageError(f"the gru-onnx metadata is a JSON {type(data).__name__}, not an object")
    error = jsonschema.exceptions.best_match(_validator()(schema()).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        raise GruOnnxUsageError(f"the gru-onnx metadata does not follow its schema at {where}: {message}")
    return data


@functools.cache
def _validator() -> Any:
    """Draft 2020-12 with integers that are ints: JSON's ``3.0`` passes its ``integer`` and then
    indexes a list or multiplies one (exit 3)."""
    base = jsonschema.Draft202012Validator
    strict = base.TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(base, type_checker=strict)


def find_metadata(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The gru-onnx description of ``model`` (checked against its schema), or None when it has
    none; two entries are refused (gru-onnx and ONNX Runtime would read different ones)."""
    entries = [prop.value for prop in model.metadata_props if prop.key == METADATA_KEY]
    if len(entries) > 1:
        raise GruOnnxUsageError(
            f"the file has {len(entries)} {METADATA_KEY!r} metadata entries; refusing an ambiguous file"
        )
    return parse_metadata(entries[0]) if entries else None


def read_metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """The gru-onnx description stored in an exported file (GRU stacks, strategy, versions);
    a file's weights, external data included, are not read."""
    loaded = not isinstance(model, onnx.ModelProto)
    if loaded:
        model = load_model(model, weights="none")  # checked against its metadata on the way
    found = find_metadata(model)
    if found is None:
        raise GruOnnxUsageError("the file has no gru-onnx metadata (was it exported by gru-onnx?)")
    if not loaded:
        check_against_file(model, found)  # a model built in memory is held to what its metadata says too
    return found


def _dims(tensor: onnx.TensorProto) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.dims)


def check_against_file(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    """Every size the metadata states, checked against the file before anything is allocated:
    each stack's weights against the initializers' shapes and types (through its layout), each
    initializer claimed by one stack only, state pairs against their stacks, static lengths
    against the graph's inputs, quantization records (values, scales, zero points) against the
    tensors they name, output time axes against the outputs. Duplicate initializer names are
    refused too, and the file must be well formed (:mod:`gru_onnx.wellformed`)."""
    check_well_formed(model)
    _check_metadata(model, metadata)


def _check_metadata(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    """:func:`check_against_file` on a model already found well formed."""
    initializers: dict[str, tuple[int, ...]] = {}
    types: dict[str, int] = {}
    for graph in all_graphs(model.graph):
        seen: set[str] = set()
        for tensor in graph.initializer:
            if tensor.name in seen:
                raise GruOnnxUsageError(
                    f"the file has two initializers named {tensor.name!r}; refusing an ambiguous file"
                )
            seen.add(tensor.name)
            initializers[tensor.name] = _dims(tensor)
            types[tensor.name] = tensor.data_type
    quantized = (metadata.get("quantization") or {}).get("tensors", {})
    nodes = sum(len(graph.node) for graph in all_graphs(model.graph))
    if len(metadata["stacks"]) > nodes:  # each call of a GRU is nodes of its own
        raise GruOnnxUsageError(f"the metadata lists {len(metadata['stacks'])} GRU stacks in a graph of {nodes} nodes: "
                                f"{_LIE}")  # fmt: skip
    specs: dict[str, GRUSpec] = {}
    claimed: dict[str, str] = {}  # initializer -> the module path of the stack that holds it
    calls: dict[str, Any] = {}  # module path -> its spec and weights (a module called twice: one stack a call)
    for stack in metadata["stacks"]:
        spec = _spec(stack)
        specs.setdefault(stack["path"], spec)
        where = repr(stack["path"]) if stack["path"] else "the GRU"
        names = set(stored_names(stack["weights"]))
        for name in sorted(names & set(claimed)):
            if claimed[name] == stack["path"]:
                continue  # one module called twice: a stack per call, the same weights
            first = repr(claimed[name]) if claimed[name] else "the GRU"
            raise GruOnnxUsageError(
                f"the metadata says stacks {first} and {where} both hold initializer {name!r}: {_LIE}"
            )
        if stack["path"] in calls and calls[stack["path"]] != (stack["spec"], stack["weights"]):
            raise GruOnnxUsageError(f"the metadata gives two stacks of {where} different specs or weights: {_LIE}")
        calls.setdefault(stack["path"], (stack["spec"], stack["weights"]))
        claimed.update(dict.fromkeys(names, stack["path"]))
        for names, shape in expected_shapes(spec, stack["weights"]):
            found = [_stored_dims(name, initializers, types, quantized) for name in names]
            fits = all(len(d) == len(shape) and d[1:] == shape[1:] for d in found)
            rows = sum(d[0] for d in found) if fits else -1
            if rows != shape[0]:
                have = " + ".join(str(list(d)) for d in found)
                raise GruOnnxUsageError(
                    f"the metadata says {where} is {spec.describe()}, which needs {list(shape)} for "
                    f"{' + '.join(names)}; the file holds {have}: the metadata does not describe this file"
                )
    for state in (metadata.get("streaming") or {}).get("states", []):
        spec = specs.get(state["module"])
        rows = spec.num_layers * spec.num_directions if spec is not None else None
        if spec is None or list(state["shape"][1:]) != [rows, spec.hidden_size]:
            raise GruOnnxUsageError(
                f"the metadata's state {state['input']!r} has shape {state['shape']}, which no GRU stack of the file "
                "has: the metadata does not describe this file"
            )
    plain = _check_states(model, metadata)
    _check_time_axes(metadata, plain)
    _check_output_time_axes(model, metadata)
    _check_lone_inputs(metadata, plain)


def stack_spec(stack: Mapping[str, Any]) -> GRUSpec:
    """A stack's spec; an activation this installation does not know is refused saying how to
    check such a file (with its model, whose code registers the activation)."""
    try:
        return GRUSpec.from_json(stack["spec"])
    except GruOnnxUsageError as exc:
        where = repr(stack["path"]) if stack["path"] else "of this file"
        raise GruOnnxUsageError(
            f"the GRU {where}: {exc}; check the file with --model (which imports the code that registers "
            "it), or register the activation (gru_onnx.register_activation) first"
        ) from None


def _spec(stack: Mapping[str, Any]) -> GRUSpec:
    """The spec's sizes (activations this installation does not know stand in as the defaults:
    only sizes are checked here; reading the math later names them)."""
    fields = dict(stack["spec"])
    try:
        return GRUSpec.from_json(fields)
    except GruOnnxUsageError:
        fields.update(activation={"name": "tanh"}, recurrent_activation={"name": "sigmoid"})
        return GRUSpec.from_json(fields)


_INT8_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}


def _stored_dims(
    name: str, initializers: Mapping[str, tuple[int, ...]], types: Mapping[str, int], quantized: Mapping[str, Any]
) -> tuple[int, ...]:
    """The shape of the tensor a weight record names: an initializer (floating), or an int8
    one's source shape, its scale and zero point checked against it (one value, or one per
    output channel: the int8 matrix is stored ``[in, out]``, its scale ``[out]``)."""
    if name in quantized:
        record = quantized[name]
        values = record["values"]
        if values not in initializers:
            raise GruOnnxUsageError(f"the metadata names int8 values {values!r}, which the file does not have")
        dims = initializers[values]
        if types[values] not in _INT8_TYPES:
            found = type_name(types[values])
            raise GruOnnxUsageError(f"the metadata says {values!r} holds int8 values; it is {found}: {_LIE}")
        per_channel = [(), (1,)] + ([(dims[1],)] if len(dims) == 2 else [])
        for role, want in (("scale", _FLOATING), ("zero_point", _INT8_TYPES)):
            tensor = record.get(role)
            if tensor is None and role == "zero_point":
                continue
            if tensor not in initializers:
                raise GruOnnxUsageError(f"the metadata names {role} {tensor!r}, which the file does not have")
            if types[tensor] not in want:
                raise GruOnnxUsageError(f"the {role} {tensor!r} of {values!r} is {type_name(types[tensor])}: {_LIE}")
            if initializers[tensor] not in per_channel:
                raise GruOnnxUsageError(
                    f"the {role} {tensor!r} of {values!r} {list(dims)} has shape {list(initializers[tensor])}; it "
                    f"takes one value or one per output channel ({dims[-1] if dims else 1}): {_LIE}"
                )
        return tuple(reversed(dims)) if record["transposed"] else dims
    if name not in initializers:
        raise GruOnnxUsageError(f"the metadata names initializer {name!r}, which the file does not have")
    if types[name] not in _FLOATING:
        raise GruOnnxUsageError(f"the GRU weight {name!r} is {type_name(types[name])}, not floating: {_LIE}")
    return initializers[name]


# --------------------------------------------------------------------------------------------
# The graph's inputs and outputs against what the metadata says of them
# --------------------------------------------------------------------------------------------

_LIE = "the metadata does not describe this file"


def declared_dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    """Each axis of a graph input or output as declared: its size, its name when dynamic, None
    when neither is given."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value.type.tensor_type.shape.dim]


def lone_stack(metadata: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The stack of a lone CustomGRU's file (one stack, at module path ""), else None."""
    stacks = (metadata or {}).get("stacks", [])
    return stacks[0] if len(stacks) == 1 and stacks[0]["path"] == "" else None


def state_inputs(metadata: Mapping[str, Any] | None) -> list[str]:
    """The graph inputs a streaming file's metadata names as states (empty for other files)."""
    return [s["input"] for s in ((metadata or {}).get("streaming") or {}).get("states", [])]


def plain_inputs(model: onnx.ModelProto, metadata: Mapping[str, Any] | None) -> list[onnx.ValueInfoProto]:
    """The graph inputs a caller feeds, in graph order: neither initializers nor streaming states."""
    skipped = {t.name for t in model.graph.initializer} | set(state_inputs(metadata))
    return [i for i in model.graph.input if i.name not in skipped]


_FLOATING = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16,
}  # fmt: skip


def lone_roles(values: Sequence[onnx.ValueInfoProto]) -> dict[str, str]:
    """A lone CustomGRU's (non-state) inputs by role, whatever their names (a factory may name them):
    ``{"input": name, "h0": name, "lengths": name}`` for those it takes. The export writes them in
    ``forward``'s order: the sequence first, then ``h0`` (floating), then ``lengths`` (integer)."""
    roles: dict[str, str] = {}
    for i, value in enumerate(values):
        floating = value.type.tensor_type.elem_type in _FLOATING
        role = "input" if i == 0 else "h0" if floating else "lengths"
        roles.setdefault(role, value.name)
    return roles


def input_time_axes(metadata: Mapping[str, Any], ranks: Mapping[str, int]) -> dict[str, int | None]:
    """The time axis of each non-state input (``ranks``: name -> rank, in graph order) as the file
    records it (``input_time_axes``), else by the export's rule: a lone GRU's sequence (its first
    input) by its layout, its ``h0`` and ``lengths`` none; any other model's axis 1."""
    recorded = metadata.get("input_time_axes")
    if isinstance(recorded, Mapping):
        return {name: recorded.get(name) for name in ranks}
    lone = lone_stack(metadata)
    if lone is not None:
        first = next(iter(ranks), None)
        return {
            name: (1 if lone["spec"]["batch_first"] and rank == 3 else 0) if name == first else None
            for name, rank in ranks.items()
        }
    return {name: 1 if rank >= 2 else None for name, rank in ranks.items()}


def _check_states(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> dict[str, onnx.ValueInfoProto]:
    """A streaming file's state pairs against its graph: each state input a graph input (not an
    initializer, not one the metadata gives a time axis), each output a graph output, every name
    once, both declared with the state's shape, one batch for all. Returns the plain inputs."""
    states = (metadata.get("streaming") or {}).get("states", [])
    initializers = {t.name for t in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    outputs = {o.name: o for o in model.graph.output}
    timed = set(metadata.get("input_time_axes") or {})
    seen: set[str] = set()
    for state in states:
        for kind, name, found, other in (
            ("input", state["input"], inputs, outputs), ("output", state["output"], outputs, inputs)
        ):  # fmt: skip
            if name in seen:
                raise GruOnnxUsageError(f"the metadata names {name!r} for two states' inputs or outputs: {_LIE}")
            seen.add(name)
            if name not in found:
                raise GruOnnxUsageError(f"the metadata's state {kind} {name!r} is no {kind} of the file: {_LIE}")
            if name in other or (kind == "input" and name in timed):
                where = "an output" if name in other else "an input it gives a time axis (input_time_axes)"
                raise GruOnnxUsageError(f"the metadata's state {kind} {name!r} is also {where}: {_LIE}")
            dims = declared_dims(found[name])
            if dims != list(state["shape"]):
                raise GruOnnxUsageError(
                    f"the metadata says state {kind} {name!r} is {_shown(state['shape'])}; the file declares it "
                    f"{_shown(dims)}: {_LIE}"
                )
    batches = {repr(s["shape"][0]) for s in states}
    if len(batches) > 1:
        raise GruOnnxUsageError(f"the metadata's states disagree on their batch axis ({few(sorted(batches))}): "
                                f"{_LIE}")  # fmt: skip
    return {i.name: i for i in plain_inputs(model, metadata)}


def _check_time_axes(metadata: Mapping[str, Any], plain: Mapping[str, onnx.ValueInfoProto]) -> None:
    """``input_time_axes`` names plain inputs and axes they have; a streaming file's time axes are
    dynamic, or fixed at its ``chunk`` (a chunk only a streaming file with such axes has)."""
    recorded = metadata.get("input_time_axes")
    states = (metadata.get("streaming") or {}).get("states", [])
    chunk = metadata.get("chunk")
    if chunk is not None and not states:
        raise GruOnnxUsageError(f"the metadata gives chunks of {chunk} steps to a file without streaming states: "
                                f"{_LIE}")  # fmt: skip
    for name, axis in (recorded or {}).items():
        if name not in plain:
            raise GruOnnxUsageError(
                f"the metadata gives a time axis to {name!r}, which is no input of the file besides its states "
                f"({few(plain) or 'none'}): {_LIE}"
            )
        rank = len(plain[name].type.tensor_type.shape.dim)
        if axis is not None and not 0 <= axis < rank:
            raise GruOnnxUsageError(f"the metadata says axis {axis} of {name!r} is time; it has {rank} axes: {_LIE}")
    if not states and recorded is None:
        return  # a plain file's time axes follow the export's rule: static where its length is
    batch = states[0]["shape"][0] if states else None
    ranks = {name: len(info.type.tensor_type.shape.dim) for name, info in plain.items()}
    axes = {name: axis for name, axis in input_time_axes(metadata, ranks).items() if axis is not None}
    for name, axis in axes.items():
        dims = declared_dims(plain[name])
        if axis >= len(dims):
            raise GruOnnxUsageError(f"{name!r} has {len(dims)} axes, too few for a time axis {axis}: {_LIE}")
        size = dims[axis]
        if chunk is None and isinstance(size, int):
            raise GruOnnxUsageError(
                f"the metadata says axis {axis} of {name!r} is time, with chunks of any length; that axis is fixed "
                f"at {size}: {_LIE}"
            )
        if chunk is not None and size != chunk:
            shown = f"fixed at {size}" if isinstance(size, int) else "dynamic"
            raise GruOnnxUsageError(
                f"the metadata says chunks of {chunk} steps; time axis {axis} of {name!r} is {shown}: {_LIE}"
            )
        if isinstance(batch, str) and size == batch:
            raise GruOnnxUsageError(
                f"the metadata says axis {axis} of {name!r} is time; it is the states' batch axis ({batch}): {_LIE}"
            )
    if chunk is not None and not axes:
        raise GruOnnxUsageError(f"the metadata says chunks of {chunk} steps; no input of the file has a time axis: "
                                f"{_LIE}")  # fmt: skip


def _check_output_time_axes(model: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    """``time_axes`` names graph outputs and axes they have."""
    outputs = {o.name: len(o.type.tensor_type.shape.dim) for o in model.graph.output}
    for name, axis in (metadata.get("time_axes") or {}).items():
        if name not in outputs:
            raise GruOnnxUsageError(
                f"the metadata gives a time axis to output {name!r}, which the file does not have "
                f"({few(outputs) or 'none'}): {_LIE}"
            )
        if axis is not None and not 0 <= axis < outputs[name]:
            raise GruOnnxUsageError(
                f"the metadata says axis {axis} of output {name!r} is time; it has {outputs[name]} axes: {_LIE}"
            )


def _check_lone_inputs(metadata: Mapping[str, Any], plain: Mapping[str, onnx.ValueInfoProto]) -> None:
    """A lone GRU's inputs against its spec: the sequence (rank 2 or 3, its last axis the spec's
    input size), ``h0`` and ``lengths`` where the stack says it takes them (their static sizes the
    spec's), and a static length that is the sequence's."""
    stack = lone_stack(metadata)
    if stack is None:
        return
    spec = stack["spec"]
    values = list(plain.values())
    roles = lone_roles(values)
    if "input" not in roles or len(roles) != len(values):
        names = few(plain) or "none"
        raise GruOnnxUsageError(
            f"a lone GRU's file takes its sequence, h0 (floating) and lengths (integer) in that order; this one "
            f"takes {names}: {_LIE}"
        )
    for role, flag in (("h0", "has_h0"), ("lengths", "has_lengths")):
        if flag in stack and stack[flag] != (role in roles):
            said = "takes" if stack[flag] else "does not take"
            raise GruOnnxUsageError(f"the metadata says the GRU {said} {role}; the file's inputs are "
                                    f"{few(plain)}: {_LIE}")  # fmt: skip
    x = declared_dims(plain[roles["input"]])
    if len(x) not in (2, 3):
        raise GruOnnxUsageError(
            f"the GRU's input {roles['input']!r} has {len(x)} axes; a GRU takes [seq, (batch,) features]: {_LIE}"
        )
    if isinstance(x[-1], int) and x[-1] != spec["input_size"]:
        raise GruOnnxUsageError(
            f"the metadata says the GRU takes {spec['input_size']} features; its input {roles['input']!r} has "
            f"{x[-1]} on its last axis: {_LIE}"
        )
    if "h0" in roles:
        h0 = declared_dims(plain[roles["h0"]])
        rows = spec["num_layers"] * (2 if spec["bidirectional"] else 1)
        if len(h0) != len(x) or any(isinstance(d, int) and d != want
                                    for d, want in ((h0[0], rows), (h0[-1], spec["hidden_size"]))):  # fmt: skip
            raise GruOnnxUsageError(
                f"the GRU's initial state {roles['h0']!r} is declared {_shown(h0)}; its spec needs [{rows}, "
                f"{'batch, ' if len(x) == 3 else ''}{spec['hidden_size']}]: {_LIE}"
            )
    if "lengths" in roles and len(declared_dims(plain[roles["lengths"]])) != 1:
        raise GruOnnxUsageError(f"the GRU's lengths {roles['lengths']!r} are not one per batch row: {_LIE}")
    if stack["seq_len"] is None or metadata.get("streaming"):
        return
    axis = 1 if spec["batch_first"] and len(x) == 3 else 0
    if isinstance(x[axis], int) and x[axis] != stack["seq_len"]:
        raise GruOnnxUsageError(
            f"the metadata says the sequence length is {stack['seq_len']}, the file's input has {x[axis]} steps: {_LIE}"
        )


def _shown(dims: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
