"""``package_web``: the static bundle, opened in Chromium from a plain static server, shows PASS
(screenshots kept under the test's tmp dir); it loads nothing from outside the folder; a wrong
reference shows FAIL; bad targets and references are refused in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import onnx
import pytest
import torch
from webtools import ATOL, artifact, denoiser, export_file, lone_gru

import gru_onnx
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.options import WebOptions
from gru_onnx.web import browser
from gru_onnx.web.bundle import ORT_FILES, package_web, torch_reference
from gru_onnx.web.serve import StaticServer

import flat

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


# --------------------------------------------------------------------------------------------
# What --force may replace, names the bundle keeps for itself, the reference's size, a lone
# GRU's own input names, file names a URL would misread, and odd target paths
# --------------------------------------------------------------------------------------------


def externalize(path: Path, location: str, saved: Path | None = None) -> Path:
    """``path`` saved (to ``saved``, else over itself) with its weights in the external data
    file ``location`` (small shape constants stay inline, as onnxruntime-web wants them)."""
    saved = saved or path
    onnx.save(onnx.load(str(path)), str(saved), save_as_external_data=True, location=location, size_threshold=256)
    assert (saved.parent / location).stat().st_size > 1000
    return saved


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_force_never_deletes_a_users_file_beside_a_bundle(stream_file, ort_web_ready, tmp_path):
    # The README invites writing your own page beside gru-stream.js: such a file, or a bundle
    # nested in a subfolder, stops --force (naming it) and everything is kept as it was.
    target = tmp_path / "site"
    package_web(stream_file, target, WebOptions(frames=4))
    (target / "user_notes.txt").write_text("mine")
    before = snapshot(target)
    with pytest.raises(GruOnnxUsageError, match=r"site holds 'user_notes.txt', which is not part of its gru-onnx web "
                                                r"bundle \(move it away\); refusing to replace it$"):  # fmt: skip
        package_web(stream_file, target, WebOptions(frames=6, force=True))
    assert snapshot(target) == before
    (target / "user_notes.txt").unlink()
    package_web(stream_file, target / "sub", WebOptions(frames=4))
    (target / "reference" / "extra.bin").write_bytes(b"x")
    before = snapshot(target)
    with pytest.raises(GruOnnxUsageError, match=r"holds 'reference/extra.bin'"):
        package_web(stream_file, target, WebOptions(frames=6, force=True))
    (target / "reference" / "extra.bin").unlink()
    with pytest.raises(GruOnnxUsageError, match=r"holds 'sub/', which is not part of its gru-onnx web bundle"):
        package_web(stream_file, target, WebOptions(frames=6, force=True))
    assert (target / "sub" / "manifest.json").is_file() and len(snapshot(target)) == len(before) - 1
    shutil.rmtree(target / "sub")
    assert package_web(stream_file, target, WebOptions(frames=6, force=True)).manifest["reference"]["frames"] == 6
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")]


def test_a_folder_that_only_claims_to_be_a_bundle_is_not_replaced(stream_file, ort_web_ready, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('{"format": "gru-onnx-web"}')
    (fake / "thesis.tex").write_text("x")
    with pytest.raises(GruOnnxUsageError, match=r"fake holds files that are not a gru-onnx web bundle \(no manifest"):
        package_web(stream_file, fake, WebOptions(force=True))
    (fake / "manifest.json").unlink()
    os.mkfifo(fake / "manifest.json")  # read, it would block: it is looked at, not opened
    with pytest.raises(GruOnnxUsageError, match="holds files that are not a gru-onnx web bundle"):
        package_web(stream_file, fake, WebOptions(force=True))
    assert (fake / "thesis.tex").read_text() == "x"
    # A real bundle's manifest copied beside a user's files does not list them either.
    package_web(stream_file, tmp_path / "site", WebOptions(frames=4))
    (fake / "manifest.json").unlink()
    shutil.copy(tmp_path / "site" / "manifest.json", fake / "manifest.json")
    with pytest.raises(GruOnnxUsageError, match=r"holds 's.onnx'|holds 'thesis.tex'"):
        package_web(stream_file, fake, WebOptions(force=True))
    assert (fake / "thesis.tex").read_text() == "x"


def test_a_bundle_with_data_in_a_subfolder_is_replaced_whole(ort_web_ready, tmp_path):
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "m" / "s.onnx", strategy="loop",
                       streaming=True)  # fmt: skip
    (path.parent / "weights").mkdir()
    externalize(path, "weights/w.bin")
    target = tmp_path / "site"
    first = package_web(path, target, WebOptions(frames=4))
    assert "weights/w.bin" in first.files
    again = package_web(path, target, WebOptions(frames=5, force=True))
    assert again.manifest["reference"]["frames"] == 5 and (target / "weights" / "w.bin").is_file()


@pytest.mark.parametrize("points_at", ["empty", "bundle", "nothing"])
def test_a_symlinked_bundle_folder_is_refused_and_left_as_it_is(points_at, stream_file, ort_web_ready, tmp_path):
    real = tmp_path / "real"
    if points_at == "empty":
        real.mkdir()
    elif points_at == "bundle":
        package_web(stream_file, real, WebOptions(frames=4))
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    before = snapshot(real) if real.exists() else None
    with pytest.raises(GruOnnxUsageError, match=r"link is a symbolic link; give the folder itself, or a new path"):
        package_web(stream_file, link, WebOptions(frames=6, force=True))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert (snapshot(real) if real.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["link", "s.onnx", *(["real"] if before is not None
                                                                                    else [])])  # fmt: skip


@pytest.mark.parametrize("location", ["manifest.json", "index.html", "README.txt", "gru-stream.js",
                                      "ort/ort.wasm.min.mjs", "reference/input0.bin", "Index.HTML", "ort"])  # fmt: skip
def test_external_data_on_the_bundles_own_names_is_refused(location, ort_web_ready, tmp_path):
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "s.onnx", strategy="loop", streaming=True)
    if "/" in location:
        (tmp_path / location).parent.mkdir()
    externalize(path, location)
    message = rf"external data '{re.escape(location)}' would land on the bundle's own"
    with pytest.raises(GruOnnxUsageError, match=message):
        package_web(path, tmp_path / "site", WebOptions(frames=4))
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("name", ["index.html", "gru-stream.js", "manifest.json", "README.txt", "reference"])
def test_a_model_named_like_the_bundles_own_files_is_refused(name, stream_file, ort_web_ready, tmp_path):
    path = tmp_path / name
    shutil.copy(stream_file, path)
    with pytest.raises(GruOnnxUsageError, match=rf"the model's file name '{re.escape(name)}' is the bundle's own"):
        package_web(path, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_frames_are_bounded_before_the_reference_is_allocated(ort_web_ready, tmp_path, run_cli):
    with pytest.raises(GruOnnxUsageError, match=r"frames \(--frames\) must be at most 100000 for a web bundle"):
        WebOptions(frames=10**9)
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "s.onnx", strategy="loop", streaming=True)
    result = run_cli("package", str(path), "--web", "site", "--frames", "1000000000")
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "--frames" in result.output
    # Within the frame limit but over the bytes a page loads: 4096 features a frame.
    wide = export_file(gru_onnx.CustomGRU(4096, 4, batch_first=True).eval(), (torch.randn(2, 3, 4096),),
                       tmp_path / "wide.onnx", strategy="loop", streaming=True)  # fmt: skip
    started = time.perf_counter()
    message = r"a reference of 20000 frames \(--frames\) takes about 31\d\.\d+ MiB \(inputs and outputs\), over the 256"
    with pytest.raises(GruOnnxUsageError, match=message + ".*: use fewer --frames$"):
        package_web(wide, tmp_path / "site", WebOptions(frames=20000))
    assert time.perf_counter() - started < 5 and not (tmp_path / "site").exists()


def test_frames_a_file_cannot_run_are_refused_or_noted(ort_web_ready, tmp_path, run_cli):
    fixed = export_file(lone_gru(), (torch.randn(2, 7, 5),), tmp_path / "fixed.onnx", strategy="unrolled")
    result = run_cli("package", str(fixed), "--web", "a", "--frames", "30")
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "the file runs exactly 7 frames (its sequence length is fixed), so --frames 30 cannot be honoured" in (
        result.output
    )
    result = run_cli("package", str(fixed), "--web", "a")  # no --frames: the file's own length
    assert result.exit_code == 0 and "reference: 7 frames" in result.output, result.output
    assert run_cli("package", str(fixed), "--web", "b", "--frames", "7").exit_code == 0
    chunked = export_file(lone_gru(), (torch.randn(2, 4, 5),), tmp_path / "chunk.onnx", strategy="unrolled",
                          streaming=True, chunk=4)  # fmt: skip
    result = run_cli("package", str(chunked), "--web", "c", "--frames", "10")
    assert result.exit_code == 0, result.output
    assert "reference: 12 frames" in result.output
    assert "note: --frames 10 rounded up to 12: the file takes chunks of exactly 4" in result.output
    with pytest.raises(GruOnnxUsageError, match="frames sets the length of a generated reference"):
        package_web(chunked, tmp_path / "d", WebOptions(frames=8), inputs={"input": np.zeros((1, 8, 5), np.float32)})


def test_a_lone_gru_with_its_own_input_names_is_packaged(ort_web_ready, tmp_path):
    torch.manual_seed(2)
    gru = gru_onnx.CustomGRU(5, 6, batch_first=True).eval()
    path = flat.export(gru, (torch.randn(2, 4, 5),), tmp_path / "named.onnx", check=False, strategy="loop",
                       streaming=True, input_names=["audio"], output_names=["y", "hn"]).path  # fmt: skip
    bundle = package_web(path, tmp_path / "site", WebOptions(frames=9))
    assert [i["name"] for i in bundle.manifest["inputs"]] == ["audio"]
    x, y = (bundle.manifest["reference"][k][0] for k in ("inputs", "outputs"))
    audio = np.fromfile(bundle.path / x["file"], np.float32).reshape(x["shape"])
    with torch.no_grad():
        want, _ = gru(torch.from_numpy(audio))
    np.testing.assert_allclose(np.fromfile(bundle.path / y["file"], np.float32).reshape(y["shape"]), want.numpy(),
                               atol=1e-6)  # fmt: skip
    # Sequence first, with an initial state and lengths, all named otherwise: no time axis on those two.
    plain = gru_onnx.CustomGRU(5, 6).eval()
    args = (torch.randn(4, 2, 5), torch.zeros(1, 2, 6), torch.tensor([4, 3]))
    path = flat.export(plain, args, tmp_path / "h0.onnx", check=False, strategy="loop", dynamic_seq=True,
                       input_names=["x", "state0", "lens"]).path  # fmt: skip
    bundle = package_web(path, tmp_path / "site2", WebOptions(frames=9))
    assert [(i["name"], i["time_axis"]) for i in bundle.manifest["inputs"]] == [("x", 0), ("state0", None),
                                                                                ("lens", None)]  # fmt: skip
    assert [i["shape"] for i in bundle.manifest["reference"]["inputs"]] == [[9, 1, 5], [1, 1, 6], [1]]


#: A file name a URL would misread three ways: # starts a fragment, %41 decodes to A, ? a query.
ODD_NAME = "a#b%41 ?.onnx"
ODD_DATA = "d#1%41?.data"


@pytest.fixture
def odd_file(tmp_path: Path) -> Path:
    path = export_file(lone_gru(), (torch.randn(2, 3, 5),), tmp_path / "odd" / "s.onnx", strategy="loop",
                       streaming=True)  # fmt: skip
    odd = externalize(path, ODD_DATA, path.with_name(ODD_NAME))
    path.unlink()
    return odd


def test_a_file_name_with_hash_and_percent_runs_in_the_page(odd_file, web_ready, tmp_path):
    bundle = package_web(odd_file, tmp_path / "site", WebOptions(frames=8))
    assert {ODD_NAME, ODD_DATA} <= set(bundle.files)
    text, _, requested = open_bundle(bundle.path, tmp_path / "odd.png")
    assert text.startswith("PASS"), text
    assert any(u.endswith("/a%23b%2541%20%3F.onnx") for u in requested), requested
    # and the bundle is replaced as a bundle (its odd names are its own)
    assert package_web(odd_file, tmp_path / "site", WebOptions(frames=4, force=True)).manifest["model"] == ODD_NAME


def test_the_server_maps_percent_encoded_names_back(tmp_path):
    (tmp_path / ODD_NAME).write_bytes(b"m")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.data").write_bytes(b"d")
    with StaticServer() as server:
        server.mount("model", tmp_path, only=[ODD_NAME, "./sub/x.data"])
        assert server.resolve("/model/" + quote(ODD_NAME)) == (tmp_path / ODD_NAME).resolve()
        assert server.resolve("/model/sub/x.data") == (tmp_path / "sub" / "x.data").resolve()
        assert server.resolve("/model/a") is None  # the name cut at # is not served
        assert server.resolve("/model/%2E%2E/" + quote(tmp_path.name)) is None


def test_path_messages_stay_on_one_line(stream_file, ort_web_ready, tmp_path):
    target = tmp_path / "two\nlines"
    target.mkdir()
    with pytest.raises(GruOnnxUsageError) as caught:
        package_web(stream_file, target)
    assert "\n" not in str(caught.value) and str(caught.value).endswith("pass force=True (--force) to replace it")


def test_dot_and_odd_targets_are_usage_errors_or_work(stream_file, ort_web_ready, tmp_path, monkeypatch, run_cli):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    bundle = package_web(stream_file, ".", WebOptions(frames=4, force=True))  # empty: written there
    assert bundle.path == here and bundle.notes == (f"the bundle replaced the working folder {here}: `cd \"$PWD\"` "
                                                    "to see it",)  # fmt: skip
    with pytest.raises(GruOnnxUsageError, match=r"^cannot use \. as the bundle folder: No such file or directory$"):
        package_web(stream_file, ".", WebOptions(frames=5, force=True))  # the working folder is the replaced one
    monkeypatch.chdir(here)  # cd "$PWD"
    assert package_web(stream_file, ".", WebOptions(frames=5, force=True)).manifest["reference"]["frames"] == 5
    monkeypatch.chdir(tmp_path)
    assert json.loads((here / "manifest.json").read_text())["reference"]["frames"] == 5
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".here")]
    for target, message in [
        ("y" * 300, r"the bundle folder's name is too long \(300 bytes; at most \d+ here"),
        ("y" * 240, r"the bundle folder's name is too long \(240 bytes"),
        (f"{stream_file}/x", r"cannot use .*s.onnx/x as the bundle folder: Not a directory"),
        ("/", r"cannot write a bundle over the root folder /$"),
    ]:
        with pytest.raises(GruOnnxUsageError, match=message):
            package_web(stream_file, target, WebOptions(force=True))
        result = run_cli("package", str(stream_file), "--web", target, "--force")
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert package_web(stream_file, "y" * 200, WebOptions(frames=4)).path == tmp_path / ("y" * 200)


def forged(folder: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """``folder`` with a user's files and a forged manifest.json listing ``manifest``'s entries."""
    folder.mkdir()
    (folder / "thesis.txt").write_text("t")
    (folder / "photos").mkdir()
    (folder / "photos" / "cat.jpg").write_text("j")
    base = {"format": "gru-onnx-web", "version": 1, "name": "x", "model": "thesis.txt", "data": [],
            "inputs": [], "outputs": [], "states": [], "reference": {}}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps({**base, **manifest}))
    return snapshot(folder)


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        ({"data": [{"file": "photos/cat.jpg"}]}, "thesis.txt"),  # a model that is no *.onnx
        ({"model": "photos/m.onnx"}, "photos/m.onnx"),  # a model in a folder
        ({"model": "thesis.onnx"}, "thesis.onnx"),  # no ONNX model (a user's file named so)
        ({"model": "s.onnx", "data": [{"location": "photos/cat.jpg", "file": "photos/cat.jpg"}]}, "photos/cat.jpg"),
        ({"model": "s.onnx", "reference": {"inputs": [{"file": "thesis.txt"}]}}, "thesis.txt"),
        ({"model": "s.onnx", "reference": {"outputs": [{"file": "reference/../a.bin"}]}}, "reference/../a.bin"),
    ],
)
def test_a_forged_manifest_never_makes_force_delete_a_users_files(
    manifest, named, stream_file, ort_web_ready, tmp_path, run_cli
):
    victim = tmp_path / "victim"
    before = forged(victim, manifest)
    if manifest.get("model") == "thesis.onnx":
        (victim / "thesis.onnx").write_text("not a model")
        before = snapshot(victim)
    elif manifest.get("model") == "s.onnx":
        shutil.copy(stream_file, victim / "s.onnx")  # a real model, which names no such data file
        before = snapshot(victim)
    result = run_cli("package", str(stream_file), "--web", str(victim), "--force")
    assert result.exit_code == 2, result.output
    assert f"its manifest.json lists {named!r}, which no bundle writes" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(victim) == before


def test_a_model_without_the_onnx_suffix_is_bundled_as_one(stream_file, ort_web_ready, tmp_path):
    odd = tmp_path / "model.bin"
    shutil.copy(stream_file, odd)
    bundle = package_web(odd, tmp_path / "site", WebOptions(frames=4))
    assert bundle.manifest["model"] == "model.bin.onnx" and (bundle.path / "model.bin.onnx").is_file()
    assert package_web(odd, tmp_path / "site", WebOptions(frames=5, force=True)).manifest["reference"]["frames"] == 5
