"""Tests call the API with flat option fields (``strategy="loop", atol=1e-4``), mapped onto the option
groups the way a ``--model`` factory's options are (:func:`gru_onnx.options.groups_from_flat`)."""

from __future__ import annotations

from typing import Any

import gru_onnx
from gru_onnx.options import CheckOptions, QuantizeOptions, SavingOptions, TritonOptions, groups_from_flat
from gru_onnx.quantization import quantize as _quantize
from gru_onnx.triton import package_triton as _package_triton


def export(model: Any, args: Any, f: Any, **flat: Any) -> gru_onnx.ExportResult:
    """``gru_onnx.export`` with flat option fields."""
    return gru_onnx.export(model, args, f, **groups_from_flat(flat).as_kwargs())


def check_parity(model: Any, path: Any, args: Any = None, *, checkpoint: Any = None, **flat: Any) -> Any:
    """``gru_onnx.check_parity`` with the check group's fields flat (``streaming`` as the check's,
    a list of chunk sizes meaning ``chunks``)."""
    if isinstance(flat.get("streaming"), list | tuple):
        flat["chunks"] = tuple(flat.pop("streaming"))
    return gru_onnx.check_parity(model, path, args, check=CheckOptions(**flat), checkpoint=checkpoint)


def quantize(source: Any, target: Any, *, mode: str = "dynamic", per_channel: bool = True, external_data: Any = None):
    """``gru_onnx.quantize`` with the quantization and saving fields flat."""
    return _quantize(source, target, QuantizeOptions(mode, per_channel), saving=SavingOptions(external_data))


def package_triton(path: Any, repo: Any, **fields: Any):
    """``gru_onnx.package_triton`` with the Triton fields flat."""
    return _package_triton(path, repo, TritonOptions(**fields))
