"""onnxruntime-node (ONNX Runtime's Node.js binding, CPU execution provider) in one Node.js process.

The process (``gru_onnx/web/assets/node_driver.mjs``) starts when the runner opens and holds
one session until it closes; each run sends the feeds and gets the outputs back as bytes with a
small JSON header (:mod:`gru_onnx.web.wire`) over its stdin and stdout. onnxruntime-node comes
from the npm cache ``gru-onnx setup web`` fills (:mod:`gru_onnx.web.setup`). Opt-in: not part
of ``--provider all``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from gru_onnx.runners.base import Runner, RuntimeUnavailable
from gru_onnx.web import wire
from gru_onnx.web.setup import cache_dir, find_node, node_problem


def node_runner_problem(cache: str | os.PathLike[str] | None = None) -> str | None:
    """Why the Node.js runner cannot run here (checked without a file), or None."""
    problem = node_problem(cache)
    return f"onnxruntime-node not available: {problem}" if problem else None


class NodeRunner(Runner):
    """onnxruntime-node in a Node.js child process; ``threads`` sets its intra-op threads."""

    name = "onnxruntime-node"
    times_inside = True  # timed in Node.js (performance.now), not across the pipe

    def __init__(
        self, path: str | os.PathLike[str], *, threads: int | None = None, cache: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(path)
        self.threads = threads
        self.cache = cache
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self.output_names: list[str] = []

    def _open(self) -> None:
        if problem := node_runner_problem(self.cache):
            raise RuntimeUnavailable(problem)
        driver = resources.files("gru_onnx.web") / "assets" / "node_driver.mjs"
        self._process = subprocess.Popen(
            [str(find_node()), str(driver), str(cache_dir(self.cache))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            reply, _ = self._call({"op": "open", "path": str(self.path.resolve()), "threads": self.threads})
        except Exception:
            self._stop()
            raise
        self.output_names = list(reply["outputs"])
        versions = reply.get("versions", {})
        threads = f"{self.threads}" if self.threads else f"ONNX Runtime's default ({reply.get('cores')} cores)"
        self.notes.append(
            f"onnxruntime-node {versions.get('node', '?')}, CPU execution provider, Node.js {reply.get('node')}, "
            f"intra-op threads {threads}"
        )

    def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self._stderr.append(text)

    def _call(
        self, header: dict[str, Any], tensors: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return self._send(wire.encode(header, tensors))

    def _send(self, request: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Send one encoded message and read the answer (a RuntimeError when Node.js says no or died)."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(request)
            process.stdin.flush()
            message = wire.read(process.stdout)
        except (BrokenPipeError, OSError):
            message = None
        if message is None:
            process.wait(timeout=10)
            last = self._stderr[-1] if self._stderr else "no message"
            raise RuntimeError(f"onnxruntime-node: the Node.js process exited (code {process.returncode}): {last}")
        reply, outputs = message
        if not reply.get("ok"):
            raise RuntimeError(f"onnxruntime-node: {reply.get('error')}")
        return reply, outputs

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, outputs = self._call({"op": "run"}, feeds)
        return [outputs[name] for name in self.output_names]

    def _timed(self, feeds: dict[str, np.ndarray]) -> Callable[[], float]:
        message = wire.encode({"op": "time"}, feeds)  # encoded once: the call sends bytes only
        return lambda: float(self._send(message)[0]["seconds"])

    def _close(self) -> None:
        # A runner whose opening failed (or was interrupted) stops the process without a round trip.
        if self._is_open and self._process is not None and self._process.poll() is None:
            with contextlib.suppress(Exception):  # the process is going away either way
                self._call({"op": "close"})
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
