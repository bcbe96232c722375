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
beside the target and renamed into place once complete; an existing folder is replaced only
with ``force``, and only when every entry in it is one a bundle writes (the old manifest says
which model, data and reference files), so a file of the user's beside them stops it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import onnx
import torch

from gru_onnx._version import __version__
from gru_onnx.check.compare import DEFAULT_TOLERANCES
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import TEMP_MARK, remove_stale_temps, temp_name
from gru_onnx.metadata import input_time_axes, load_model, lone_roles, lone_stack, read_metadata
from gru_onnx.options import DEFAULT_WEB_FRAMES, MAX_WEB_FRAMES, WEB_REFERENCE_BUDGET, WebOptions
from gru_onnx.rebuild import reference_from_file
from gru_onnx.samples import flatten_tensors, time_axes
from gru_onnx.saving import DataFile, data_files, validate_data_files
from gru_onnx.spec import float_type
from gru_onnx.streaming import state_pairs
from gru_onnx.web.setup import PINS, SETUP_COMMAND, package_dir, package_problem

FORMAT = "gru-onnx-web"
FORMAT_VERSION = 1
#: Frames of the generated reference input (a streaming file runs them one call each).
DEFAULT_FRAMES = DEFAULT_WEB_FRAMES
#: onnxruntime-web's files the bundle's WebAssembly backend loads (entry, its loader, the binary).
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: The bundle's own files, copied from ``gru_onnx/web/assets``.
ASSETS = ("index.html", "gru-stream.js")
#: Names a bundle writes at its top level besides the model and its data files: a model or an
#: external data location that would land on one of them is refused (compared without case,
#: as a case-insensitive file system would).
RESERVED = ("manifest.json", "README.txt", *ASSETS, "ort", "reference")
#: The largest old manifest.json read when deciding whether a folder is a bundle (ours are a few KiB).
MANIFEST_LIMIT = 2**20
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
    #: What the caller should know about how the request was met (frames rounded to the chunk).
    notes: tuple[str, ...] = ()

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
    #: A lone CustomGRU's inputs by role (``input``, ``h0``, ``lengths``) -> the file's name for
    #: each; empty for a whole model.
    roles: dict[str, str]


def _interface(proto: onnx.ModelProto, metadata: Mapping[str, Any]) -> _Interface:
    pairs = state_pairs(metadata)
    state_in = {p.input for p in pairs}
    state_out = {p.output for p in pairs}
    initializers = {t.name for t in proto.graph.initializer}
    graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
    by_name = {i.name: i for i in graph_inputs}
    plain_inputs = [i for i in graph_inputs if i.name not in state_in]
    in_axes = input_time_axes(metadata, {i.name: len(_dims(i)) for i in plain_inputs})
    roles = lone_roles(plain_inputs) if lone_stack(metadata) is not None else {}  # by place, not name
    for role in ("h0", "lengths"):  # [layers, batch, hidden] and [batch]: no time axis, whatever the layout
        if role in roles:
            in_axes[roles[role]] = None
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
    return _Interface(inputs, outputs, states, metadata.get("chunk"), roles)


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
    """Seeded inputs (batch 1, ``frames`` steps) and the rebuilt PyTorch reference's outputs.
    The inputs are told apart by role (:func:`gru_onnx.metadata.lone_roles`), not by name."""
    reference = reference_from_file(proto, metadata)
    generator = torch.Generator().manual_seed(seed)
    dtype = float_type(metadata.get("dtype", "float32")).torch
    role_of = {name: role for role, name in interface.roles.items()}
    args: dict[str, torch.Tensor] = {}
    for info in interface.inputs:
        shape = _shape(info, frames)
        if role_of.get(info["name"]) == "lengths":
            if np.dtype(info["dtype"]).kind not in "iu":
                raise GruOnnxUsageError(f"the lengths input {info['name']!r} is {info['dtype']}, not integers")
            args[info["name"]] = torch.full(shape, frames, dtype=torch.int64)
        else:
            scale = 0.5 if role_of.get(info["name"]) == "h0" else 1.0
            args[info["name"]] = (scale * torch.randn(*shape, generator=generator)).to(dtype)
    by_role = {role: args[name] for role, name in interface.roles.items()}
    with torch.no_grad():
        result = reference(by_role["input"], by_role.get("h0"), by_role.get("lengths"))
    values = [t.numpy() for t in flatten_tensors(result)]
    outputs = dict(zip([o["name"] for o in interface.outputs], values, strict=True))
    dtypes = {info["name"]: info["dtype"] for info in interface.inputs}
    return {n: t.numpy().astype(dtypes[n], copy=False) for n, t in args.items()}, outputs


def _shape(info: Mapping[str, Any], frames: int) -> list[int]:
    """A tensor's shape in the reference: batch 1 for a free axis, ``frames`` on its time axis."""
    shape = [1 if isinstance(d, str) else int(d) for d in info["shape"]]
    if any(d < 0 for d in shape):
        raise GruOnnxUsageError(f"{info['name']!r} has a negative size in its shape {info['shape']}")
    if info["time_axis"] is not None:
        shape[info["time_axis"]] = frames
    return shape


def _fixed_length(interface: _Interface) -> int | None:
    """The file's static sequence length (it runs only that many frames), or None."""
    if interface.chunk is not None:
        return None
    for info in interface.inputs:
        axis = info["time_axis"]
        if axis is not None and isinstance(info["shape"][axis], int):
            return int(info["shape"][axis])
    return None


def _reference_frames(interface: _Interface, requested: int | None, notes: list[str]) -> int:
    """The generated reference's frames: ``requested`` (None: the default), the file's fixed
    length (an explicit other number is refused), rounded up to whole chunks (with a note);
    bounded by :data:`MAX_WEB_FRAMES` and, inputs and outputs together, :data:`WEB_REFERENCE_BUDGET`."""
    fixed = _fixed_length(interface)
    if fixed is not None:
        if requested is not None and requested != fixed:
            raise GruOnnxUsageError(
                f"the file runs exactly {fixed} frames (its sequence length is fixed), so --frames {requested} "
                "cannot be honoured: leave --frames out, or export with a dynamic sequence length"
            )
        frames, why = fixed, "the file's fixed sequence length"
    else:
        frames, why = (DEFAULT_FRAMES, "the default") if requested is None else (requested, "--frames")
    chunk = interface.chunk
    if chunk is not None and frames % chunk:
        rounded = -(-frames // chunk) * chunk
        if requested is not None:
            notes.append(f"--frames {requested} rounded up to {rounded}: the file takes chunks of exactly {chunk}")
        frames, why = rounded, f"frames in whole chunks of {chunk}"
    _bound_reference(frames, _reference_bytes(interface, frames), why)
    return frames


def _reference_bytes(interface: _Interface, frames: int) -> int:
    """Bytes the generated reference's inputs and outputs take (batch 1, ``frames`` steps)."""
    return sum(
        math.prod(_shape(info, frames)) * np.dtype(info["dtype"]).itemsize
        for info in (*interface.inputs, *interface.outputs)
    )


def _bound_reference(frames: int, nbytes: int, why: str) -> None:
    """Refuse a reference the page could not run (frames) or hold (bytes), before it exists."""
    if frames > MAX_WEB_FRAMES:
        raise GruOnnxUsageError(
            f"a reference of {frames} frames ({why}) is over the {MAX_WEB_FRAMES} a web bundle's page runs "
            "(every frame, in the browser)"
        )
    if nbytes > WEB_REFERENCE_BUDGET:
        raise GruOnnxUsageError(
            f"a reference of {frames} frames ({why}) takes about {nbytes / 2**20:.4g} MiB (inputs and outputs), "
            f"over the {WEB_REFERENCE_BUDGET // 2**20} MiB a web bundle's page loads"
            + (": use fewer --frames" if why == "--frames" else "")
        )


def _bound_given(interface: _Interface, arrays: Mapping[str, Any]) -> None:
    """Refuse given reference arrays longer or larger than a bundle's page takes."""
    axes = {i["name"]: i["time_axis"] for i in (*interface.inputs, *interface.outputs)}
    frames, nbytes = 0, 0
    for name, value in arrays.items():
        array = np.asarray(value)
        nbytes += array.nbytes
        axis = axes.get(name)
        if axis is not None and -array.ndim <= axis < array.ndim:
            frames = max(frames, array.shape[axis])
    _bound_reference(frames, nbytes, "the given reference")


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


def _shown(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: as it is, or quoted when it holds a newline or the like."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def _absolute_target(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir`` made absolute: its folder resolved, its own name kept (a symbolic link there
    is looked at, not followed); ``.`` and ``..`` become the folders they name. The name must
    leave room for the temporary names written beside it."""
    given = Path(out_dir)
    if not os.fspath(out_dir):
        raise GruOnnxUsageError("the bundle folder is an empty path")
    try:
        target = given.resolve() if given.name in ("", "..") else given.parent.resolve() / given.name
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise GruOnnxUsageError(f"cannot use {_shown(out_dir)} as the bundle folder: {_reason(exc)}") from None
    if target.parent == target:
        raise GruOnnxUsageError(f"cannot write a bundle over the root folder {target}")
    try:
        limit = os.pathconf(target.parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # AttributeError: no pathconf (Windows)
        limit = 255
    longest = len(os.fsencode(f".{target.name}.{TEMP_MARK}.{2**22}.{'0' * 8}"))
    if longest > limit:
        room = limit - (longest - len(os.fsencode(target.name)))
        raise GruOnnxUsageError(
            f"the bundle folder's name is too long ({len(os.fsencode(target.name))} bytes; at most {room} here, "
            f"leaving room for the temporary folder written beside it): {_shown(given)}"
        )
    return target


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _prepare_target(out_dir: Path, force: bool) -> None:
    """Refuse a target that is not a folder this call may replace: a symbolic link, a file, an
    existing folder without ``force``, or one holding anything a bundle does not write."""
    try:
        mode = out_dir.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot use {_shown(out_dir)} as the bundle folder: {_reason(exc)}") from None
    if stat.S_ISLNK(mode):
        raise GruOnnxUsageError(
            f"{_shown(out_dir)} is a symbolic link; give the folder itself, or a new path (a bundle replaces "
            "its folder, it does not write through links)"
        )
    if not stat.S_ISDIR(mode):
        raise GruOnnxUsageError(f"{_shown(out_dir)} exists and is not a folder")
    if not force:
        raise GruOnnxUsageError(f"{_shown(out_dir)} exists; pass force=True (--force) to replace it")
    try:
        foreign = _foreign_entry(out_dir)
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot read {_shown(out_dir)}: {_reason(exc)}") from None
    if foreign is not None:
        raise GruOnnxUsageError(f"{_shown(out_dir)} {foreign}; refusing to replace it")


def _foreign_entry(folder: Path) -> str | None:
    """Why ``folder`` is not to be replaced (it holds files but no manifest of a bundle, its
    manifest lists a file no bundle writes, or the first entry, depth first by name, that its
    bundle does not write), or None when it is empty or every entry is one its bundle writes: a
    regular file where the old manifest says a file goes, a folder only on the way to one;
    nothing else, no links."""
    entries = sorted(os.listdir(folder))
    if not entries:
        return None
    manifest = _old_manifest(folder)
    if manifest is None:
        return f"holds files that are not a gru-onnx web bundle (no manifest.json of one; {entries[0]!r} among them)"
    files = _bundle_files(folder, manifest)
    if isinstance(files, str):
        return (
            f"is not a gru-onnx web bundle: its manifest.json lists {files!r}, which no bundle writes "
            "(move the folder away, or give a new path)"
        )
    found = _unlisted_entry(folder, files)
    return None if found is None else f"holds {found!r}, which is not part of its gru-onnx web bundle (move it away)"


def _old_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of the bundle in ``folder``: a regular ``manifest.json`` (not a link, at most
    :data:`MANIFEST_LIMIT` bytes) holding one JSON object of our format, with every entry a
    bundle writes (a stray ``{"format": "gru-onnx-web"}`` is not one); else None."""
    path = folder / "manifest.json"
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MANIFEST_LIMIT:
            return None
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    kinds = {"version": int, "name": str, "model": str, "data": list, "inputs": list, "outputs": list,
             "states": list, "reference": dict}  # fmt: skip
    return manifest if all(isinstance(manifest.get(k), t) for k, t in kinds.items()) else None


def _relative_file(value: Any) -> str | None:
    """``value`` as a plain relative file path inside a folder (no ``..``, not absolute), or None."""
    if not isinstance(value, str) or not value or "\\" in value:
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or not path.parts or any(p in ("..", ".") for p in path.parts):
        return None
    return path.as_posix()


#: The reference files a bundle writes (:func:`_write_arrays`).
_REFERENCE_FILE = re.compile(r"reference/(input|output)[0-9]+\.bin")


def _bundle_model(name: str) -> str:
    """The model's file name in a bundle: the source's, with ``.onnx`` added when it lacks it
    (so that only ``*.onnx`` files are ever a bundle's model)."""
    return name if name.lower().endswith(".onnx") else f"{name}.onnx"


def _model_locations(folder: Path, model: str) -> set[str] | None:
    """The external data locations the old bundle's model names (inside ``folder``), ``set()``
    when it is gone, or None when it is no ONNX model (not a regular file, unreadable)."""
    path = folder / model
    try:
        info = path.lstat()
    except FileNotFoundError:
        return set()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
        found = data_files(proto, path)
    except Exception:
        return None
    return {f.location for f in found if f.problem != "outside"}


def _bundle_files(folder: Path, manifest: Mapping[str, Any]) -> set[str] | str:
    """The files (relative paths) a bundle with this manifest holds: its own, onnxruntime-web's,
    and the model, data and reference files the manifest lists; or the first listed entry no
    bundle writes (a model that is no top-level ``*.onnx`` ONNX file, a data file its model does
    not name, a reference file under another name): such a manifest is not a bundle's."""
    files = {"manifest.json", "README.txt", *ASSETS, *(f"ort/{f}" for f in ORT_FILES)}
    raw_model = manifest.get("model")
    model = _relative_file(raw_model)
    if model is None or "/" in model or _bundle_model(model) != model:
        return str(raw_model)
    locations = _model_locations(folder, model)
    if locations is None:
        return model
    files.add(model)
    for entry in manifest.get("data", []):
        if not isinstance(entry, dict):
            return str(entry)
        raw = entry.get("file")
        found = _relative_file(raw)
        if found is None or found not in locations or entry.get("location") != raw:
            return str(raw)
        files.add(found)
    reference = manifest.get("reference", {})
    for kind in ("inputs", "outputs"):
        listed = reference.get(kind, [])
        for entry in listed if isinstance(listed, list) else [listed]:
            raw = entry.get("file") if isinstance(entry, dict) else entry
            if not isinstance(raw, str) or _REFERENCE_FILE.fullmatch(raw) is None:
                return str(raw)
            files.add(raw)
    return files


def _unlisted_entry(folder: Path, files: set[str]) -> str | None:
    """The first entry under ``folder`` (relative, depth first, by name) that is not one of
    ``files`` (regular files) or a folder on the way to one; a folder is named with a slash."""
    folders = {str(PurePosixPath(f).parent) for f in files} - {"."}
    folders |= {str(PurePosixPath(f).parents[i]) for f in folders for i in range(len(PurePosixPath(f).parts) - 1)}

    def walk(where: Path, prefix: str) -> str | None:
        for name in sorted(os.listdir(where)):
            relative = f"{prefix}{name}"
            mode = (where / name).lstat().st_mode
            if stat.S_ISDIR(mode) and relative in folders:
                found = walk(where / name, f"{relative}/")
                if found is not None:
                    return found
            elif not (stat.S_ISREG(mode) and relative in files):
                return f"{relative}/" if stat.S_ISDIR(mode) else relative
        return None

    return walk(folder, "")


def _refuse_reserved(source: Path, data: Sequence[DataFile]) -> None:
    """Refuse a model whose own name, or one of whose external data locations, would land on a
    file or folder the bundle writes itself (one line, before anything is written)."""
    reserved = {name.lower(): name for name in RESERVED}
    if source.name.lower() in reserved:
        raise GruOnnxUsageError(
            f"the model's file name {source.name!r} is the bundle's own {reserved[source.name.lower()]!r}: "
            "copy the model under another name (e.g. model.onnx) and package that"
        )
    for found in data:
        first = PurePosixPath(found.location).parts[0] if PurePosixPath(found.location).parts else ""
        if first.lower() in reserved:
            raise GruOnnxUsageError(
                f"{_shown(source)}: external data {found.location!r} would land on the bundle's own "
                f"{reserved[first.lower()]!r}: save the model with another location for its external data"
            )


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
    ``options.frames`` seeded random frames run through its rebuilt PyTorch reference (None:
    :data:`DEFAULT_FRAMES`, or the file's fixed length; a number it cannot run is refused, one
    that is no whole number of a fixed chunk is rounded up, with a note). A reference is at most
    :data:`~gru_onnx.options.MAX_WEB_FRAMES` frames and
    :data:`~gru_onnx.options.WEB_REFERENCE_BUDGET` bytes (checked before it is computed).
    ``options.atol``/``rtol`` set the page's verdict (the check's defaults for the file's dtype).
    An existing ``out_dir`` is replaced only with ``options.force``, and only when it is empty or
    every entry in it is one its bundle writes; a symbolic link is refused. The model's name and
    its external data locations must not be one of the bundle's own (:data:`RESERVED`).
    ``cache``: the npm cache of ``gru-onnx setup web`` (None: the default one).
    """
    source = Path(path)
    name, force, seed, atol, rtol = options.name, options.force, options.seed, options.atol, options.rtol
    if problem := package_problem("onnxruntime-web", cache):
        raise GruOnnxUsageError(problem)
    if inputs is None and outputs is not None:
        raise GruOnnxUsageError("reference outputs given without their inputs: pass inputs= too")
    if inputs is not None and options.frames is not None:
        raise GruOnnxUsageError("frames sets the length of a generated reference; given inputs have their own")
    target = _absolute_target(out_dir)
    _prepare_target(target, force)
    _refuse_reserved(source, ())
    data = validate_data_files(load_model(source, weights="none"), source)  # before weights are read inline
    _refuse_reserved(source, data)
    proto = load_model(source)
    metadata = read_metadata(proto)
    interface = _interface(proto, metadata)
    notes: list[str] = []
    if inputs is None:
        if not interface.roles:
            where = ", ".join(repr(s["path"]) for s in metadata.get("stacks", [])) or "none"
            raise GruOnnxUsageError(
                f"the file holds a whole model (CustomGRU at {where}): pass its reference inputs and PyTorch outputs "
                "(inputs=..., outputs=...; gru_onnx.web.bundle.torch_reference computes them)"
            )
        frames = _reference_frames(interface, options.frames, notes)
        inputs, outputs = _lone_reference(proto, metadata, interface, frames, seed)
        described = "PyTorch reference rebuilt from the file's weights"
    elif outputs is None:
        if not interface.roles:
            raise GruOnnxUsageError("pass the PyTorch outputs for the reference inputs too (outputs=...)")
        _bound_given(interface, inputs)
        outputs = torch_reference(reference_from_file(proto, metadata), inputs, source)
        described = "PyTorch reference rebuilt from the file's weights, on the given inputs"
    else:
        described = "PyTorch outputs given with the bundle"
    frames = _check_reference(interface, inputs, outputs)
    _bound_given(interface, {**inputs, **outputs})
    step = _step(interface, frames)
    dtype = str(metadata.get("dtype", "float32"))
    default_atol, default_rtol = _default_tolerances(dtype)
    name = name or source.stem

    try:
        replaces_cwd = Path.cwd().is_relative_to(target)
    except OSError:  # the working folder is gone already
        replaces_cwd = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        work = temp_name(target)
        work.mkdir()
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot write into {_shown(target.parent)}: {_reason(exc)}") from None
    try:
        model_name = _bundle_model(source.name)
        shutil.copyfile(source, work / model_name)
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
            "model": model_name,
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
        readme = README.format(name=name, model=model_name, version=__version__, folder=target, first=first)
        (work / "README.txt").write_text(readme)
        _replace(work, target, force)
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot write the bundle beside {_shown(target)}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if replaces_cwd:
        notes.append(f"the bundle replaced the working folder {_shown(target)}: `cd \"$PWD\"` to see it")
    files = tuple(sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()))
    size = sum((target / f).stat().st_size for f in files)
    return WebBundle(target, files, size, manifest, tuple(notes))


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


def _replace(work: Path, target: Path, force: bool) -> None:
    """Move the finished folder ``work`` to ``target``; an old bundle there is looked at again
    (what is there now, not what was there when the run began), moved aside, and removed only
    once the new one is in place (put back if it cannot be)."""
    _prepare_target(target, force)
    old = None
    try:
        if os.path.lexists(target):
            old = temp_name(target)
            target.rename(old)
        try:
            work.rename(target)
        except OSError:
            if old is not None:
                old.rename(target)
            raise
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot move the bundle into place at {_shown(target)}: {_reason(exc)}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
