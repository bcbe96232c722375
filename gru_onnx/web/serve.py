"""A localhost static file server in a thread, for a browser to load a model and onnxruntime-web.

Only what is mounted is served (a folder, or chosen files of one); paths leaving a mount are
refused. With ``isolated`` every response carries the cross-origin isolation headers
(COOP/COEP), so onnxruntime-web may run several WebAssembly threads and ``performance.now()``
is fine-grained.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin"}  # fmt: skip


class StaticServer:
    """Serve mounted folders on ``http://127.0.0.1:<port>/`` until :meth:`close`."""

    def __init__(self, *, isolated: bool = True) -> None:
        self.isolated = isolated
        self._mounts: dict[str, tuple[Path, frozenset[str] | None]] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's root URL, with a trailing slash."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def mount(self, prefix: str, folder: str | Path, only: Iterable[str] | None = None) -> str:
        """Serve ``folder`` (or only the files ``only`` names in it, relative paths as they are on
        disk) under ``/prefix/``; returns its URL. A request names a file by its path
        percent-encoded (``urllib.parse.quote``): ``a%23b.onnx`` is ``a#b.onnx``."""
        prefix = prefix.strip("/")
        files = None if only is None else frozenset(PurePosixPath(f).as_posix() for f in only)
        self._mounts[prefix] = (Path(folder).resolve(), files)
        return f"{self.url}{quote(prefix)}/" if prefix else self.url

    def resolve(self, path: str) -> Path | None:
        """The file a URL path names, or None (not mounted, not there, or leaving its mount)."""
        parts = [p for p in unquote(urlsplit(path).path).split("/") if p]
        for depth in (1, 0):
            prefix = "/".join(parts[:depth])
            if prefix not in self._mounts or len(parts) <= depth:
                continue
            folder, only = self._mounts[prefix]
            rest = parts[depth:]
            if ".." in rest or (only is not None and "/".join(rest) not in only):
                return None
            target = folder.joinpath(*rest).resolve()
            if target.is_file() and target.is_relative_to(folder):
                return target
        return None

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _handler(server: StaticServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK wait

        def log_message(self, format: str, *args: object) -> None:  # quiet: the page reports its own errors
            pass

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if server.isolated:
                for key, value in ISOLATION.items():
                    self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            target = server.resolve(self.path)
            if target is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            kind = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, target.read_bytes(), kind)

        do_HEAD = do_GET

    return Handler
