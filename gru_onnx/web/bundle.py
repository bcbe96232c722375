"""``gru-onnx package FILE --web DIR``: a static folder that runs the file in any browser, offline.

The bundle holds the model (and its external data file), the onnxruntime-web files the
WebAssembly backend loads, ``manifest.json`` (inputs, outputs, state pairs with shapes and
dtypes, data files: what JavaScript cannot read from the ONNX metadata without a protobuf
parser), ``gru-stream.js`` (the JavaScript twin of :class:`gru_onnx.StreamingSession`), a
reference input with the PyTorch outputs for it under ``reference/`` (raw little-endian bytes,
described in the manifest), and ``index.html``, which runs the model frame by frame on the
reference, shows ``PASS``/``FAIL`` with the max error in ``#result``, and times each frame.

The reference comes from the file itself for a lone CustomGRU (its PyTorch reference rebuilt
from its weights, :func:`gru_onnx.rebuild.reference_from_file`) or from the caller (``inputs``
and ``outputs``, e.g. through :func:`torch_reference`) for a whole model. The folder is written
beside the target and renamed into place once complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx._version import __version__
from gru_onnx.check.compare import DEFAULT_TOLERANCES
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import remove_stale_temps, temp_name
from gru_onnx.metadata import load_model, read_metadata
from gru_onnx.options import DEFAULT_WEB_FRAMES, WebOptions
from gru_onnx.rebuild import reference_from_file
from gru_onnx.samples import flatten_tensors, time_axes
from gru_onnx.saving import validate_data_files
from gru_onnx.spec import float_type
from gru_onnx.streaming import recorded_input_axes, state_pairs
from gru_onnx.web.setup import PINS, SETUP_COMMAND, package_dir, package_problem

FORMAT = "gru-onnx-web"
FORMAT_VERSION = 1
#: Frames of the generated reference input (a streaming file runs them one call each).
DEFAULT_FRAMES = DEFAULT_WEB_FRAMES
#: onnxruntime-web's files the bundle's WebAssembly backend loads (entry, its loader, the binary).
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: The bundle's own files, copied from ``gru_onnx/web/assets``.
ASSETS = ("index.html", "gru-stream.js")
README = """\
{name}: {model} in the browser, made by gru-onnx {version} (gru-onnx package --web).

Serve this folder with any static file server and open index.html, e.g.
    python3 -m http.server -d {folder} 8000    ->  http://localhost:8000/
The page runs the model frame by frame on reference/ and compares with the PyTorch outputs there
(#result starts with PASS or FAIL), then times the frames. Nothing is fetched from elsewhere.
Without cross-origin isolation headers (COOP/COEP) onnxruntime-web runs one thread and
performance.now() is coarse; the page therefore times many frames.

In your own page:
    import * as ort from "./ort/ort.wasm.min.mjs";
    import {{ GruStream }} from "./gru-stream.js";
    const stream = await GruStream.create("manifest.json", {{ ort }});
    const outputs = await stream.run({{ {first}: new ort.Tensor(...) }});  // states carried
"""


@dataclass(frozen=True)
class WebBundle:
    """A written bundle: its folder, the files in it (relative), its size and its manifest."""

    path: Path
    files: tuple[str, ...]
    size: int
    manifest: dict[str, Any]

    @property
    def index(self) -> Path:
        """The page to open (through a static server)."""
        return self.path / "index.html"


def _default_tolerances(dtype: str) -> tuple[float, float]:
    return DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"])


def _dims(info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in info.type.tensor_type.shape.dim]


def _dtype(info: onnx.ValueInfoProto) -> str:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)).name


@dataclass(frozen=True)
class _Interface:
    """What the manifest says about a file: inputs, outputs and states, with their time axes."""

    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    states: list[dict[str, Any]]
    chunk: int | None


def _interface(proto: onnx.ModelProto, metadata: Mapping[str, Any]) -> _Interface:
    pairs = state_pairs(metadata)
    state_in = {p.input for p in pairs}
    state_out = {p.output for p in pairs}
    initializers = {t.name for t in proto.graph.initializer}
    graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
    by_name = {i.name: i for i in graph_inputs}
    plain_inputs = [i for i in graph_inputs if i.name not in state_in]
    in_axes = recorded_input_axes(metadata, {i.name: len(_dims(i)) for i in plain_inputs})
    out_axes = time_axes(proto, dict(metadata))
    inputs = [
        {"name": i.name, "dtype": _dtype(i), "shape": _dims(i), "time_axis": in_axes.get(i.name)} for i in plain_inputs
    ]
    outputs = [
        {"name": o.name, "dtype": _dtype(o), "shape": _dims(o), "time_axis": axis}
        for o, axis in zip(proto.graph.output, out_axes, strict=True)
        if o.name not in state_out
    ]
    states = [{**p.to_json(), "dtype": _dtype(by_name[p.input])} for p in pairs]
    return _Interface(inputs, outputs, states, metadata.get("chunk"))


def torch_reference(
    model: Any, inputs: Mapping[str, np.ndarray], path: str | os.PathLike[str]
) -> dict[str, np.ndarray]:
    """The PyTorch ``model``'s outputs for ``inputs`` (by the file's input names), named as the
    file's outputs (states excluded): the ``outputs`` :func:`package_web` takes for a whole model.
    The model is called with the inputs in the file's order, in eval mode, without gradients."""
    proto = load_model(path, weights="none")
    interface = _interface(proto, read_metadata(proto))
    names = [i["name"] for i in interface.inputs]
    missing = [n for n in names if n not in inputs]
    if missing:
        raise GruOnnxUsageError(f"no reference input {missing[0]!r}; the file takes {', '.join(names)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result = model(*[torch.from_numpy(np.asarray(inputs[n])) for n in names])
    finally:
        model.train(was_training)
    values = [t.detach().cpu().numpy() for t in flatten_tensors(result)]
    out_names = [o["name"] for o in interface.outputs]
    if len(values) != len(out_names):
        raise GruOnnxUsageError(
            f"the model gives {len(values)} outputs, the file {len(out_names)} besides its states "
            f"({', '.join(out_names)})"
        )
    return dict(zip(out_names, values, strict=True))


def _lone_reference(
    proto: onnx.ModelProto, metadata: Mapping[str, Any], interface: _Interface, frames: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Seeded inputs (batch 1, ``frames`` steps) and the rebuilt PyTorch reference's outputs."""
    reference = reference_from_file(proto, metadata)
    generator = torch.Generator().manual_seed(seed)
    dtype = float_type(metadata.get("dtype", "float32")).torch
    args: dict[str, torch.Tensor] = {}
    for info in interface.inputs:
        shape = [1 if isinstance(d, str) else d for d in info["shape"]]
        if info["time_axis"] is not None:
            shape[info["time_axis"]] = frames
        if info["name"] == "lengths":
            args["lengths"] = torch.full(shape, _steps(interface, frames), dtype=torch.int64)
        else:
            scale = 0.5 if info["name"] == "h0" else 1.0
            args[info["name"]] = (scale * torch.randn(*shape, generator=generator)).to(dtype)
    with torch.no_grad():
        result = reference(args["input"], args.get("h0"), args.get("lengths"))
    values = [t.numpy() for t in flatten_tensors(result)]
    outputs = dict(zip([o["name"] for o in interface.outputs], values, strict=True))
    return {n: t.numpy() for n, t in args.items()}, outputs


def _steps(interface: _Interface, frames: int) -> int:
    """The reference's length: ``frames``, or the file's static sequence length."""
    for info in interface.inputs:
        axis = info["time_axis"]
        if axis is not None and isinstance(info["shape"][axis], int) and interface.chunk is None:
            return info["shape"][axis]
    return frames


def _check_reference(interface: _Interface, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> int:
    """Refuse a reference that does not fit the file; returns its number of frames."""
    lengths = set()
    for kind, infos, given in (("input", interface.inputs, inputs), ("output", interface.outputs, outputs)):
        names = [i["name"] for i in infos]
        if set(given) != set(names):
            missing = [n for n in names if n not in given]
            extra = [n for n in given if n not in names]
            problem = f"no reference {kind} {missing[0]!r}" if missing else f"unknown reference {kind} {extra[0]!r}"
            raise GruOnnxUsageError(f"{problem}; the file's {kind}s besides its states: {', '.join(names)}")
        for info in infos:
            array = np.asarray(given[info["name"]])
            if array.ndim != len(info["shape"]):
                raise GruOnnxUsageError(
                    f"reference {kind} {info['name']!r} has shape {list(array.shape)}; the file's is {info['shape']}"
                )
            if info["time_axis"] is not None:
                lengths.add(array.shape[info["time_axis"]])
    if len(lengths) != 1:
        raise GruOnnxUsageError(f"the reference inputs and outputs disagree on the number of frames: {sorted(lengths)}")
    return lengths.pop()


def _step(interface: _Interface, frames: int) -> int:
    """Frames per ``run()`` call on the page: 1 for a streaming file (its chunk if fixed), all
    of them for a file without states."""
    if not interface.states:
        return frames
    if interface.chunk is not None:
        if frames % interface.chunk:
            raise GruOnnxUsageError(
                f"the file takes chunks of exactly {interface.chunk} frames; {frames} frames is no multiple of it"
            )
        return interface.chunk
    return 1


def _prepare_target(out_dir: Path, force: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise GruOnnxUsageError(f"{out_dir} exists and is not a folder")
    if not force:
        raise GruOnnxUsageError(f"{out_dir} exists; pass force=True (--force) to replace it")
    try:
        ours = json.loads((out_dir / "manifest.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours and any(out_dir.iterdir()):
        raise GruOnnxUsageError(f"{out_dir} holds files that are not a gru-onnx web bundle; refusing to replace it")


def package_web(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: WebOptions = WebOptions(),  # noqa: B008 (frozen)
    *,
    inputs: Mapping[str, np.ndarray] | None = None,
    outputs: Mapping[str, np.ndarray] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> WebBundle:
    """Write the static bundle of the gru-onnx file ``path`` to the folder ``out_dir``.

    The reference is ``inputs`` and ``outputs`` (whole-sequence arrays by the file's names,
    states excluded, batch 1 advised; see :func:`torch_reference`), or for a lone CustomGRU
    ``options.frames`` seeded random frames run through its rebuilt PyTorch reference.
    ``options.atol``/``rtol`` set the page's verdict (the check's defaults for the file's dtype).
    An existing ``out_dir`` is replaced only with ``options.force`` (and only when it is a bundle
    or empty). ``cache``: the npm cache of ``gru-onnx setup web`` (None: the default one).
    """
    source = Path(path)
    target = Path(out_dir)
    name, force, frames, seed, atol, rtol = (options.name, options.force, options.frames, options.seed,
                                             options.atol, options.rtol)  # fmt: skip
    if problem := package_problem("onnxruntime-web", cache):
        raise GruOnnxUsageError(problem)
    if inputs is None and outputs is not None:
        raise GruOnnxUsageError("reference outputs given without their inputs: pass inputs= too")
    _prepare_target(target, force)
    data = validate_data_files(load_model(source, weights="none"), source)  # before weights are read inline
    proto = load_model(source)
    metadata = read_metadata(proto)
    interface = _interface(proto, metadata)
    if inputs is None:
        stacks = metadata.get("stacks", [])
        if len(stacks) != 1 or stacks[0]["path"] != "":
            where = ", ".join(repr(s["path"]) for s in stacks) or "none"
            raise GruOnnxUsageError(
                f"the file holds a whole model (CustomGRU at {where}): pass its reference inputs and PyTorch outputs "
                "(inputs=..., outputs=...; gru_onnx.web.bundle.torch_reference computes them)"
            )
        frames = _steps(interface, frames)
        if interface.chunk is not None:
            frames = max(-(-frames // interface.chunk), 1) * interface.chunk
        inputs, outputs = _lone_reference(proto, metadata, interface, frames, seed)
        described = "PyTorch reference rebuilt from the file's weights"
    elif outputs is None:
        stacks = metadata.get("stacks", [])
        if len(stacks) != 1 or stacks[0]["path"] != "":
            raise GruOnnxUsageError("pass the PyTorch outputs for the reference inputs too (outputs=...)")
        outputs = torch_reference(reference_from_file(proto, metadata), inputs, source)
        described = "PyTorch reference rebuilt from the file's weights, on the given inputs"
    else:
        described = "PyTorch outputs given with the bundle"
    frames = _check_reference(interface, inputs, outputs)
    step = _step(interface, frames)
    dtype = str(metadata.get("dtype", "float32"))
    default_atol, default_rtol = _default_tolerances(dtype)
    name = name or source.stem

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        work = temp_name(target)
        work.mkdir()
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot write into {target.parent}: {exc.strerror or exc}") from None
    try:
        shutil.copyfile(source, work / source.name)
        data_entries = []
        for found in data:
            (work / found.location).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found.path, work / found.location)
            data_entries.append({"location": found.location, "file": found.location})
        ort_dir = work / "ort"
        ort_dir.mkdir()
        dist = package_dir("onnxruntime-web", cache) / "dist"
        for file in ORT_FILES:
            if not (dist / file).is_file():
                raise GruOnnxUsageError(f"{dist / file} is missing: run `{SETUP_COMMAND}`")
            shutil.copyfile(dist / file, ort_dir / file)
        assets = resources.files("gru_onnx.web") / "assets"
        for file in ASSETS:
            (work / file).write_bytes((assets / file).read_bytes())
        (work / "reference").mkdir()
        reference = {
            "frames": frames,
            "step": step,
            "atol": default_atol if atol is None else atol,
            "rtol": default_rtol if rtol is None else rtol,
            "source": described,
            "inputs": _write_arrays(work, interface.inputs, inputs, "input"),
            "outputs": _write_arrays(work, interface.outputs, outputs, "output"),
        }
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": name,
            "model": source.name,
            "data": data_entries,
            "inputs": interface.inputs,
            "outputs": interface.outputs,
            "states": interface.states,
            "chunk": interface.chunk,
            "onnxruntime_web": PINS["onnxruntime-web"],
            "gru_onnx": {
                "version": __version__,
                "strategy": metadata.get("strategy"),
                "dtype": dtype,
                "opset": metadata.get("opset"),
            },
            "reference": reference,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        first = interface.inputs[0]["name"] if interface.inputs else "input"
        readme = README.format(name=name, model=source.name, version=__version__, folder=target, first=first)
        (work / "README.txt").write_text(readme)
        _replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = tuple(sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()))
    size = sum((target / f).stat().st_size for f in files)
    return WebBundle(target, files, size, manifest)


def _write_arrays(
    folder: Path, infos: Sequence[Mapping[str, Any]], arrays: Mapping[str, np.ndarray], kind: str
) -> list[dict[str, Any]]:
    """Each array as raw little-endian bytes under ``reference/``, described for the manifest."""
    described = []
    for index, info in enumerate(infos):
        array = np.ascontiguousarray(arrays[info["name"]])
        if array.dtype.name != info["dtype"]:
            raise GruOnnxUsageError(
                f"reference {kind} {info['name']!r} is {array.dtype.name}; the file's is {info['dtype']}"
            )
        file = f"reference/{kind}{index}.bin"
        array.astype(array.dtype.newbyteorder("<"), copy=False).tofile(folder / file)
        described.append({**info, "shape": list(array.shape), "file": file})
    return described


def _replace(work: Path, target: Path) -> None:
    """Move the finished folder ``work`` to ``target`` (an old bundle there goes only after)."""
    old = None
    if target.exists():
        old = temp_name(target)
        target.rename(old)
    try:
        work.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
