"""The ``gru-onnx`` command line: a thin layer over the Python API, built from argument groups.

Each command is a module (``export_cmd``, ``check_cmd``, ...) registering itself on the group
in :mod:`gru_onnx.cli.app`; its flags come from the groups of :mod:`gru_onnx.cli.groups`, each
mapping onto one option object of :mod:`gru_onnx.options`. Heavy imports (torch, onnx) happen
inside the commands, so ``--help`` stays fast.
"""

from gru_onnx.cli import (  # noqa: F401 (each registers its command)
    activations_cmd,
    bench_cmd,
    check_cmd,
    export_cmd,
    inspect_cmd,
    package_cmd,
    quantize_cmd,
    setup_cmd,
)
from gru_onnx.cli.app import cli, main

__all__ = ["cli", "main"]
