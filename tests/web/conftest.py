"""Fixtures of the web tests: exported files (one export per file per session) and skips that
name the command installing what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from webtools import STRATEGIES, denoiser, export_file, lone_gru

from gru_onnx.web import browser
from gru_onnx.web.setup import chromium_problem, node_problem, package_problem, playwright_problem


def skip_unless(problem: str | None) -> None:
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def node_ready() -> None:
    """Skip unless Node.js and onnxruntime-node (gru-onnx setup web) are here."""
    skip_unless(node_problem())


@pytest.fixture(scope="session")
def web_ready() -> Iterator[None]:
    """Skip unless Chromium, Playwright and onnxruntime-web (gru-onnx setup web) are here; then
    hold one Chromium for the session, so each runner opens a page, not a browser (a launch
    costs about a second)."""
    skip_unless(chromium_problem() or playwright_problem() or package_problem("onnxruntime-web"))
    held = browser.acquire()
    yield
    browser.release(held)


@pytest.fixture(scope="session")
def webgpu_browser(web_ready: None) -> Iterator[None]:
    """The WebGPU-enabled Chromium held for the session (as :func:`web_ready` holds the other)."""
    held = browser.acquire(gpu=True)
    yield
    browser.release(held)


@pytest.fixture(scope="session")
def ort_web_ready() -> None:
    """Skip unless onnxruntime-web is in the cache (what writing a bundle needs)."""
    skip_unless(package_problem("onnxruntime-web"))


@pytest.fixture(scope="session")
def lone_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    """``(strategy, streaming) -> file`` of :func:`lone_gru` (example: batch 2, 7 steps)."""
    folder = tmp_path_factory.mktemp("lone")
    gru = lone_gru()
    x = torch.randn(2, 7, 5)
    files = {}
    for strategy, (plain, streaming) in STRATEGIES.items():
        files[strategy, False] = export_file(gru, (x,), folder / f"{strategy}.onnx", **plain)
        files[strategy, True] = export_file(gru, (x[:, :1],), folder / f"{strategy}_stream.onnx", **streaming)
    return files


@pytest.fixture(scope="session")
def denoiser_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Denoiser, whole model, streaming (loop strategy: any chunk length)."""
    path = tmp_path_factory.mktemp("denoiser") / "denoiser.onnx"
    return export_file(denoiser(), (torch.randn(2, 16, 42),), path, strategy="loop", streaming=True)
