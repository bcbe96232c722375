"""Parity by runtime: export a few representative files and check each on every runtime.

Writes ``benchmarks/results/parity.md`` (machine, versions, table) and prints the table that
goes into the README. Runtimes this machine lacks are reported as skipped with the reason; run
it on a GPU machine to fill in CUDA and TensorRT.

    python benchmarks/parity_by_runtime.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import gru_onnx
from gru_onnx import CustomGRU
from gru_onnx.runners import ALL

try:  # the benchmarks share their machine description
    from strategies import machine, versions
except ImportError:  # pragma: no cover - run from elsewhere
    from benchmarks.strategies import machine, versions

CASES = [
    # label, constructor kwargs, export kwargs
    ("loop, gelu / hard_sigmoid", {"activation": "gelu", "recurrent_activation": "hard_sigmoid"}, {"strategy": "loop"}),
    ("unrolled, silu, reset before", {"activation": "silu", "reset_after": False}, {"strategy": "unrolled"}),
    ("native, tanh / sigmoid", {}, {"strategy": "native"}),
    ("native, relu", {"activation": "relu"}, {"strategy": "native"}),
    ("loop, gelu, float16", {"activation": "gelu"}, {"strategy": "loop", "dtype": "float16"}),
]


def cell(result: gru_onnx.parity.RuntimeResult) -> str:
    if result.status == "skipped":
        return "skipped"
    if result.status == "error":
        return f"error: {result.reason[:60]}"
    worst = max(o.max_abs for o in result.outputs)
    text = f"{worst:.1e}" + ("" if result.status == "passed" else " FAIL")
    if any("node(s) ran on" in note for note in result.notes):
        text += " (GRU on CPU)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "parity.md")
    args = parser.parse_args()
    rows, reasons, notes = [], {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        for label, kwargs, export_kwargs in CASES:
            torch.manual_seed(0)
            gru = CustomGRU(8, 16, num_layers=2, bidirectional=True, batch_first=True, **kwargs)
            x = torch.randn(4, 50, 8)
            options = gru_onnx.options.groups_from_flat({**export_kwargs, "check": False})
            path = gru_onnx.export(gru, (x,), Path(tmp) / "m.onnx", **options.as_kwargs()).path
            check = gru_onnx.CheckOptions(providers=ALL, samples=3, seq_len=50, batch=4, skip_unavailable=True)
            report = gru_onnx.check_parity(None, path, check=check)
            rows.append((label, [cell(r) for r in report.results]))
            for r in report.results:
                if r.status == "skipped":
                    reasons[r.runtime] = r.reason
                notes.update(f"{r.runtime}: {n}" for n in r.notes)
            print(label, [cell(r) for r in report.results], flush=True)
    header = "| file | " + " | ".join(ALL_LABELS) + " |"
    lines = [header, "|---|" + "---:|" * len(ALL_LABELS)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    table = "\n".join(lines)
    if reasons:
        table += "\n\nSkipped here: " + "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) + "."
    if notes:
        table += "\n\nNotes: " + "; ".join(sorted(notes)) + "."
    text = (
        "# Parity by runtime\n\n"
        f"Machine: {machine()}.  \nVersions: {versions()}.  \n"
        f"Produced by `python benchmarks/parity_by_runtime.py` on {time.strftime('%Y-%m-%d')}.\n\n"
        "Max absolute error against PyTorch over 3 seeded samples (sequence length 50, batch 4), "
        "2-layer bidirectional batch-first GRU, input 8, hidden 16.\n\n" + table + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(table)


ALL_LABELS = [f"ORT {k}" if k != "openvino" else "OpenVINO" for k in ALL]

if __name__ == "__main__":
    main()
