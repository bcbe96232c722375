"""Parity gates for users' test suites.

``assert_parity`` raises an ``AssertionError`` carrying the report table when an exported file
does not match its PyTorch source. Installed as a pytest plugin, it also provides the
``gru_onnx_export`` fixture: export into the test's temporary directory and gate on parity in
one call::

    def test_tagger_exports(gru_onnx_export):
        model, args = make_model()
        result = gru_onnx_export(model, args, graph=GraphOptions(strategy="auto"))
        assert result.num_nodes < 5000
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from gru_onnx.exporting import ExportResult
    from gru_onnx.parity import ParityReport

__all__ = ["assert_parity", "gru_onnx_export"]


def assert_parity(
    model: nn.Module | None,
    onnx_path: str | os.PathLike[str],
    args: Sequence[Any] | Any = None,
    **kwargs: Any,
) -> ParityReport:
    """Check ``onnx_path`` against ``model`` (see ``gru_onnx.check_parity`` for ``kwargs``);
    raise ``AssertionError`` with the report table unless every runtime that ran passed.
    (Imports are local: this module is a pytest plugin, loaded by every pytest run.)"""
    from gru_onnx.parity import check_parity
    from gru_onnx.report import render_text

    report = check_parity(model, onnx_path, args, **kwargs)
    if not report.passed:
        raise AssertionError("ONNX parity failed: " + " | ".join(report.failures()) + "\n" + render_text(report))
    return report


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def gru_onnx_export(tmp_path: Any) -> Callable[..., ExportResult]:
        """Export a model into the test's tmp dir and assert parity; returns the ExportResult.

        Keyword arguments are ``gru_onnx.export``'s option groups (``check=CheckOptions(providers=
        ("cpu", "openvino"))`` picks the runtimes of the parity gate, default CPU); ``filename``
        names the file in the tmp dir.
        """
        from gru_onnx.exporting import export
        from gru_onnx.report import render_text

        def run(model: nn.Module, args: Sequence[Any], *, filename: str = "model.onnx", **kwargs: Any) -> ExportResult:
            if "check" in kwargs and kwargs["check"] is None:
                raise TypeError("gru_onnx_export gates on parity: give check=CheckOptions(...), not None")
            result = export(model, args, tmp_path / filename, **kwargs)
            report = result.parity
            if report is not None and not report.passed:
                summary = " | ".join(report.failures())
                raise AssertionError(f"ONNX parity failed for {result.path}: {summary}\n" + render_text(report))
            return result

        return run
