"""The runner interface: open a file on a runtime, run feeds, close; time a call. A context manager."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from gru_onnx.errors import GruOnnxUsageError


class RuntimeUnavailable(Exception):
    """The runtime is not installed, has no device, or silently fell back to another one."""


class Runner(ABC):
    """Base class: subclasses implement ``_open`` and ``_run`` (and ``_close`` if needed).

    ``notes`` collects what a reader of the report should know about how the run was done
    (precision pinned, TF32 off, nodes that ran on another device).
    """

    name: str = "runner"
    #: True when the call :meth:`timed` returns measures itself inside the runtime and returns
    #: the seconds of one run (a runtime in another process, where the round trip is not its cost)
    times_inside: bool = False

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads  # intra-op threads (None: the runtime's default)
        self.notes: list[str] = []
        self._is_open = False
        self._closed = False

    @abstractmethod
    def _open(self) -> None:
        """Load the file; raise RuntimeUnavailable when the runtime or device is missing."""

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run one set of inputs; return the outputs in the graph's output order."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime's resources (optional)."""

    def _timed(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A call running ``feeds`` once with as little around it as the runtime allows."""
        return lambda: self._run(feeds)

    def io_signature(self) -> tuple[tuple[tuple[str, str, tuple[Any, ...]], ...], tuple[str, ...]] | None:
        """The opened file's interface as the runtime reads it: its inputs as ``(name, type,
        dims)`` (type as ONNX Runtime writes it, ``tensor(float)``; dims a size, an axis name or
        None) and its output names, in graph order; None where the runtime does not say."""
        return None

    def open(self) -> Runner:
        """Load the file on the runtime (once); RuntimeUnavailable when it cannot run here. An
        ``_open`` that fails partway is followed by ``_close``, which must accept a partial state."""
        if self._closed:
            raise GruOnnxUsageError(f"{self.name}: the runner was closed; make a new one")
        if not self._is_open:
            try:
                self._open()
            except BaseException:
                with contextlib.suppress(Exception):  # what it held so far (a process, a page, an env var)
                    self._close()
                raise
            self._is_open = True
        return self

    def _require_open(self, what: str) -> None:
        if not self._is_open:
            state = "after close()" if self._closed else "before open()"
            raise GruOnnxUsageError(f"{self.name}: {what} {state}")

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run one set of inputs; the outputs in the graph's output order."""
        self._require_open("run()")
        return self._run(feeds)

    def timed(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """The timing mode: a call that runs ``feeds`` once, for a benchmark to time round by round
        (with :attr:`times_inside`, the call returns the seconds the runtime measured)."""
        self._require_open("timed()")
        return self._timed(feeds)

    def close(self) -> None:
        """Release the runtime; the runner cannot be opened again."""
        if self._is_open:
            self._close()
            self._is_open = False
        self._closed = True

    def __enter__(self) -> Runner:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Capture what native libraries print to stdout/stderr (file descriptors 1 and 2).

    Runtimes report missing CUDA libraries by printing; the lines are kept for the one-line
    reason in the report instead of reaching the user's terminal. A crash inside still shows:
    Python's fault handler writes to the real stderr meanwhile.
    """
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    real_stderr = os.fdopen(os.dup(saved[1]), "w")
    was_enabled = faulthandler.is_enabled()
    with tempfile.TemporaryFile(mode="w+b") as sink, real_stderr:
        try:
            faulthandler.enable(file=real_stderr)
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield lines
        finally:
            faulthandler.disable()
            if was_enabled:
                faulthandler.enable()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())
