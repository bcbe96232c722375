"""Benchmark: exporting a model over 2 GiB (external data), peak memory and time per phase.

The model is the tagger of issue #13: a 560k x 1024 float32 embedding (2.3 GB of weights) in
front of a CustomGRU and a linear head. Each phase runs in its own child process, so each peak
resident set size (``ru_maxrss`` of that child) is that phase's alone:

- ``build``: build the model only (the floor every other phase starts from);
- ``export``: build, then ``gru_onnx.export(..., check=None)`` with ``external_data`` left
  automatic (the model is over 2 GiB, so it must choose external data);
- ``check``: build, then ``gru_onnx.check_parity`` of the written pair (ONNX Runtime loads the
  weights from the data file);
- ``export-proto``: for comparison, the same export writing through a protobuf copy of the model
  (``ir.to_proto`` then ``onnx.save_model(..., save_as_external_data=True)``), the usual route
  that gru-onnx's writer (onnx_ir straight from the torch tensors) avoids.

The target (issue #13): the export's peak <= 3x the weights' size.

    python benchmarks/big_model.py                       # full size -> benchmarks/results/big_model.md
    python benchmarks/big_model.py --vocab 56000 --quick  # a 230 MB smoke run, printed only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VOCAB, EMBED, HIDDEN, TAGS = 560_000, 1024, 256, 17
RESULTS = Path(__file__).parent / "results" / "big_model.md"


def build(vocab: int) -> tuple[object, tuple[object, ...]]:
    """The tagger, seeded, with an example batch of token ids."""
    import torch
    from torch import nn

    from gru_onnx import CustomGRU

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, EMBED)
            self.rnn = CustomGRU(EMBED, HIDDEN, batch_first=True, activation="relu")
            self.head = nn.Linear(HIDDEN, TAGS)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            y, _ = self.rnn(self.embed(tokens))
            return self.head(y)

    torch.manual_seed(0)
    with torch.no_grad():
        model = Tagger().eval()
    tokens = torch.randint(0, vocab, (2, 12))
    return model, (tokens,)


def _write_through_protobuf() -> None:
    """Replace gru-onnx's writer with the protobuf route (for the comparison phase only)."""
    import onnx
    import onnx_ir as ir

    from gru_onnx import saving

    def save_model(model, path, *, external_data=None, check=True):  # same signature as saving.save_model
        path.parent.mkdir(parents=True, exist_ok=True)
        proto = ir.to_proto(model)
        location = f"{path.name}.data"
        onnx.save_model(
            proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location,
            size_threshold=saving.INLINE_TENSOR_BYTES,
        )  # fmt: skip
        return path.parent / location

    saving.save_model = save_model


def peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def phase(name: str, vocab: int, path: str) -> dict[str, object]:
    """Run one phase in this (child) process and return its measurements."""
    import torch

    import gru_onnx

    torch.set_num_threads(2)
    started = time.perf_counter()
    model, args = build(vocab)
    built = time.perf_counter()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    out: dict[str, object] = {"phase": name, "weights": weights, "build_s": built - started}
    if name == "export":
        from gru_onnx.saving import PROTOBUF_LIMIT

        small = weights < PROTOBUF_LIMIT  # a smaller run asks for external data; the full one must choose it
        out["external"] = "asked for (the model is under 2 GiB)" if small else "chosen automatically"
        saving = gru_onnx.SavingOptions(external_data=True if small else None)
        result = gru_onnx.export(
            model, args, path, graph=gru_onnx.GraphOptions(strategy="loop"),
            shapes=gru_onnx.ShapeOptions(dynamic_seq=True), saving=saving, check=None,
        )  # fmt: skip
        out["data_path"] = str(result.data_path)
        out["model_size"] = result.file_size
        out["data_size"] = result.data_size
    elif name == "export-proto":
        _write_through_protobuf()
        result = gru_onnx.export(
            model, args, path, graph=gru_onnx.GraphOptions(strategy="loop"),
            shapes=gru_onnx.ShapeOptions(dynamic_seq=True), check=None,
        )  # fmt: skip
        out["data_size"] = result.data_size
    elif name == "check":
        report = gru_onnx.check_parity(model, path, args, check=gru_onnx.CheckOptions(samples=2))
        out["passed"] = report.passed
        out["max_abs"] = report.max_abs
    out["seconds"] = time.perf_counter() - built
    out["peak_rss"] = peak_rss()
    return out


def run_child(name: str, vocab: int, path: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--vocab", str(vocab), "--path", path],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    """The CPU line of the other benchmarks, with the RAM this one depends on."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from strategies import machine as cpu_line

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu_line()}; {mem:.0f} GiB RAM (shared with other jobs)"


def versions() -> str:
    import onnx
    import onnx_ir
    import onnxruntime
    import torch

    import gru_onnx

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"onnx-ir {onnx_ir.__version__}, onnxruntime {onnxruntime.__version__}, gru-onnx {gru_onnx.__version__}"
    )


def code_version() -> str:
    """The commit the benchmark ran on, marked when tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return commit.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=VOCAB, help="embedding rows (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="print only, do not write the results file")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.phase:
        print(json.dumps(phase(opts.phase, opts.vocab, opts.path)))
        return
    with tempfile.TemporaryDirectory(prefix="gru_onnx_big_") as folder:
        path = str(Path(folder) / "tagger.onnx")
        rows = [run_child(name, opts.vocab, path) for name in ("build", "export", "check")]
        other = str(Path(folder) / "other" / "tagger.onnx")
        rows.append(run_child("export-proto", opts.vocab, other))
    weights = rows[0]["weights"]
    base, export, check, proto = rows
    lines = [
        "# Exporting a model over 2 GiB (external data)",
        "",
        f"Tagger: embedding {opts.vocab} x {EMBED} (float32), CustomGRU({EMBED}, {HIDDEN}, relu, loop strategy,"
        f" dynamic sequence), Linear({HIDDEN}, {TAGS}); weights {weights / 1e9:.2f} GB ({gib(weights)}).",
        "",
        f"Files: model {export['model_size']} bytes + data {export['data_size']} bytes"
        f" ({Path(str(export['data_path'])).name}); external data {export['external']}.",
        "",
        "Each phase is its own process; peak RSS is that process's `ru_maxrss`, model build included.",
        "",
        "| phase | peak RSS | x weights | over the build | time (after the build) |",
        "|---|---|---|---|---|",
        f"| build the model only | {gib(base['peak_rss'])} | {base['peak_rss'] / weights:.2f} | - |"
        f" {base['build_s']:.1f} s (the build) |",
        f"| export, no check | {gib(export['peak_rss'])} | {export['peak_rss'] / weights:.2f} |"
        f" {gib(export['peak_rss'] - base['peak_rss'])} | {export['seconds']:.1f} s |",
        f"| check (ONNX Runtime CPU, 2 samples) | {gib(check['peak_rss'])} | {check['peak_rss'] / weights:.2f} |"
        f" {gib(check['peak_rss'] - base['peak_rss'])} | {check['seconds']:.1f} s |",
        f"| for comparison: export through a protobuf copy, no check | {gib(proto['peak_rss'])} |"
        f" {proto['peak_rss'] / weights:.2f} | {gib(proto['peak_rss'] - base['peak_rss'])} |"
        f" {proto['seconds']:.1f} s |",
        "",
        f"Target: export peak <= 3x the weights: {'met' if export['peak_rss'] <= 3 * weights else 'NOT met'}"
        f" ({export['peak_rss'] / weights:.2f}x). Check: {'passed' if check['passed'] else 'FAILED'},"
        f" max abs error {check['max_abs']:.3g}.",
        "",
        f"Machine: {machine()}.",
        f"Versions: {versions()}; code at commit {code_version()}.",
        f"Command: `python benchmarks/big_model.py{'' if opts.vocab == VOCAB else f' --vocab {opts.vocab}'}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not opts.quick:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
