"""Export strategies: how one GRU stack becomes ONNX, one module each, in a table users can extend.

Every strategy has the same signature, ``build(op, stack) -> StackResult`` (see
:mod:`gru_onnx.exporters.base`); the built-in ones register themselves on import, here.
"""

from gru_onnx.exporters import auto, loop, native, unrolled  # noqa: F401 (they register themselves)
from gru_onnx.exporters.base import (
    STRATEGIES,
    TARGETS,
    StackInputs,
    StackResult,
    Strategy,
    get_strategy,
    register_strategy,
)

__all__ = ["STRATEGIES", "TARGETS", "StackInputs", "StackResult", "Strategy", "get_strategy", "register_strategy"]
