"""int8 files: the weights of every MatMul/Gemm quantized, in the main graph and in loop bodies.

No runtime has an int8 GRU op; the decomposed graphs gru-onnx writes are the route to int8
GRUs. ``onnxruntime.quantization.quantize_dynamic`` does not handle them (it leaves Scan
bodies alone and cannot type the MatMul it makes from a Gemm), so the rewrite is written here
with standard ops, one rule per mode:

- ``weights``: each weight stored as int8 with a float scale (per output channel by default)
  and a ``DequantizeLinear`` in the main graph, so the file is about 4x smaller and the
  arithmetic stays float. Loop bodies read the dequantized weight from the outer scope.
- ``dynamic``: each MatMul/Gemm becomes ``DynamicQuantizeLinear`` on its input (at run time),
  ``MatMulInteger`` with the int8 weight, a ``Cast`` and one ``Mul`` by both scales: the
  pattern ONNX Runtime fuses into its int8 ``DynamicQuantizeMatMul`` kernel.

Quantization is symmetric (zero point 0, values in [-127, 127]). Weights are taken as the
MatMul reads them (``[in, out]``; a ``Gemm`` with ``transB`` or a ``Transpose`` of an
initializer is folded into the stored layout), so the scale is per output channel. The
metadata records the mode, granularity and, per quantized initializer, where its int8
values and scales are: :func:`dequantized_initializers` reads the float weights back for the
reference rebuilt from the file and for the weight comparison. A native ONNX ``GRU`` node
cannot be quantized; its weights stay float, and the result says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper

from gru_onnx.compact import compact_names
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import refuse_aliases
from gru_onnx.metadata import METADATA_KEY, data_file_paths, find_metadata, load_model
from gru_onnx.options import QuantizeOptions, SavingOptions
from gru_onnx.protos import all_graphs, attribute
from gru_onnx.registry import QUANTIZE_MODES
from gru_onnx.saving import data_files, save_model
from gru_onnx.wiring import record_consumers

#: Default check tolerances (atol, rtol) for int8 files against the float32 source: about 10x
#: the worst error per unit of input RMS that ``benchmarks/int8.py`` measured at the check's
#: int8 scales (0.0054; relu, gelu, tanh; loop and unrolled; ``benchmarks/results/int8.md``).
INT8_TOLERANCES = {"weights": (0.05, 0.05), "dynamic": (0.05, 0.05)}

#: Weights smaller than this stay float (biases, tiny heads): nothing to gain.
MIN_ELEMENTS = 16


@dataclass
class QuantizeResult:
    """What :func:`quantize` did: quantized initializers, those left float and why."""

    path: Path
    mode: str
    per_channel: bool
    quantized: list[str] = field(default_factory=list)
    left_float: dict[str, str] = field(default_factory=dict)
    size_before: int = 0
    size_after: int = 0


@dataclass
class _Use:
    graph: int  # index in all_graphs() order
    node: onnx.NodeProto
    transposed: bool  # the MatMul reads the initializer transposed
    via: str | None  # output of a Transpose between initializer and use, folded away


def _find_uses(model: onnx.ModelProto) -> tuple[dict[str, list[_Use]], dict[str, str]]:
    """Per float rank-2 initializer: its MatMul/Gemm weight uses, or why it cannot be quantized."""
    inits = {
        t.name: t
        for t in model.graph.initializer
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) and len(t.dims) == 2
    }
    transposes: dict[str, str] = {}  # output -> initializer
    for node in model.graph.node:
        if node.op_type == "Transpose" and node.input[0] in inits and list(attribute(node, "perm", [1, 0])) == [1, 0]:
            transposes[node.output[0]] = node.input[0]
    uses: dict[str, list[_Use]] = {name: [] for name in inits}
    refused: dict[str, str | None] = {}  # None: stays float without a word
    for index, graph in enumerate(all_graphs(model.graph)):
        for node in graph.node:
            if node.op_type == "Transpose" and node.output[0] in transposes:
                continue
            for slot, value in enumerate(node.input):
                name, via = (transposes[value], value) if value in transposes else (value, None)
                if name not in inits:
                    continue
                weight_slot = slot == 1 and node.op_type in ("MatMul", "Gemm")
                plain_gemm = node.op_type != "Gemm" or (
                    attribute(node, "transA", 0) == 0
                    and attribute(node, "alpha", 1.0) == attribute(node, "beta", 1.0) == 1.0
                )
                if node.op_type == "GRU":
                    refused[name] = None  # said once for the op (quantize_model)
                    continue
                if not weight_slot or not plain_gemm:
                    refused[name] = f"read by {node.op_type} ({node.name or 'unnamed'}), which has no int8 form here"
                    continue
                flipped = bool(attribute(node, "transB", 0)) if node.op_type == "Gemm" else False
                uses[name].append(_Use(index, node, flipped != (via is not None), via))
    for name, found in uses.items():
        if name in refused:
            continue
        if not found:
            refused[name] = None  # not a weight: nothing to say
        elif len({u.transposed for u in found}) > 1:
            refused[name] = "read in two orientations"
        elif int(np.prod(inits[name].dims)) < MIN_ELEMENTS:
            refused[name] = f"fewer than {MIN_ELEMENTS} values"
    return {n: u for n, u in uses.items() if n not in refused}, {n: r for n, r in refused.items() if r}


def _quantize_array(matrix: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of ``matrix`` ``[in, out]``: values and scale (per column or one)."""
    peak = np.abs(matrix).max(axis=0) if per_channel else np.array(np.abs(matrix).max())
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(matrix / scale), -127, 127).astype(np.int8)
    return q, scale


def dequantized_initializers(model: onnx.ModelProto, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Float values of the quantized initializers ``names`` (all by default), in their original
    layout, from the int8 values and scales the metadata points to."""
    meta = find_metadata(model) or {}
    records = (meta.get("quantization") or {}).get("tensors", {})
    wanted = set(records) if names is None else set(records) & names
    if not wanted:
        return {}
    stored = {t.name: t for g in all_graphs(model.graph) for t in g.initializer}
    out = {}
    for name in sorted(wanted):
        record = records[name]
        q = numpy_helper.to_array(stored[record["values"]]).astype(np.float32)
        scale = numpy_helper.to_array(stored[record["scale"]]).astype(np.float32)
        matrix = q * scale  # [in, out], scale per column or scalar
        value = matrix.T if record["transposed"] else matrix
        out[name] = value.astype(record.get("dtype", "float32"))
    return out


def quantization_step(model: onnx.ModelProto, names: set[str] | None = None) -> float:
    """The largest quantization step (scale) of the int8 weights among ``names`` (all by
    default); 0 when none of them is quantized."""
    meta = find_metadata(model) or {}
    records = (meta.get("quantization") or {}).get("tensors", {})
    stored = {t.name: t for g in all_graphs(model.graph) for t in g.initializer}
    scales = [
        float(numpy_helper.to_array(stored[r["scale"]]).max())
        for name, r in records.items()
        if r["scale"] in stored and (names is None or name in names)
    ]
    return max(scales, default=0.0)


def quantize_model(model: onnx.ModelProto, mode: str = "dynamic", per_channel: bool = True) -> QuantizeResult:
    """Quantize ``model`` in place; returns what was quantized (the path fields are unset)."""
    QuantizeOptions(mode, per_channel)  # validates the mode
    meta = find_metadata(model)
    if meta is None:
        raise GruOnnxUsageError("the file has no gru-onnx metadata (was it exported by gru-onnx?)")
    if meta.get("quantization"):
        raise GruOnnxUsageError(f"the file is already quantized ({meta['quantization']['mode']} mode)")
    if meta.get("dtype", "float32") != "float32":
        raise GruOnnxUsageError(f"only float32 files can be quantized (this one is {meta['dtype']})")
    uses, left_float = _find_uses(model)
    if any(n.op_type == "GRU" for g in all_graphs(model.graph) for n in g.node):
        left_float["native GRU op"] = "its weights stay float (the ONNX GRU op has no int8 form)"
    if not uses:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(left_float.items())) or "no MatMul/Gemm weights"
        raise GruOnnxUsageError(f"nothing to quantize in this file ({why})")
    inits = {t.name: t for t in model.graph.initializer}
    constants = {t.name for g in all_graphs(model.graph) for t in g.initializer}
    records: dict[str, Any] = {}
    new_inits: list[onnx.TensorProto] = []
    heads: dict[int, list[onnx.NodeProto]] = {}  # graph index -> DequantizeLinear nodes first
    body_inits: dict[int, list[onnx.TensorProto]] = {}  # graph index -> int8 weights kept there
    folded: set[str] = set()  # outputs of Transposes of quantized weights
    replaced: dict[str, list[onnx.NodeProto]] = {}  # first output of a MatMul/Gemm -> its int8 form
    for name in sorted(uses):
        found = uses[name]
        source = numpy_helper.to_array(inits[name]).astype(np.float32)
        transposed = found[0].transposed
        matrix = source.T if transposed else source  # as the MatMul reads it: [in, out]
        q, scale = _quantize_array(matrix, per_channel)
        q_name, s_name = f"{name}_int8", f"{name}_scale"
        tensors = [numpy_helper.from_array(q, q_name), numpy_helper.from_array(scale, s_name)]
        records[name] = {"values": q_name, "scale": s_name, "transposed": transposed}
        if mode == "weights":
            zero = numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero_point")
            records[name]["zero_point"] = zero.name
            axis = {"axis": 1} if per_channel else {}
            inputs = [q_name, s_name, zero.name]
            dequantize = helper.make_node(
                "DequantizeLinear", inputs, [f"{name}_dequantized"], name=f"{name}/dequantize", **axis
            )
            where = {use.graph for use in found}
            # A weight read in one loop body only lives in that body, as an initializer with
            # its DequantizeLinear: runtimes differ on values a body reads from outside
            # (OpenVINO's Scan takes initializers only; ORT's int8 weight fusion looks for the
            # initializer in the body's own graph).
            home = where.pop() if len(where) == 1 else 0
            body_inits.setdefault(home, []).extend([*tensors, zero])
            heads.setdefault(home, []).append(dequantize)
        else:
            new_inits.extend(tensors)
        for i, use in enumerate(found):
            if use.via is not None:
                folded.add(use.via)
            if mode == "dynamic":
                replaced[use.node.output[0]] = _integer_matmul(use.node, q_name, s_name, f"{name}/q{i}")
            elif use.node.op_type == "Gemm":
                replaced[use.node.output[0]] = _matmul_add(use.node, f"{name}_dequantized", f"{name}/w{i}", constants)
            else:
                use.node.input[1] = f"{name}_dequantized"
    # Rebuild every graph's node list once, innermost first (a parent's copy holds its children).
    graphs = list(all_graphs(model.graph))
    for index in reversed(range(len(graphs))):
        _rebuild(graphs[index], folded, replaced, heads.get(index, []))
        if index:
            graphs[index].initializer.extend(body_inits.get(index, []))
    remaining = [t for t in model.graph.initializer if t.name not in uses]
    del model.graph.initializer[:]
    model.graph.initializer.extend(remaining + new_inits + body_inits.get(0, []))
    _drop_value_info(model, set(uses))
    meta["quantization"] = {
        "mode": mode,
        "granularity": "per_channel" if per_channel else "per_tensor",
        "tensors": records,
        "left_float": dict(sorted(left_float.items())),
    }
    _set_metadata(model, meta)
    return QuantizeResult(Path(), mode, per_channel, sorted(records), dict(sorted(left_float.items())))


def _matmul_add(node: onnx.NodeProto, weight: str, prefix: str, constants: set[str]) -> list[onnx.NodeProto]:
    """A Gemm as MatMul with the dequantized ``[in, out]`` weight, then its C added.

    ONNX Runtime fuses DequantizeLinear + MatMul (+ a constant bias) into its int8-weight
    kernel, but a Gemm, or a MatMul + Add of a value computed per step (which it fuses into a
    Gemm first), keeps the DequantizeLinear and dequantizes the weight at every step (9x
    slower, measured). A computed C is therefore added with ``Sum``, which that fusion skips.
    """
    has_bias = len(node.input) > 2 and bool(node.input[2])
    product = f"{prefix}/matmul" if has_bias else node.output[0]
    nodes = [helper.make_node("MatMul", [node.input[0], weight], [product], name=f"{prefix}/matmul")]
    if has_bias:
        op = "Add" if node.input[2] in constants else "Sum"
        nodes.append(helper.make_node(op, [product, node.input[2]], [node.output[0]], name=f"{prefix}/add"))
    return nodes


def _integer_matmul(node: onnx.NodeProto, q_name: str, s_name: str, prefix: str) -> list[onnx.NodeProto]:
    """A MatMul/Gemm as DynamicQuantizeLinear + MatMulInteger + Cast + Mul (+ Add of the bias)."""
    x, out = node.input[0], node.output[0]
    xq, xs, xz = f"{prefix}/x_q", f"{prefix}/x_scale", f"{prefix}/x_zero_point"
    acc, acc_f, both, scaled = f"{prefix}/acc", f"{prefix}/acc_float", f"{prefix}/scale", f"{prefix}/scaled"
    has_bias = node.op_type == "Gemm" and len(node.input) > 2 and bool(node.input[2])
    nodes = [
        helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz], name=f"{prefix}/quantize"),
        helper.make_node("MatMulInteger", [xq, q_name, xz], [acc], name=f"{prefix}/matmul"),
        helper.make_node("Cast", [acc], [acc_f], name=f"{prefix}/cast", to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", [xs, s_name], [both], name=f"{prefix}/scales"),
        helper.make_node("Mul", [acc_f, both], [scaled if has_bias else out], name=f"{prefix}/rescale"),
    ]
    if has_bias:
        nodes.append(helper.make_node("Add", [scaled, node.input[2]], [out], name=f"{prefix}/bias"))
    return nodes


def _rebuild(
    graph: onnx.GraphProto, drop: set[str], replace: dict[str, list[onnx.NodeProto]], head: list[onnx.NodeProto]
) -> None:
    """``graph``'s nodes with ``head`` first, ``drop`` left out and ``replace`` substituted
    (nodes keyed by their first output, unique in SSA form)."""
    nodes = list(head)
    for node in graph.node:
        key = node.output[0] if node.output else ""
        if key in drop:
            continue
        if key in replace:
            nodes.extend(replace[key])
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        nodes.append(copy)
    del graph.node[:]
    graph.node.extend(nodes)


def _drop_value_info(model: onnx.ModelProto, names: set[str]) -> None:
    """Stored shapes of removed values would contradict the rewritten graph: drop them."""
    for graph in all_graphs(model.graph):
        kept = [v for v in graph.value_info if v.name not in names]
        del graph.value_info[:]
        graph.value_info.extend(kept)


def _set_metadata(model: onnx.ModelProto, meta: dict[str, Any]) -> None:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = json.dumps(meta, sort_keys=True)
            return
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta, sort_keys=True))  # pragma: no cover


def quantize(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    options: QuantizeOptions = QuantizeOptions(mode="dynamic"),  # noqa: B008 (frozen)
    *,
    saving: SavingOptions = SavingOptions(),  # noqa: B008 (frozen)
) -> QuantizeResult:
    """Write an int8 copy of the gru-onnx file ``source`` to ``target`` (checked, atomic).

    A source with external data is read whole (its data file checked first); ``saving``
    decides for the target as for :func:`gru_onnx.export` (see :mod:`gru_onnx.saving`).
    """
    if options.mode is None:
        raise GruOnnxUsageError(f"no quantization mode given; valid modes: {', '.join(QUANTIZE_MODES)}")
    source, target = Path(source), Path(target)
    inputs = [("input", source), *(("input's data file", d) for d in data_file_paths(source))]
    refuse_aliases([("output", target)], inputs)
    model = load_model(source, weights="all")
    size_before = sum(f.stat().st_size for f in _files(source))
    result = quantize_model(model, options.mode, options.per_channel)
    try:
        # short node and value names for the nodes added here too (gru_onnx.compact)
        model_ir = compact_names(ir.from_proto(model))
        record_consumers(model_ir)  # the int8 tensors' readers (gru_onnx.wiring)
        save_model(model_ir, target, external_data=saving.external_data, ir_version=saving.ir_version)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:  # pragma: no cover
        raise GruOnnxUsageError(f"the quantized graph does not check: {str(exc).splitlines()[0]}") from None
    result.path = target
    result.size_before = size_before
    result.size_after = sum(f.stat().st_size for f in _files(target))
    return result


def _files(path: Path) -> list[Path]:
    """``path`` and the external data files it names (sizes count both)."""
    return [path] + [d.path for d in data_files(onnx.load(str(path), load_external_data=False), path)]
