"""The system Chromium driven by Playwright, shared by everything in this process that needs a page.

Playwright's sync API runs one instance per thread (a second ``sync_playwright()`` in the same
thread fails), so runners and tests borrow browsers from here: :func:`acquire` starts Playwright
and the browser on first use, :func:`release` stops them when the last user is done. Chromium is
the system's (:func:`gru_onnx.web.setup.find_chromium`), started without Playwright's browser
download and with background networking off (on a closed network it floods otherwise), in a
fresh temporary profile. Use from one thread.
"""

from __future__ import annotations

from typing import Any

from gru_onnx.runners.base import RuntimeUnavailable
from gru_onnx.web.setup import chromium_problem, find_chromium, playwright_problem

#: Flags every launch gets; ``--disable-gpu`` is added unless WebGPU is wanted.
FLAGS = ("--no-sandbox", "--headless", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync")  # fmt: skip
GPU_FLAGS = ("--enable-unsafe-webgpu",)

_playwright: Any = None
_browsers: dict[bool, Any] = {}
_users: dict[int, int] = {}


def acquire(*, gpu: bool = False) -> Any:
    """A Playwright ``Browser`` on the system Chromium (``gpu``: with WebGPU enabled, else with
    the GPU off); RuntimeUnavailable when Chromium or Playwright is missing or does not start."""
    global _playwright
    if problem := chromium_problem() or playwright_problem():
        raise RuntimeUnavailable(f"Chromium not available: {problem}")
    browser = _browsers.get(gpu)
    if browser is None or not browser.is_connected():
        from playwright.sync_api import Error, sync_playwright

        if _playwright is None:
            _playwright = sync_playwright().start()
        flags = [*FLAGS, *(GPU_FLAGS if gpu else ("--disable-gpu",))]
        try:
            browser = _playwright.chromium.launch(executable_path=str(find_chromium()), args=flags)
        except Error as exc:
            _stop_if_idle()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeUnavailable(f"Chromium at {find_chromium()} did not start: {first}") from None
        _browsers[gpu] = browser
    _users[id(browser)] = _users.get(id(browser), 0) + 1
    return browser


def release(browser: Any) -> None:
    """Give back a browser from :func:`acquire`; the last user closes it (and Playwright)."""
    left = _users.get(id(browser), 0) - 1
    if left > 0:
        _users[id(browser)] = left
        return
    _users.pop(id(browser), None)
    for key, value in list(_browsers.items()):
        if value is browser:
            del _browsers[key]
    try:
        browser.close()
    finally:
        _stop_if_idle()


def _stop_if_idle() -> None:
    global _playwright
    if not _browsers and _playwright is not None:
        _playwright.stop()
        _playwright = None
