"""Files gru-onnx reads and writes: regular files only, one atomic writer, no output over an input.

- Reading: :func:`regular_file` refuses what is not a regular file (a FIFO would block
  forever, ``/dev/zero`` reads until memory runs out) before anything opens it.
- Writing: every file the tool writes (model, data file, report, plot, JSON, Triton config)
  goes through a temporary file beside its target, named ``.NAME.gru-onnx-tmp.PID.XXXX``, and
  an ``os.replace`` onto the target: readers never see half a file, and a symbolic link at the
  target is replaced, never followed. A later write to the same target removes temporaries whose
  process is gone (a run killed with ``kill -9``), never a live writer's.
- Aliasing: :func:`refuse_aliases` refuses an output that is an input (the same path, a hard
  link, a symbolic link to it) before any work.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from gru_onnx.errors import GruOnnxUsageError

#: The mark every temporary name carries, between the target's name and the writer's pid.
TEMP_MARK = "gru-onnx-tmp"


def regular_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` when it is a regular file (a symbolic link to one is fine); else a one-line usage
    error saying what it is. Nothing is opened."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise GruOnnxUsageError(f"no such file: {path}") from None
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return path
    kind = (
        "a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
        else "not a regular file"
    )  # fmt: skip
    raise GruOnnxUsageError(f"{what} {path} is {kind}; gru-onnx reads regular files only")


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are the same file (one path, a hard link, a symbolic link)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


Named = Iterable[tuple[str, "str | os.PathLike[str] | None"]]


def refuse_aliases(outputs: Named, inputs: Named) -> None:
    """Refuse (usage error) an output that is one of the inputs, or another output: the same path,
    a hard link, or a symbolic link to it. Pairs are ``(what, path)``; None paths are skipped."""
    ins = [(what, Path(p)) for what, p in inputs if p is not None]
    outs = [(what, Path(p)) for what, p in outputs if p is not None]
    for i, (what, out) in enumerate(outs):
        for source, path in ins:
            if _same(out, path):
                raise GruOnnxUsageError(f"the {what} {out} is the {source} {path}: it would be destroyed; "
                                        "write the output elsewhere")  # fmt: skip
        for other, path in outs[i + 1 :]:
            if _same(out, path):
                raise GruOnnxUsageError(f"the {what} and the {other} are the same file ({out})")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def temp_name(target: Path, suffix: str = "") -> Path:
    """A fresh temporary name beside ``target``, carrying this process's id (and ``suffix``:
    ``.onnx`` keeps a model recognisable to runtimes that look at the extension)."""
    return target.with_name(f".{target.name}.{TEMP_MARK}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


_TEMP = re.compile(rf"\.(?P<name>.+)\.{TEMP_MARK}\.(?P<pid>\d+)\.[0-9a-f]+(\..*)?")


def live_writers(target: Path) -> list[int]:
    """Ids of live processes with temporaries for ``target`` in its folder (this one included)."""
    pids = []
    for entry in _temps(target):
        pid = int(_TEMP.fullmatch(entry.name).group("pid"))  # type: ignore[union-attr]
        if _pid_alive(pid):
            pids.append(pid)
    return pids


def _temps(target: Path) -> Iterator[Path]:
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}.{TEMP_MARK}."
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _TEMP.fullmatch(entry.name)
            if entry.name.startswith(prefix) and match and match.group("name") == target.name:
                yield entry


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temporaries for ``target`` left by processes that are gone; returns what was removed."""
    removed = []
    for entry in _temps(target):
        pid = int(_TEMP.fullmatch(entry.name).group("pid"))  # type: ignore[union-attr]
        if pid == os.getpid() or _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _mode() -> int:
    """0666 less the umask: the permissions a plain ``open(..., "w")`` gives (not mkstemp's 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def temporary(target: Path) -> Iterator[Path]:
    """A temporary file path beside ``target`` (created empty, usual permissions); removed
    afterwards unless it was renamed away. Stale temporaries of dead writers go first."""
    remove_stale_temps(target)
    tmp = temp_name(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode())
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write(target: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``target`` through a temporary file and one rename: never half a file,
    and a symbolic link at ``target`` is replaced, not followed. Folders must exist."""
    target = Path(target)
    if not target.absolute().parent.is_dir():
        raise GruOnnxUsageError(f"cannot write {target}: its folder {target.parent} does not exist")
    payload = data.encode() if isinstance(data, str) else data
    try:
        with temporary(target) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
    except OSError as exc:
        raise GruOnnxUsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
