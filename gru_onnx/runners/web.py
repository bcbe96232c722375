"""onnxruntime-web in headless Chromium: the WebAssembly backend, or WebGPU where the browser has it.

Opening starts a localhost server (:mod:`gru_onnx.web.serve`, cross-origin isolated so
onnxruntime-web may use threads) serving the model, its external data file, onnxruntime-web's
dist folder from the npm cache (``gru-onnx setup web``) and the runner page
(``gru_onnx/web/assets/runner.mjs``), and one page in the shared browser
(:mod:`gru_onnx.web.browser`) that loads the model once. Each run hands the page the feeds as one
message of bytes (:mod:`gru_onnx.web.wire`) and gets the outputs back as one (base64 on the way
back: Playwright returns only JSON values).
``backend="webgpu"`` needs a WebGPU adapter; without one the runner is unavailable (a skip).
Opt-in: not part of ``--provider all``. Use a runner from the thread that opened it.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import os
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import onnx

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.runners.base import Runner, RuntimeUnavailable
from gru_onnx.saving import validate_data_files
from gru_onnx.web import browser, wire
from gru_onnx.web.serve import StaticServer
from gru_onnx.web.setup import package_dir, web_problem

BACKENDS = {"wasm": "WebAssembly", "webgpu": "WebGPU"}
#: onnxruntime-web's entry script per backend (its dist folder holds the .wasm each loads).
ORT_SCRIPTS = {"wasm": "ort.wasm.min.mjs", "webgpu": "ort.webgpu.min.mjs"}
#: Seconds a page may take to load the model, and to run one set of feeds.
OPEN_TIMEOUT = 120
RUN_TIMEOUT = 600


def web_runner_problem(backend: str = "wasm", cache: str | os.PathLike[str] | None = None) -> str | None:
    """Why the web runner cannot run here (checked without a file or a browser), or None."""
    problem = web_problem(cache)
    return f"onnxruntime-web ({BACKENDS.get(backend, backend)}) not available: {problem}" if problem else None


class WebRunner(Runner):
    """onnxruntime-web in a headless Chromium page; ``threads`` sets its WebAssembly threads."""

    times_inside = True  # timed in the page (performance.now), not across Playwright

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        backend: Literal["wasm", "webgpu"] = "wasm",
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise GruOnnxUsageError(f"unknown web backend {backend!r}; valid: {', '.join(BACKENDS)}")
        super().__init__(path)
        self.threads = threads
        self.backend = backend
        self.cache = cache
        self.name = f"onnxruntime-web-{backend}"
        self.output_names: list[str] = []
        self._server: Any = None
        self._browser: Any = None
        self._page: Any = None
        self._console: collections.deque[str] = collections.deque(maxlen=20)

    def _open(self) -> None:
        if problem := web_runner_problem(self.backend, self.cache):
            raise RuntimeUnavailable(problem)
        model = self.path.resolve()
        proto = onnx.load(str(model), load_external_data=False)  # the caller checked the file
        data = [d.location for d in validate_data_files(proto, model)]
        server = self._server = StaticServer(isolated=True)
        try:
            ort_url = server.mount("ort", package_dir("onnxruntime-web", self.cache) / "dist")
            page_url = server.mount("assets", resources.files("gru_onnx.web") / "assets")  # type: ignore[arg-type]
            model_url = server.mount("model", model.parent, only=[model.name, *data])
            self._browser = browser.acquire(gpu=self.backend == "webgpu")
            self._page = self._browser.new_page()
            self._page.on("console", lambda m: self._console.append(f"{m.type}: {m.text}"))
            self._page.on("pageerror", lambda e: self._console.append(f"error: {e}"))
            self._page.goto(page_url + "runner.html")
            self._page.wait_for_function("() => window.gruReady === true", timeout=OPEN_TIMEOUT * 1000)
            config = {
                "ortScript": ort_url + ORT_SCRIPTS[self.backend],
                "backend": self.backend,
                "threads": self.threads,
                "model": model_url + _url_path(model.name),
                "data": [{"location": loc, "url": model_url + _url_path(loc)} for loc in data],
            }
            info = self._evaluate("cfg => window.gruOpen(cfg)", config, OPEN_TIMEOUT)
        except BaseException:
            self._close()
            raise
        self.output_names = list(info["outputs"])
        if self.backend == "webgpu" and not info["shaderF16"] and _uses_float16(proto):
            adapter = info["adapter"]
            self._close()
            raise RuntimeUnavailable(
                f"onnxruntime-web (WebGPU) not available: the WebGPU adapter ({adapter}) lacks shader-f16, "
                "which this float16 file needs"
            )
        chromium = self._browser.version
        if self.backend == "webgpu":
            where = f"WebGPU (adapter: {info['adapter']}; ops it lacks run in WebAssembly)"
        else:
            where = "WebAssembly backend"
        isolation = "cross-origin isolated" if info["isolated"] else "not cross-origin isolated"
        self.notes.append(
            f"onnxruntime-web {info['version']}, {where}, Chromium {chromium} headless, "
            f"{info['threads']} WebAssembly thread(s) ({isolation})"
        )

    def _evaluate(self, script: str, argument: Any, timeout: float) -> Any:
        """Evaluate ``script`` in the page; errors become one line (RuntimeUnavailable when the
        page says the backend is unavailable)."""
        from playwright.sync_api import Error

        self._page.set_default_timeout(timeout * 1000)
        try:
            return self._page.evaluate(script, argument)
        except Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            message = message.removeprefix("Error: ").removeprefix("Page.evaluate: ").removeprefix("Error: ")
            if message.startswith("unavailable: "):
                raise RuntimeUnavailable(
                    f"onnxruntime-web ({BACKENDS[self.backend]}) not available: {message.removeprefix('unavailable: ')}"
                ) from None
            last = f" (console: {_one_line(self._console[-1])})" if self._console else ""
            raise RuntimeError(f"{self.name}: {message}{last}") from None

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        answer = self._evaluate("message => window.gruRun(message)", wire.encode({}, feeds), RUN_TIMEOUT)
        _, outputs = wire.decode(base64.b64decode(answer))
        return [outputs[name] for name in self.output_names]

    def _timed(self, feeds: dict[str, np.ndarray]) -> Callable[[], float]:
        message = wire.encode({}, feeds)
        return lambda: float(self._evaluate("message => window.gruTime(message)", message, RUN_TIMEOUT))

    def _close(self) -> None:
        page, self._page = self._page, None
        if page is not None:
            with contextlib.suppress(Exception):  # the browser may be gone already
                page.close()
        held, self._browser = self._browser, None
        server, self._server = self._server, None
        try:
            if held is not None:
                browser.release(held)
        finally:
            if server is not None:
                server.close()


def _url_path(path: str) -> str:
    """A file's path relative to its mount as a URL path: every character outside the safe ones
    percent-encoded (a name with #, ?, % or a newline would otherwise be cut or misread)."""
    return quote(path, safe="/")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _uses_float16(proto: Any) -> bool:
    """True when a float16 tensor enters, leaves or is stored in the graph."""
    half = onnx.TensorProto.FLOAT16
    values = [*proto.graph.input, *proto.graph.output]
    return any(v.type.tensor_type.elem_type == half for v in values) or any(
        t.data_type == half for t in proto.graph.initializer
    )
