"""``benchmarks/gpu.py``: its dry run (the same steps on the CPU at tiny sizes) runs every step and
records real numbers, a spent budget skips steps instead of failing, and the committed results
say per part whether they were measured.

The script runs in a subprocess, as on a GPU machine, importing the installed package.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("pytorch", "onnxruntime", "tensorrt")
PART_STATUSES = ("measured", "not measurable here", "not yet measured", "not measured", "error")
ROW_STATUSES = ("measured", "refused", "error", "not measurable here", "not measured: time budget")


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("gpu_dry_run")
    done = run_script("--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "gpu.json").read_text()), (out / "gpu.md").read_text()


def rows(data: dict[str, Any], part: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in data["parts"][part]["rows"] if all(r.get(k) == v for k, v in match.items())]


def check_statuses(data: dict[str, Any]) -> None:
    assert tuple(data["parts"]) == PARTS
    for key, part in data["parts"].items():
        assert part["status"].startswith(PART_STATUSES), (key, part["status"])
        if part["status"] == "not measurable here":
            assert part["reason"], key
        for row in part["rows"]:
            assert row["status"].startswith(ROW_STATUSES), (key, row)


def test_dry_run_gives_every_part_a_status_and_runs_every_step_without_error(dry_run) -> None:
    data, markdown = dry_run
    check_statuses(data)
    assert data["mode"] == "dry-run" and data["finished"]
    errors = [(r, r.get("traceback")) for p in PARTS for r in rows(data, p) if r["status"].startswith("error")]
    assert not errors
    assert data["parts"]["pytorch"]["status"].startswith("measured")
    assert data["parts"]["onnxruntime"]["status"].startswith("measured")
    assert "DRY RUN" in markdown
    for part in data["parts"].values():
        assert f"## {part['title']}: {part['status']}" in markdown


def test_dry_run_pytorch_numbers_are_real(dry_run) -> None:
    data, _ = dry_run
    for variant in ("nn.GRU", "eager", "compiled"):
        for dtype, tolerance in (("float32", 1e-5), ("float16", 1e-2)):
            found = rows(data, "pytorch", variant=variant, dtype=dtype)
            assert found, (variant, dtype)
            for row in found:
                assert row["status"] == "measured", row
                assert math.isfinite(row["max_abs_err"]) and row["max_abs_err"] < tolerance, row
                assert row["ms"] > 0
    compiled = rows(data, "pytorch", variant="compiled")
    assert all(r["compile_s"] > 0 for r in compiled)
    assert all(r["vs_cudnn"] > 0 for r in rows(data, "pytorch", variant="eager"))
    # CUDA graphs need CUDA: said so, not skipped silently.
    for row in rows(data, "pytorch", variant="graph"):
        assert row["status"] == "not measurable here: CUDA graphs need CUDA"


def test_dry_run_onnxruntime_numbers_are_real(dry_run) -> None:
    data, markdown = dry_run
    files = rows(data, "onnxruntime", table="files", dtype="float32")
    measured = [r for r in files if r["status"] == "measured"]  # I/O binding, and StreamingSession per frame
    names = {r["file"].split(",")[0].split(" (")[0] for r in measured}
    assert {"fused GRU op", "unrolled", "loop", "native", "auto", "streaming dynamic-step chunks", "int8"} <= names
    for row in measured:
        tolerance = 0.1 if row["file"].startswith("int8") else 1e-5
        assert math.isfinite(row["max_abs_err"]) and row["max_abs_err"] < tolerance, row
        assert row["ms"] > 0
        # Placement is read from ONNX Runtime's profiler: every node on the provider that ran.
        assert row["off_provider"] == "none" and " nodes on CPU" in row["placement"], row
    native_gelu = rows(data, "onnxruntime", file="native, gelu")
    assert native_gelu and all(r["status"].startswith("refused: ") for r in native_gelu)
    half = rows(data, "onnxruntime", table="files", dtype="float16", mode="I/O binding")
    assert half and all(r["status"] == "measured" and r["max_abs_err"] < 1e-2 for r in half)
    graphs = rows(data, "onnxruntime", mode="CUDA graph")
    assert graphs and all(r["status"].startswith("not measurable here: enable_cuda_graph") for r in graphs)
    cap = rows(data, "onnxruntime", table="cap")
    assert cap and all(r["unrolled_vs_loop"] > 0 and r["max_abs_err"] < 1e-5 for r in cap)
    assert "- Crossover at B=1:" in markdown


def test_a_spent_budget_skips_steps_and_ort_path_comes_first(tmp_path: Path) -> None:
    """``--budget-s 0`` records every step as not measured instead of running it; ``--ort-path``
    is searched before the installed onnxruntime (here a stub that fails to import)."""
    stub = tmp_path / "ort" / "onnxruntime"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("a stub standing in for a broken onnxruntime")\n')
    done = run_script("--dry-run", "--budget-s", "0", "--ort-path", str(tmp_path / "ort"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "gpu.json").read_text())
    check_statuses(data)
    assert data["parts"]["pytorch"]["status"] == "not measured: time budget"
    for part in ("onnxruntime", "tensorrt"):
        assert data["parts"][part]["status"] == "not measurable here"
        assert "a stub standing in for a broken onnxruntime" in data["parts"][part]["reason"]


def test_committed_results_say_per_part_whether_they_were_measured(tmp_path: Path) -> None:
    data = json.loads((RESULTS / "gpu.json").read_text())
    check_statuses(data)
    markdown = (RESULTS / "gpu.md").read_text()
    assert "python benchmarks/gpu.py --ort-path" in markdown  # the header says how to run it
    for part in data["parts"].values():
        assert f"## {part['title']}: {part['status']}" in markdown
    if data.get("mode") is None:  # nothing measured yet: exactly what --placeholder writes
        assert all(p["status"] == "not yet measured" for p in data["parts"].values())
        done = run_script("--placeholder", "--out", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "gpu.md").read_text() == markdown


# ---------------------------------------------------------------- the step runner, in process


@pytest.fixture(scope="module")
def gpu() -> Any:
    """benchmarks/gpu.py as a module (its top level imports only the standard library)."""
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


HEADER = {"mode": "dry-run", "command": "c", "started": "s", "budget_s": 1.0, "machine": "m", "versions": {},
          "sizes": {"input": 1, "hidden": 1}}  # fmt: skip


def test_each_step_is_guarded_and_written_before_the_next_one_runs(gpu, tmp_path: Path) -> None:
    results = gpu.Results.start(tmp_path, HEADER)
    written: list[int] = []

    def fails(ctx: Any) -> dict[str, Any]:
        raise ValueError("boom\nmore detail")

    def reads_the_file(ctx: Any) -> dict[str, Any]:
        written.append(len(json.loads((tmp_path / "gpu.json").read_text())["parts"]["pytorch"]["rows"]))
        return {"ms": 1.0, "max_abs_err": 0.0}

    def needs_cuda(ctx: Any) -> dict[str, Any]:
        raise gpu.NotMeasurable("CUDA graphs need CUDA")

    def refused(ctx: Any) -> dict[str, Any]:
        raise gpu.Refused("the native op cannot express gelu")

    base = {"activation": "relu", "dtype": "float32", "batch": 1, "seq": 1, "variant": "eager"}
    steps = [gpu.Step("pytorch", "torch", {**base, "n": i}, run) for i, run in
             enumerate((fails, reads_the_file, needs_cuda, refused))]  # fmt: skip
    steps.append(gpu.Step("pytorch", "torch", {**base, "n": 4}, reads_the_file, estimate_s=1e9))
    gpu.run_steps(steps, None, results, deadline=time.monotonic() + 60)
    rows = json.loads((tmp_path / "gpu.json").read_text())["parts"]["pytorch"]["rows"]
    assert [r["status"] for r in rows] == [
        "error: ValueError: boom",
        "measured",
        "not measurable here: CUDA graphs need CUDA",
        "refused: the native op cannot express gelu",
        "not measured: time budget",
    ]
    assert written == [1]  # the error row was on disk before the next step ran
    assert "ValueError" in rows[0]["traceback"]
    assert gpu.part_status(results.part("pytorch")) == (
        "measured (1 error, 1 not measurable here, 1 not measured: time budget, 1 refused)"
    )
    markdown = (tmp_path / "gpu.md").read_text()
    assert "| relu | float32 | 1 | 1 | eager |  |  |  |  | error: ValueError: boom |" in markdown


def test_a_refused_cuda_graph_falls_back_to_static_shapes_and_says_why(gpu, monkeypatch) -> None:
    calls = []

    def ort_measure(ctx: Any, path: Path, *args: Any) -> dict[str, Any]:
        calls.append(path)
        if path.name == "dynamic.onnx":
            raise RuntimeError("This session cannot use the graph capture feature\nas requested")
        return {"ms": 1.0, "max_abs_err": 0.0}

    monkeypatch.setattr(gpu, "ort_measure", ort_measure)
    ctx = gpu.Context(gpu.DRY, dry_run=False, folder=Path("."), provider="cuda")
    row = gpu.graph_measure(ctx, Path("dynamic.onnx"), lambda: Path("static.onnx"), {}, None)
    assert calls == [Path("dynamic.onnx"), Path("static.onnx")]
    assert row["status"] == (
        "measured (static shapes; the dynamic-batch file: RuntimeError: This session cannot use the graph capture "
        "feature)"
    )


def test_the_crossover_is_the_longest_length_where_unrolled_keeps_up(gpu) -> None:
    def cap(batch: int, seq: int, ratio: float | None) -> dict[str, Any]:
        return {"batch": batch, "seq": seq, "unrolled_vs_loop": ratio}

    rows = [cap(1, 64, 0.5), cap(1, 128, 0.9), cap(1, 256, 1.1), cap(1, 512, 1.3), cap(16, 64, 1.2),
            cap(16, 128, None), cap(4, 64, 0.8)]  # fmt: skip
    assert gpu.crossover_lines(rows) == [
        "- Crossover at B=1: unrolled at least as fast up to T=128, loop faster beyond.",
        "- Crossover at B=4: unrolled at least as fast up to the longest measured, T=64.",
        "- Crossover at B=16: loop faster at every measured length (64).",
    ]
