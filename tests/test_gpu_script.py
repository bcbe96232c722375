"""``benchmarks/gpu.py``: its dry run (the same steps on the CPU at tiny sizes) runs every step and
records real numbers, a spent budget skips steps instead of failing, and the committed results
say per part whether they were measured.

The script runs in a subprocess, as on a GPU machine, importing the installed package.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
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
