"""Writing exported files (atomically, inline or with ONNX external data) and checking such pairs before reading.

Protobuf cannot hold a message of 2 GiB or more, so a model whose weights reach that is written as
two files side by side: ``model.onnx`` (the graph, small tensors inline) and one data file
``model.onnx.<sha256[:16]>.data`` holding every tensor larger than :data:`INLINE_TENSOR_BYTES`, its
name the first 16 hex digits of the SHA-256 of its own bytes. The model records the data file's
name as a relative ``location``, so the pair moves together.

The write is ordered so that no reader ever sees a half-written pair: the data file is written
under a temporary name, hashed and renamed to its final name (a new name, so an existing pair is
untouched), then the model is written to a temporary file, checked by the full ONNX checker on
its path, and renamed over ``model.onnx`` last. Only then are the data files the previous
``model.onnx`` named (and named the same way) removed. Equal exports give equal bytes in both
files: the data name follows the content, and the model follows the data name.

Reading goes the other way round: :func:`data_files` describes every location a model names
(missing, truncated, outside the model's folder directly or through a symbolic link) without
opening anything outside the folder, and :func:`validate_data_files` turns any problem into a
one-line :class:`~gru_onnx.errors.GruOnnxUsageError` before a runtime or ONNX loader reads a byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
import onnx_ir as ir
from onnx.external_data_helper import ExternalDataInfo

from gru_onnx import files, irversion
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.protos import all_tensors
from gru_onnx.wellformed import tensor_nbytes

#: Protobuf's limit on one serialized message (2 GiB); a model this large must use external data.
PROTOBUF_LIMIT = 2**31
#: Tensors larger than this many bytes go to the data file (onnx_ir's threshold); the others
#: stay in the model, so its constants stay readable by tools that do not follow locations.
INLINE_TENSOR_BYTES = 1024
#: Room left for everything that is not a tensor (nodes, names, types, metadata) when deciding
#: automatically: a generous bound per node plus a fixed part.
_NODE_BYTES = 1024
_FIXED_BYTES = 2**20

_HEX = 16  # hex digits of the SHA-256 in a data file's name


def data_file_name(model_name: str, digest: str) -> str:
    """The data file name of model file ``model_name`` whose data has SHA-256 ``digest`` (hex)."""
    return f"{model_name}.{digest[:_HEX]}.data"


def _is_own_data_file(model_name: str, location: str) -> bool:
    """True for a location named the way :func:`save_model` names data files of ``model_name``."""
    return re.fullmatch(re.escape(model_name) + rf"\.[0-9a-f]{{{_HEX}}}\.data", location) is not None


# --------------------------------------------------------------------------------------------
# Writing


def writable_target(f: str | os.PathLike[str], *, create_parents: bool = True) -> Path:
    """``f`` as a path, or a one-line usage error when it cannot be written (an empty path, a
    folder, a parent that is a file or not writable, or missing when ``create_parents`` is off);
    checked before any work, creating nothing."""
    if not os.fspath(f):
        raise GruOnnxUsageError("the output path is empty")
    path = Path(f)
    if path.is_dir():
        raise GruOnnxUsageError(f"the output path {path} is a directory")
    if not create_parents and not path.absolute().parent.is_dir():
        raise GruOnnxUsageError(f"cannot write {path}: its folder {path.parent} does not exist")
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise GruOnnxUsageError(f"cannot create {path.parent}: {existing} is not a directory")
    if existing == path.absolute().parent:
        try:  # the same kind of temporary file the final write uses
            with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".probe", dir=existing):
                pass
        except OSError as exc:
            raise GruOnnxUsageError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    elif not os.access(existing, os.W_OK):
        raise GruOnnxUsageError(f"cannot create {path.parent}: {existing} is not writable")
    return path


def estimated_size(model: ir.Model) -> int:
    """An upper estimate of ``model``'s serialized size in bytes, from tensor sizes (no data is
    read or copied: torch tensors behind the initializers are only asked for their size)."""
    total = _FIXED_BYTES
    for graph in model.graphs():
        total += sum(v.const_value.nbytes for v in graph.initializers.values() if v.const_value is not None)
        for node in graph:
            total += _NODE_BYTES
            for attr in node.attributes.values():
                if attr.type == ir.AttributeType.TENSOR:
                    total += attr.as_tensor().nbytes
    return total


def needs_external_data(model: ir.Model) -> bool:
    """True when ``model`` would not fit one protobuf file (see :data:`PROTOBUF_LIMIT`)."""
    return estimated_size(model) >= PROTOBUF_LIMIT


def save_model(
    model: ir.Model,
    path: Path,
    *,
    external_data: bool | None = None,
    check: bool = True,
    ir_version: int | None = None,
) -> Path | None:
    """Write ``model`` to ``path`` atomically; with external data (``None``: when it needs it)
    the tensors go to a data file beside it. Returns that data file's path, or None.

    With ``check`` the full ONNX checker runs first (on the proto inline, on the written file
    with external data); its errors propagate. ``model`` is left as it was given. An unwritable
    destination is a one-line :class:`GruOnnxUsageError`.

    The file is stamped with the lowest IR version its content needs, or ``ir_version`` (refused
    when lower than that; see :mod:`gru_onnx.irversion`).
    """
    return stage_model(model, path, external_data=external_data, check=check, ir_version=ir_version).publish()


def stage_model(
    model: ir.Model,
    path: Path,
    *,
    external_data: bool | None = None,
    check: bool = True,
    ir_version: int | None = None,
) -> StagedModel:
    """Write ``model`` for ``path`` without touching ``path``: the model goes to a temporary name
    beside it (its data file, if any, under its final name), ready to be checked by a runtime and
    then published over ``path`` or set aside (:class:`StagedModel`). See :func:`save_model`."""
    if external_data is None:
        external_data = needs_external_data(model)
    elif not external_data and (size := estimated_size(model)) >= PROTOBUF_LIMIT:
        raise GruOnnxUsageError(
            f"the model takes about {size / 2**30:.1f} GiB, over protobuf's 2 GiB limit for one file: "
            "export it with external data (external_data=True, or None to decide automatically)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(path)
        if external_data:
            return _stage_with_data(model, path, check, ir_version)
        proto = ir.to_proto(model)
        irversion.stamp(proto, ir_version)  # IR: the lowest the content needs (gru_onnx.irversion)
        if check:
            onnx.checker.check_model(proto, full_check=True)
        candidate = files.temp_name(path, ".onnx")
        _write_proto(proto, candidate)
        return StagedModel(path, candidate, None, False)
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_proto(proto: onnx.ModelProto, target: Path) -> None:
    """Serialize ``proto`` to ``target`` (a fresh temporary name) with the usual permissions."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, files._mode())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(proto.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise


def _stage_with_data(model: ir.Model, path: Path, check: bool, ir_version: int | None) -> StagedModel:
    """Data first (temporary name, hashed, renamed to its final name), then the model at a
    temporary name beside it; see the module docstring."""
    folder = path.parent
    values = [v for graph in model.graphs() for v in graph.initializers.values()]
    originals = [v.const_value for v in values]
    created: Path | None = None
    try:
        with files.temporary(path) as staging:
            # onnx_ir writes each tensor straight from its buffer (torch tensors included).
            ir.external_data.unload_from_model(
                model, folder, staging.name, size_threshold_bytes=INLINE_TENSOR_BYTES
            )
            with open(staging, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            data_path = folder / data_file_name(path.name, digest)
            existed = data_path.exists()  # the same bytes (same name), perhaps the current pair's
            os.replace(staging, data_path)
            if not existed:
                created = data_path
        proto = ir.to_proto(model)  # small now: the tensors are references to the data file
        _point_to(proto, data_path.name)
        irversion.stamp(proto, ir_version)  # IR: the lowest the content needs (gru_onnx.irversion)
        candidate = files.temp_name(path, ".onnx")
        _write_proto(proto, candidate)
        try:
            if check:
                onnx.checker.check_model(str(candidate), full_check=True)
        except BaseException:
            candidate.unlink(missing_ok=True)
            raise
        staged = StagedModel(path, candidate, data_path, created is not None)
        created = None
        return staged
    finally:
        for value, tensor in zip(values, originals, strict=True):
            value.const_value = tensor
        if created is not None:
            with contextlib.suppress(FileNotFoundError):
                created.unlink()


def _point_to(proto: onnx.ModelProto, location: str) -> None:
    """Every external tensor of ``proto`` names ``location`` as its data file."""
    for tensor in all_tensors(proto):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location


@dataclass
class StagedModel:
    """A model written beside its target under a temporary name (``candidate``, which runtimes
    can load: its data file lies beside it under its final name), not yet visible at ``path``.

    :meth:`publish` renames it over ``path``; :meth:`set_aside` moves the pair to another name
    (``NAME.failed.onnx``) and leaves ``path`` as it was; :meth:`discard` removes it.
    """

    path: Path
    candidate: Path
    data_path: Path | None
    created_data: bool  # the data file is new (not one a current pair already names)

    def publish(self) -> Path | None:
        """Rename the candidate over ``path``, then remove the data files the replaced model named."""
        stale = [name for name in _previous_data_files(self.path)
                 if self.data_path is None or name != self.data_path.name]  # fmt: skip
        os.replace(self.candidate, self.path)
        for name in stale:
            with contextlib.suppress(OSError):
                (self.path.parent / name).unlink()
        return self.data_path

    def set_aside(self, other: Path) -> tuple[Path, Path | None]:
        """Move the pair to ``other`` (its data file renamed after it), ``path`` untouched."""
        if self.data_path is None:
            StagedModel(other, self.candidate, None, False).publish()
            return other, None
        data = other.parent / data_file_name(other.name, self.data_path.name.split(".")[-2])
        if data != self.data_path:
            if data.exists():
                data.unlink()
            if self.created_data:
                os.replace(self.data_path, data)
            else:  # the current pair's data file: keep it, give the set-aside pair a copy
                shutil.copyfile(self.data_path, data)
        proto = onnx.load(str(self.candidate), load_external_data=False)
        _point_to(proto, data.name)
        moved = files.temp_name(other, ".onnx")
        _write_proto(proto, moved)
        self.candidate.unlink(missing_ok=True)
        StagedModel(other, moved, data, True).publish()
        return other, data

    def discard(self) -> None:
        """Remove the candidate (and its data file when it was new)."""
        self.candidate.unlink(missing_ok=True)
        if self.data_path is not None and self.created_data:
            self.data_path.unlink(missing_ok=True)


def remove_orphans(path: Path) -> list[Path]:
    """Remove what a killed writer left for ``path``: temporaries of dead processes and data
    files named for ``path`` that the model at ``path`` does not name, unless a live writer
    (another process) is still at work on ``path``."""
    removed = files.remove_stale_temps(path)
    if any(pid != os.getpid() for pid in files.live_writers(path)):
        return removed
    named = set(_previous_data_files(path))
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if _is_own_data_file(path.name, entry.name) and entry.name not in named and entry.is_file():
                entry.unlink()
                removed.append(entry)
    return removed


def _previous_data_files(path: Path) -> list[str]:
    """Data files (named by :func:`data_file_name`) of the model now at ``path``, if any."""
    if not path.is_file():
        return []
    try:
        locations = set(_locations(onnx.load(str(path), load_external_data=False)))
    except Exception:  # not an ONNX file, or malformed entries: it names no data files of ours
        return []
    return sorted(loc for loc in locations if _is_own_data_file(path.name, loc))


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class DataFile:
    """One external data file a model names, as found beside the model (nothing outside read).

    ``problem`` is None when the file is there and long enough for every tensor stored in it;
    else ``"missing"``, ``"truncated"``, ``"not a file"``, ``"outside"`` (the location leaves
    the model's folder), ``"symlink"`` (it leaves it through a symbolic link) or ``"link"``
    (a symbolic link that stays inside: ONNX refuses those too) or ``"hard links"`` (the file has
    more than one: ONNX refuses those as a possible hard-link attack).
    """

    location: str
    path: Path
    needed: int  # bytes the model's tensors need from it (largest offset + length)
    size: int | None = None  # None when missing, outside or not a file
    problem: str | None = None

    def describe(self, model: Path) -> str:
        """One line saying what is wrong with this file (for the error message)."""
        where = f"{model}: external data {self.location!r}"
        if self.problem == "outside":
            return f"{where} points outside the model's folder; refusing to read it"
        if self.problem == "symlink":
            return f"{where} leads outside the model's folder through a symbolic link; refusing to read it"
        if self.problem == "link":
            return f"{where} is a symbolic link, and ONNX reads only regular files: put the file itself there"
        if self.problem == "missing":
            return f"{where} is missing (it must lie beside the model, in {model.parent}/)"
        if self.problem == "not a file":
            return f"{where} is not a regular file"
        if self.problem == "truncated":
            return f"{where} is truncated: {self.size} bytes, the model needs {self.needed}"
        if self.problem == "hard links":
            return (
                f"{where} has more than one hard link, which ONNX refuses (a hard link could expose another "
                "file): give the pair its own copy"
            )
        return f"{where}: {self.problem}"


def _locations(model: onnx.ModelProto) -> Iterator[str]:
    for tensor in all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            yield ExternalDataInfo(tensor).location


def _location_problem(folder: Path, location: str) -> str | None:
    """``"outside"`` when ``location`` leaves ``folder`` by its text (absolute, ``..``),
    ``"symlink"`` when it does through a symbolic link, ``"link"`` when it goes through one that
    stays inside (ONNX reads only regular files), else None. Only links inside ``folder`` are
    looked at, and only their targets' names: nothing outside it is opened."""
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if not location or posix.is_absolute() or windows.is_absolute() or windows.drive or location.startswith("\\"):
        return "outside"
    if ".." in posix.parts or ".." in windows.parts:
        return "outside"
    linked = any(folder.joinpath(*posix.parts[: i + 1]).is_symlink() for i in range(len(posix.parts)))
    if not linked:
        return None
    real_folder = os.path.realpath(folder)
    inside = os.path.commonpath([real_folder, os.path.realpath(folder / location)]) == real_folder
    return "link" if inside else "symlink"


def data_files(model: onnx.ModelProto, path: str | os.PathLike[str]) -> list[DataFile]:
    """Every external data file ``model`` (loaded from ``path`` without its data) names, with
    its size and problem if any; locations outside the model's folder are not opened."""
    path = Path(path)
    folder = path.parent
    needed: dict[str, int] = {}
    to_end: dict[str, list[tuple[str, int, int]]] = {}  # location -> tensors without a length
    for tensor in all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        try:
            info = ExternalDataInfo(tensor)
        except ValueError as exc:
            raise GruOnnxUsageError(f"{path}: tensor {tensor.name!r} has malformed external data ({exc})") from None
        offset, nbytes = info.offset or 0, tensor_nbytes(tensor) or 0
        length = info.length if info.length is not None else nbytes
        needed[info.location] = max(needed.get(info.location, 0), offset + length)
        if info.length is None:  # its data runs to the end of the file: the file's size says how long
            to_end.setdefault(info.location, []).append((tensor.name, offset, nbytes))
    found = []
    for location, end in sorted(needed.items()):
        target = folder / location
        problem = _location_problem(folder, location)
        size = None
        if problem is None:
            if not target.exists():
                problem = "missing"
            elif not target.is_file():
                problem = "not a file"
            else:
                info = target.stat()
                size = info.st_size
                problem = "truncated" if size < end else "hard links" if info.st_nlink > 1 else None
                for name, offset, nbytes in to_end.get(location, []):
                    if problem is None and size - offset != nbytes:
                        raise GruOnnxUsageError(
                            f"{path}: tensor {name!r} has no external length, so its data runs from byte {offset} "
                            f"to the end of {location!r}: {size - offset} bytes; its dims and type need {nbytes}: "
                            "its data does not match its dims"
                        )
        found.append(DataFile(location, target, end, size, problem))
    return found


def validate_data_files(
    model: onnx.ModelProto, path: str | os.PathLike[str], *, allow: Iterable[str] = ()
) -> list[DataFile]:
    """:func:`data_files`, refusing the first problem not in ``allow`` with a one-line
    :class:`GruOnnxUsageError` (call before any runtime or ONNX loader reads the data)."""
    found = data_files(model, path)
    allowed = set(allow)
    for data in found:
        if data.problem is not None and data.problem not in allowed:
            raise GruOnnxUsageError(data.describe(Path(path)))
    return found


def load_external_tensors(model: onnx.ModelProto, path: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Read the external data of the initializers called ``names`` into ``model`` (in place),
    leaving every other tensor on disk. Validate the locations first."""
    wanted = set(names)
    folder = str(Path(path).parent)
    for tensor in all_tensors(model):
        if tensor.name in wanted and tensor.data_location == onnx.TensorProto.EXTERNAL:
            onnx.external_data_helper.load_external_data_for_tensor(tensor, folder)
