"""``benchmarks/web.py --quick``: the smoke run of the target=web evidence script runs every part
(per frame, whole sequences, native exactness) in a subprocess and prints its tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gru_onnx.runners import unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "web.py"


def test_quick_run_prints_the_tables() -> None:
    if reason := unavailable_reason("web"):
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "| form | web (wasm) us/frame | x fused | x loop" in out
    assert "| T | form | web (wasm): x fused op | ms" in out
    assert "| candidate / gates | reset | dtype | web (wasm)" in out
    assert "## Reading" in out
