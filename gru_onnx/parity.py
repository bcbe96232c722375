"""``gru_onnx.check_parity``: run an exported file on runtimes and compare it with its PyTorch source.

The file is loaded once and the source resolved once (the given model, or one rebuilt from
the file's metadata and weights or a checkpoint); a streaming file is then checked chunk by
chunk (:mod:`gru_onnx.check.streaming`), any other in one call per sample
(:mod:`gru_onnx.check.plain`). Rendering (table, JSON, plot) lives in :mod:`gru_onnx.report`.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from gru_onnx.check.plain import check_plain
from gru_onnx.check.reference import source
from gru_onnx.check.results import ParityReport, RuntimeResult
from gru_onnx.check.streaming import check_streaming
from gru_onnx.irversion import ir_report
from gru_onnx.metadata import find_metadata, load_model
from gru_onnx.options import CheckOptions
from gru_onnx.trees import as_args

__all__ = ["ParityReport", "RuntimeResult", "check_parity"]

_CHECK = CheckOptions()


def check_parity(
    model: nn.Module | None,
    onnx_path: str | os.PathLike[str],
    args: Any = None,
    *,
    check: CheckOptions = _CHECK,
    checkpoint: str | os.PathLike[str] | None = None,
) -> ParityReport:
    """Run ``onnx_path`` on the runtimes ``check`` names and compare it with its PyTorch source.

    ``model`` is the source (eval mode is used); None rebuilds it from the file's metadata and
    initializers (lone-GRU files), or with ``checkpoint`` from the metadata and the checkpoint's
    weights. ``args`` are example inputs: the check runs them and variations of them; without
    them it draws seeded samples. With a source (``model`` or ``checkpoint``) the file's GRU
    weights are compared with it too. A streaming file is always run chunk by chunk.
    """
    proto = load_model(onnx_path)
    metadata = find_metadata(proto)
    module, kind = source(model, proto, metadata, checkpoint)
    example = as_args(args) if args is not None else None
    if check.streaming or (metadata or {}).get("streaming"):
        report = check_streaming(module, kind, proto, metadata, onnx_path, example, check)
    else:
        report = check_plain(module, kind, proto, metadata, onnx_path, example, check)
    if (warning := ir_report(proto).warning()) is not None:
        report.warnings.append(warning)
    return report
