"""``package_web``: the static bundle, opened in Chromium from a plain static server, shows PASS
(screenshots kept under the test's tmp dir); it loads nothing from outside the folder; a wrong
reference shows FAIL; bad targets and references are refused in one line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from webtools import ATOL, artifact, denoiser, export_file, lone_gru

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.options import WebOptions
from gru_onnx.web import browser
from gru_onnx.web.bundle import ORT_FILES, package_web, torch_reference
from gru_onnx.web.serve import StaticServer

#: Milliseconds the page spends timing frames (its default, 2 s, is for people).
BUDGET = 300


def open_bundle(folder: Path, screenshot: Path, *, isolated: bool = False) -> tuple[str, dict[str, Any], list[str]]:
    """Serve ``folder`` (without cross-origin isolation unless ``isolated``, as any static server
    would), open its index.html in Chromium and wait for the verdict: ``(#result text,
    window.gruResult, URLs the page requested)``; a screenshot of the page goes to ``screenshot``."""
    held = browser.acquire()
    requested: list[str] = []
    try:
        with StaticServer(isolated=isolated) as server:
            url = server.mount("", folder)
            page = held.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"{url}index.html?budget={BUDGET}")
            page.wait_for_function("() => window.gruResult !== undefined", timeout=180_000)
            text = page.text_content("#result") or ""
            result = page.evaluate("() => window.gruResult")
            page.screenshot(path=str(screenshot), full_page=True)
            page.close()
            outside = [u for u in requested if not u.startswith(url) and not u.startswith("data:")]
            assert not outside, f"the page fetched from outside the bundle: {outside}"
    finally:
        browser.release(held)
    return text, result, requested


def verdict_error(text: str) -> float:
    match = re.match(r"^(PASS|FAIL) max error (\S+)", text)
    assert match, text
    return float(match.group(2))


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("loop", {"strategy": "loop", "streaming": True}),
        ("unrolled", {"strategy": "unrolled", "streaming": True, "chunk": 1}),
        ("native", {"strategy": "native", "streaming": True}),
        ("loop-plain", {"strategy": "loop", "dynamic_seq": True}),  # no states: one call, whole sequence
        ("loop-float16", {"strategy": "loop", "streaming": True, "dtype": "float16"}),  # served isolated
    ],
)
def test_lone_gru_bundle_passes_in_chromium(strategy, options, web_ready, tmp_path):
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / f"{strategy}.onnx", **options)
    bundle = package_web(path, tmp_path / "site", WebOptions(frames=40))
    manifest = bundle.manifest
    assert manifest["reference"]["frames"] == 40
    assert manifest["reference"]["step"] == (40 if strategy == "loop-plain" else 1)
    half = strategy.endswith("float16")
    shot = artifact(f"bundle-{strategy}.png")
    text, result, requested = open_bundle(bundle.path, shot, isolated=half)
    assert text.startswith("PASS"), text
    print(f"PARITY bundle {strategy} in Chromium: {text}; median {result['median'] * 1000:.0f} us per call")
    atol = 2e-3 if half else ATOL
    assert manifest["reference"]["atol"] == atol and verdict_error(text) < atol and result["maxError"] < atol
    assert result["threads"] == 1 and result["isolated"] is half
    assert result["resolution"] < 0.02 if half else result["resolution"] >= 0.02  # ms: 5 us isolated, 100 us not
    assert result["calls"] >= 3 * 40 // manifest["reference"]["step"]  # at least three timed passes
    assert shot.stat().st_size > 10_000
    assert any(u.endswith("ort-wasm-simd-threaded.wasm") for u in requested)


def test_denoiser_bundle_frame_by_frame_passes_in_chromium(denoiser_file, web_ready, tmp_path):
    model = denoiser()
    features = torch.randn(1, 120, 42).numpy()
    outputs = torch_reference(model, {"features": features}, denoiser_file)
    bundle = package_web(denoiser_file, tmp_path / "denoiser-web", inputs={"features": features}, outputs=outputs)
    assert set(bundle.files) == {
        "README.txt", "gru-stream.js", "index.html", "manifest.json", "denoiser.onnx",
        *(f"ort/{f}" for f in ORT_FILES),
        "reference/input0.bin", "reference/output0.bin", "reference/output1.bin",
    }  # fmt: skip
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    assert [s["input"] for s in manifest["states"]] == [
        "vad_gru_state_in",
        "noise_gru_state_in",
        "denoise_gru_state_in",
    ]
    assert [s["shape"] for s in manifest["states"]] == [["batch", 1, 24], ["batch", 1, 48], ["batch", 1, 96]]
    assert manifest["inputs"] == [
        {"name": "features", "dtype": "float32", "shape": ["batch", "seq", 42], "time_axis": 1}
    ]
    assert [o["name"] for o in manifest["outputs"]] == ["gains", "vad"]
    assert manifest["reference"]["frames"] == 120 and manifest["reference"]["step"] == 1
    shot = artifact("bundle-denoiser.png")
    text, result, _ = open_bundle(bundle.path, shot)
    assert text.startswith("PASS"), text
    us = {k: f"{result[k] * 1000:.0f} us" for k in ("median", "p90", "mean")}
    print(f"PARITY bundle denoiser (120 frames, one per call) in Chromium: {text}; per frame {us}")
    assert verdict_error(text) < ATOL
    assert set(result["errors"]) == {"gains", "vad"} and max(result["errors"].values()) < ATOL
    assert 0 < result["median"] <= result["p90"]
    assert shot.exists()


def test_wrong_reference_shows_fail(web_ready, tmp_path):
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "s.onnx", strategy="loop", streaming=True)
    x = torch.randn(1, 10, 5)
    with torch.no_grad():
        y, h = lone_gru()(x)
    wrong = {"output": y.numpy().copy(), "h_n": h.numpy()}
    wrong["output"][0, 6, 2] += 0.25
    bundle = package_web(path, tmp_path / "site", inputs={"input": x.numpy()}, outputs=wrong)
    text, result, _ = open_bundle(bundle.path, tmp_path / "fail.png")
    assert text.startswith("FAIL max error 2.5"), text
    assert result["verdict"] == "FAIL" and result["errors"]["h_n"] < ATOL


def test_external_data_travels_with_the_bundle(web_ready, tmp_path):
    torch.manual_seed(3)
    from gru_onnx import CustomGRU

    gru = CustomGRU(16, 32, batch_first=True, activation="relu").eval()
    path = export_file(gru, (torch.randn(2, 3, 16),), tmp_path / "big.onnx", strategy="loop", streaming=True,
                       external_data=True)  # fmt: skip
    bundle = package_web(path, tmp_path / "site", WebOptions(frames=12))
    (data,) = bundle.manifest["data"]
    assert (bundle.path / data["file"]).stat().st_size > 1024
    text, _, requested = open_bundle(bundle.path, tmp_path / "page.png")
    assert text.startswith("PASS"), text
    assert any(u.endswith(data["file"]) for u in requested)


# --------------------------------------------------------------------------------------------
# Refusals (no browser needed; writing a bundle needs onnxruntime-web in the cache)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def stream_file(tmp_path: Path) -> Path:
    return export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "s.onnx", strategy="loop", streaming=True)


def test_existing_folder_needs_force_and_only_a_bundle_is_replaced(stream_file, ort_web_ready, tmp_path):
    target = tmp_path / "site"
    package_web(stream_file, target, WebOptions(frames=4))
    with pytest.raises(GruOnnxUsageError, match=r"site exists; pass force=True \(--force\) to replace it$"):
        package_web(stream_file, target, WebOptions(frames=4))
    again = package_web(stream_file, target, WebOptions(frames=6, force=True))
    assert again.manifest["reference"]["frames"] == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]  # no temporary folder left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(GruOnnxUsageError, match="holds files that are not a gru-onnx web bundle"):
        package_web(stream_file, mine, WebOptions(force=True))
    assert (mine / "notes.txt").read_text() == "keep me"


def test_whole_model_needs_its_reference(denoiser_file, ort_web_ready, tmp_path):
    with pytest.raises(GruOnnxUsageError, match=r"whole model \(CustomGRU at 'vad_gru', .*pass its reference inputs"):
        package_web(denoiser_file, tmp_path / "site")
    x = np.zeros((1, 5, 42), np.float32)
    with pytest.raises(GruOnnxUsageError, match=r"no reference output 'vad'; the file's outputs besides its states"):
        package_web(denoiser_file, tmp_path / "site", inputs={"features": x}, outputs={"gains": np.zeros((1, 5, 22))})
    with pytest.raises(GruOnnxUsageError, match=r"reference output 'gains' is float64; the file's is float32"):
        package_web(denoiser_file, tmp_path / "site", inputs={"features": x},
                    outputs={"gains": np.zeros((1, 5, 22)), "vad": np.zeros((1, 5, 1), np.float32)})  # fmt: skip
    with pytest.raises(GruOnnxUsageError, match=r"disagree on the number of frames: \[5, 6\]"):
        outputs = {"gains": np.zeros((1, 6, 22), np.float32), "vad": np.zeros((1, 5, 1), np.float32)}
        package_web(denoiser_file, tmp_path / "site", inputs={"features": x}, outputs=outputs)
    assert not (tmp_path / "site").exists()


def test_lone_gru_reference_from_given_inputs(stream_file, ort_web_ready, tmp_path):
    x = torch.randn(1, 9, 5)
    bundle = package_web(stream_file, tmp_path / "site", inputs={"input": x.numpy()})
    with torch.no_grad():
        want, _ = lone_gru()(x)
    ref = bundle.manifest["reference"]
    (output,) = [o for o in ref["outputs"] if o["name"] == "output"]
    got = np.fromfile(bundle.path / output["file"], np.float32).reshape(output["shape"])
    np.testing.assert_allclose(got, want.numpy(), atol=1e-6)
    assert ref["frames"] == 9 and "given inputs" in ref["source"]


def test_bad_arguments_are_one_line(stream_file, ort_web_ready, tmp_path):
    with pytest.raises(GruOnnxUsageError, match="frames must be a positive integer, got 0"):
        package_web(stream_file, tmp_path / "site", WebOptions(frames=0))
    with pytest.raises(GruOnnxUsageError, match="reference outputs given without their inputs"):
        package_web(stream_file, tmp_path / "site", outputs={"output": np.zeros(1)})
    with pytest.raises(GruOnnxUsageError, match=r"^no such file: .*missing\.onnx$"):
        package_web(tmp_path / "missing.onnx", tmp_path / "site")
    (tmp_path / "file").write_text("")
    with pytest.raises(GruOnnxUsageError, match="file exists and is not a folder"):
        package_web(stream_file, tmp_path / "file")


def test_without_onnxruntime_web_the_setup_command_is_named(stream_file, tmp_path, monkeypatch):
    monkeypatch.setenv("GRU_ONNX_WEB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(GruOnnxUsageError, match=r"onnxruntime-web is not installed in .*: run `gru-onnx setup web`$"):
        package_web(stream_file, tmp_path / "site")


def test_the_package_command_writes_a_bundle_whose_page_passes(web_ready, tmp_path, run_cli):
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "relu.onnx", strategy="loop", streaming=True)
    result = run_cli("package", str(path), "--web", "site", "--frames", "24", "--name", "relu stream")
    assert result.exit_code == 0, result.output
    assert "reference: 24 frames" in result.output and "states: state_in -> state_out" in result.output
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert manifest["name"] == "relu stream" and manifest["reference"]["frames"] == 24
    text, _, _ = open_bundle(tmp_path / "site", artifact("bundle-cli.png"))
    assert text.startswith("PASS"), text
    again = run_cli("package", str(path), "--web", "site")
    assert again.exit_code == 2 and "pass force=True (--force)" in again.output
    assert run_cli("package", str(path), "--web", "site", "--force").exit_code == 0
