"""A Triton Inference Server model repository entry for an exported file (onnxruntime backend).

The config is built with Triton's own schema (``tritonclient``'s ``model_config_pb2``) from the
file's inputs and outputs, written as text protobuf, parsed back and checked against the file.
Streaming files (``read_metadata(path)["streaming"]``) get ``sequence_batching`` with one
implicit ``state`` per state pair, zero initial state, so that Triton carries the GRU states
between the requests of a sequence; their state tensors are not listed as ordinary inputs
and outputs. Other files get ``dynamic_batching`` where their batch axis allows it.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import onnx
from google.protobuf import text_format

from gru_onnx.compat import file_support
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import remove_stale_temps, temp_name
from gru_onnx.metadata import find_metadata, load_model, lone_roles, lone_stack, plain_inputs
from gru_onnx.options import DEFAULT_SEQUENCE_IDLE_US, TritonOptions
from gru_onnx.protos import control_flow_ops
from gru_onnx.saving import validate_data_files

_TRITON_TYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}

#: ``max_batch_size`` written for a file with a dynamic batch axis when none is given.
DEFAULT_MAX_BATCH_SIZE = 8


@dataclass
class TritonPackage:
    """What :func:`package_triton` wrote and decided."""

    model_dir: Path
    config_path: Path
    max_batch_size: int
    states: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def _schema() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise GruOnnxUsageError(
            "packaging for Triton needs tritonclient's model config schema: pip install gru-onnx[triton]"
        ) from None
    return model_config_pb2


@dataclass(frozen=True)
class _Tensor:
    name: str
    elem_type: int
    dims: list[int | str]  # ints static, strings named dynamic axes, "" unnamed dynamic


def _tensors(values: Any, skip: set[str]) -> list[_Tensor]:
    out = []
    for value in values:
        if value.name in skip:
            continue
        tensor = value.type.tensor_type
        dims: list[int | str] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "") for d in tensor.shape.dim
        ]
        out.append(_Tensor(value.name, tensor.elem_type, dims))
    return out


def _triton_type(t: _Tensor) -> str:
    if t.elem_type not in _TRITON_TYPES:
        kind = onnx.TensorProto.DataType.Name(t.elem_type)
        raise GruOnnxUsageError(f"tensor {t.name!r} has type {kind}, which Triton's onnxruntime backend does not take")
    return _TRITON_TYPES[t.elem_type]


def _batched(tensors: list[_Tensor]) -> bool:
    """True when every tensor's axis 0 is one shared dynamic axis: Triton's batch axis."""
    firsts = {t.dims[0] if t.dims else None for t in tensors}
    return len(firsts) == 1 and isinstance(next(iter(firsts)), str)


def _dims(t: _Tensor, batched: bool) -> list[int]:
    dims = t.dims[1:] if batched else t.dims
    return [d if isinstance(d, int) else -1 for d in dims]


def build_config(
    model: onnx.ModelProto, name: str, options: TritonOptions = TritonOptions()  # noqa: B008 (frozen)
) -> tuple[Any, list[tuple[str, str]], list[str]]:
    """The ``ModelConfig`` for ``model``, its implicit state pairs and notes for the user."""
    pb = _schema()
    max_batch_size, instances, device = options.max_batch_size, options.instances, options.device
    meta = find_metadata(model) or {}
    states = [(s["input"], s["output"]) for s in (meta.get("streaming") or {}).get("states", [])]
    state_names = {n for pair in states for n in pair}
    initializers = {i.name for i in model.graph.initializer}
    inputs = _tensors(model.graph.input, initializers | state_names)
    outputs = _tensors(model.graph.output, state_names)
    state_inputs = {t.name: t for t in _tensors(model.graph.input, initializers) if t.name in state_names}
    notes: list[str] = []
    lone = any(s.get("module") == "" for s in (meta.get("streaming") or {}).get("states", []))
    if lone:  # a lone GRU's h_n repeats its state output in the nn.GRU layout [layers, batch, hidden]
        repeated = [t for t in outputs if not (t.dims and isinstance(t.dims[0], str))]
        outputs = [t for t in outputs if t not in repeated]
        if repeated:
            names = ", ".join(t.name for t in repeated)
            notes.append(f"{names} left out of the config: it repeats the state, not batch-first (Triton carries it)")

    batched = _batched(inputs + outputs + list(state_inputs.values()))
    if max_batch_size is None:
        max_batch_size = DEFAULT_MAX_BATCH_SIZE if batched else 0
    if max_batch_size > 0 and not batched:
        raise GruOnnxUsageError(
            "the file has no dynamic batch axis first on every input and output, so Triton cannot batch it: "
            "use --max-batch-size 0 (or export batch-first with a dynamic batch)"
        )
    if not batched:
        others = [t.name for t in inputs + outputs if not (t.dims and isinstance(t.dims[0], str))]
        where = f" ({', '.join(others)} not batch-first)" if others else ""
        notes.append(f"no dynamic batch axis first on every tensor{where}: max_batch_size 0, full shapes")
    if states and max_batch_size == 0:
        raise GruOnnxUsageError(
            "a streaming file needs Triton's batch axis for its states (max_batch_size > 0) and a dynamic batch"
        )
    # a lone GRU's h0 by place (a factory may name it), a whole model's by the usual names
    h0 = lone_roles(plain_inputs(model, meta)).get("h0") if lone_stack(meta) is not None else None
    given = [t.name for t in inputs if t.name == h0 or (h0 is None and t.name in ("h0", "hx"))]
    if not states and given:
        notes.append(
            f"the file takes its initial state as an ordinary input ({given[0]}): packaged stateless; export with "
            "--streaming for Triton to carry the states between requests"
        )

    config = pb.ModelConfig(name=name, backend="onnxruntime", max_batch_size=max_batch_size)
    for t in inputs:
        config.input.add(name=t.name, data_type=getattr(pb, _triton_type(t)), dims=_dims(t, max_batch_size > 0))
    for t in outputs:
        config.output.add(name=t.name, data_type=getattr(pb, _triton_type(t)), dims=_dims(t, max_batch_size > 0))
    if states:
        batching = config.sequence_batching
        for state_in, state_out in states:
            t = state_inputs[state_in]
            dims = _dims(t, True)
            if any(d < 0 for d in dims):
                raise GruOnnxUsageError(f"state {state_in!r} has a dynamic axis besides the batch; Triton needs sizes")
            data_type = getattr(pb, _triton_type(t))
            state = batching.state.add(input_name=state_in, output_name=state_out, data_type=data_type, dims=dims)
            state.initial_state.add(name="zeros", data_type=data_type, dims=dims, zero_data=True)
        _sequence_settings(batching, options, config.max_batch_size)
    else:
        _refuse_sequence_settings(options)
        if max_batch_size == 0 and options.max_queue_delay_us is not None:
            raise GruOnnxUsageError(
                "max_queue_delay_us applies to batching, and this file is packaged without (max_batch_size 0)"
            )
        if max_batch_size > 0:
            config.dynamic_batching.SetInParent()
            if options.max_queue_delay_us is not None:
                config.dynamic_batching.max_queue_delay_microseconds = options.max_queue_delay_us
    kind = pb.ModelInstanceGroup.KIND_GPU if device == "gpu" else pb.ModelInstanceGroup.KIND_CPU
    config.instance_group.add(count=instances, kind=kind)
    _accelerators(config, model, meta, options, inputs + outputs + list(state_inputs.values()), notes)
    return config, states, notes


def _sequence_settings(batching: Any, options: TritonOptions, max_batch_size: int) -> None:
    """What keeps a live stream alive and how streams share a batch (see :class:`TritonOptions`)."""
    too_big = [size for size in options.preferred_batch_sizes if size > max_batch_size]
    if too_big:  # Triton's ValidateModelConfig refuses such a model at load
        raise GruOnnxUsageError(
            f"preferred batch size {too_big[0]} is larger than max_batch_size {max_batch_size}: Triton refuses that"
        )
    idle = options.max_sequence_idle_us
    batching.max_sequence_idle_microseconds = DEFAULT_SEQUENCE_IDLE_US if idle is None else idle
    if options.sequence_strategy == "oldest":
        oldest = batching.oldest
        oldest.SetInParent()
        if options.max_candidate_sequences is not None:
            oldest.max_candidate_sequences = options.max_candidate_sequences
        oldest.preferred_batch_size.extend(options.preferred_batch_sizes)
        if options.max_queue_delay_us is not None:
            oldest.max_queue_delay_microseconds = options.max_queue_delay_us
    else:
        batching.direct.SetInParent()
        if options.max_queue_delay_us is not None:
            batching.direct.max_queue_delay_microseconds = options.max_queue_delay_us


def _refuse_sequence_settings(options: TritonOptions) -> None:
    """Sequence-batcher settings given for a file that is not streaming: refused, not dropped."""
    settings = ("sequence_strategy", "max_sequence_idle_us", "max_candidate_sequences", "preferred_batch_sizes")
    given = [name for name in settings if getattr(options, name) not in (None, ())]
    if given:
        raise GruOnnxUsageError(
            f"{given[0]} is a sequence-batcher setting, for streaming files (export --streaming); this file has no "
            "states for Triton to carry"
        )


def _accelerators(
    config: Any, model: onnx.ModelProto, meta: dict[str, Any], options: TritonOptions, tensors: list[_Tensor],
    notes: list[str],
) -> None:  # fmt: skip
    """The ONNX Runtime backend's CUDA-graph and TensorRT accelerators, where the file allows them."""
    if options.cuda_graph:
        if ops := control_flow_ops(model):
            raise GruOnnxUsageError(
                f"CUDA graphs cannot capture this file: it has control flow ({', '.join(ops)}); export it unrolled "
                "(a static length) for them"
            )
        dynamic = [t.name for t in tensors if any(not isinstance(d, int) for d in t.dims)]
        if dynamic or config.max_batch_size > 0:
            where = f" ({', '.join(dynamic)} dynamic)" if dynamic else " (Triton batches requests of any size)"
            raise GruOnnxUsageError(
                f"CUDA graphs replay one shape: the file needs static shapes and --max-batch-size 0{where}"
            )
        cuda = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="cuda")
        cuda.parameters["enable_cuda_graph"] = "1"
        notes.append(
            "CUDA graphs use the backend's \"cuda\" execution accelerator: Triton 24.06 or newer (older onnxruntime "
            "backends refuse the model: unknown Execution Accelerator 'cuda')"
        )
    if options.tensorrt is not None:
        support = {row.runtime: row for row in file_support(meta)} if meta else {}
        row = support.get("onnxruntime-tensorrt")
        if row is not None and row.status != "yes":
            raise GruOnnxUsageError(f"TensorRT does not run this file as intended: {row.note}")
        accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
        accelerator.parameters["precision_mode"] = options.tensorrt
        accelerator.parameters["trt_engine_cache_enable"] = "1"
        if options.tensorrt == "FP16" and meta.get("dtype") == "float32":
            notes.append("TensorRT at FP16 computes a float32 file in half precision: check it on TensorRT first")


def _external_files(model: onnx.ModelProto, source: Path) -> list[str]:
    """Relative locations of the file's external data (copied beside the model), each checked
    first: present, complete, inside the model's folder (see :mod:`gru_onnx.saving`)."""
    locations = [data.location for data in validate_data_files(model, source)]
    if "model.onnx" in (PurePosixPath(loc).as_posix().lower() for loc in locations):
        raise GruOnnxUsageError(
            f"{source}: its external data is named model.onnx, the name Triton gives the model itself beside it; "
            "save the data under another name (gru-onnx export --external-data writes NAME.onnx.data)"
        )
    return locations


def _is_entry(folder: Path) -> bool:
    """True when ``folder`` is empty or holds a Triton model entry only: ``config.pbtxt`` and
    numbered version folders (what ``--force`` may replace; anything else is somebody's)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    entries = list(folder.iterdir())
    return all(
        (e.name == "config.pbtxt" and e.is_file() and not e.is_symlink())
        or (e.name.isdigit() and e.is_dir() and not e.is_symlink())
        for e in entries
    )


def verify_config(text: str, model: onnx.ModelProto, states: list[tuple[str, str]]) -> None:
    """Parse the written text back with the schema and check it names the file's tensors."""
    pb = _schema()
    parsed = text_format.Parse(text, pb.ModelConfig())
    state_names = {n for pair in states for n in pair}
    initializers = {i.name for i in model.graph.initializer}
    expected_in = [v.name for v in model.graph.input if v.name not in initializers | state_names]
    expected_out = [v.name for v in model.graph.output if v.name not in state_names]
    listed = [o.name for o in parsed.output]
    if [i.name for i in parsed.input] != expected_in or listed != [n for n in expected_out if n in listed]:
        raise AssertionError("the Triton config does not list the file's inputs and outputs")  # pragma: no cover
    if [(s.input_name, s.output_name) for s in parsed.sequence_batching.state] != states:
        raise AssertionError("the written Triton config does not list the file's states")  # pragma: no cover


def package_triton(
    path: str | os.PathLike[str],
    repo: str | os.PathLike[str],
    options: TritonOptions = TritonOptions(),  # noqa: B008 (frozen)
) -> TritonPackage:
    """Write ``repo/name/config.pbtxt`` and ``repo/name/1/model.onnx`` (plus any external data).

    The entry is assembled in a temporary folder inside ``repo`` and renamed into place, so a
    failure leaves nothing half-written; an existing entry is replaced only with ``force``.
    """
    source = Path(path)
    model = load_model(source, weights="none")
    name = options.name or re.sub(r"[^A-Za-z0-9_.\-]", "_", source.stem)
    TritonOptions(name=name)  # a name derived from the file must be valid too
    if not os.fspath(repo):
        raise GruOnnxUsageError("the repository folder is an empty path")
    repo = Path(repo)
    target = repo / name
    if target.exists() or target.is_symlink():
        if not options.force:
            raise GruOnnxUsageError(f"{target} exists; pass --force to replace it")
        if not _is_entry(target):
            raise GruOnnxUsageError(
                f"{target} is not a Triton model entry (config.pbtxt and version folders only); refusing to replace it"
            )
    config, states, notes = build_config(model, name, options)
    text = text_format.MessageToString(config)
    verify_config(text, model, states)
    data_files = _external_files(model, source)

    try:
        repo.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        staging = temp_name(target)
        staging.mkdir()
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot write into {repo}: {exc.strerror or exc}") from None
    try:
        (staging / "1").mkdir()
        shutil.copyfile(source, staging / "1" / "model.onnx")
        for location in data_files:
            (staging / "1" / location).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.parent / location, staging / "1" / location)
        (staging / "config.pbtxt").write_text(text)
        for p in [staging, *staging.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        old = None
        if target.exists():
            old = temp_name(target)
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TritonPackage(target, target / "config.pbtxt", config.max_batch_size, states, notes)
