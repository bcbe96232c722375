"""What a check produces: runs, verdicts per runtime, weight comparisons, the report that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gru_onnx.check.compare import OutputComparison
from gru_onnx.weights import WeightMismatch


@dataclass(frozen=True)
class RuntimeRun:
    """What one runtime produced for every sample, or why it produced nothing."""

    runtime: str
    status: str  # "ran", "error" or "skipped"
    outputs: list[list[np.ndarray]] = field(default_factory=list)
    reason: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeResult:
    """One runtime's verdict: passed, failed, error (could not run the file) or skipped."""

    runtime: str
    status: str
    outputs: tuple[OutputComparison, ...] = ()
    reason: str = ""
    notes: tuple[str, ...] = ()



@dataclass(frozen=True)
class WeightCheck:
    """One GRU stack's weights: whether the graph reads the tensors the metadata names (``wiring``
    problems, found by ``method``), and, with a source, the stored values against its parameters
    (``compared`` False when the reference was rebuilt from the file itself)."""

    stack: str
    layout: str
    mismatches: tuple[WeightMismatch, ...] = ()
    method: str = ""
    wiring: tuple[str, ...] = ()
    compared: bool = True

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.wiring

    @property
    def where(self) -> str:
        return repr(self.stack) if self.stack else "the GRU"

    def describe_failure(self) -> str:
        lines = [f"weights of {self.where}: {problem}" for problem in self.wiring]
        if self.mismatches:
            lines.append(f"weights of {self.where} differ from the source: "
                         + "; ".join(m.describe() for m in self.mismatches))  # fmt: skip
        return "; ".join(lines)

    def describe(self) -> str:
        """One line: the verdict, and which checks ran."""
        if not self.passed:
            return self.describe_failure()
        what = "match the source" if self.compared else "are the ones the graph reads"
        return f"weights of {self.where}: {what} ({self.layout} layout; checked: {self.method})"



@dataclass
class ParityReport:
    """Per runtime and output errors of an exported file against its PyTorch source."""

    results: list[RuntimeResult]
    atol: float
    rtol: float
    file: str = ""
    dtype: str = "float32"
    reference: str = "model"
    samples: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    weights: list[WeightCheck] = field(default_factory=list)
    #: A line that explains the failure's likely cause (given with the failures, only then).
    hint: str = ""

    @property
    def passed(self) -> bool:
        """True when at least one runtime ran, every runtime that ran passed, and the stored
        weights match the source's (when there was a source to compare with)."""
        ran = [r for r in self.results if r.status != "skipped"]
        return bool(ran) and all(r.status == "passed" for r in ran) and all(w.passed for w in self.weights)

    def rule(self) -> str:
        """The pass rule as it was applied: atol is scaled by each sample's input magnitude
        (RMS of its floating inputs, at least 1), so a reader can check any printed error."""
        largest = max((float(s.get("magnitude", 1.0)) for s in self.samples), default=1.0)
        if largest <= 1.0:
            return f"pass if |onnx - torch| <= {self.atol:g} + {self.rtol:g}*|torch|"
        return (
            f"pass if |onnx - torch| <= {self.atol:g}*s + {self.rtol:g}*|torch|, s the sample's input RMS "
            f"(at least 1; up to {largest:.3g} here)"
        )

    @property
    def max_abs(self) -> float:
        errors = [o.max_abs for r in self.results for o in r.outputs]
        return max(errors) if errors else float("nan")

    def failures(self) -> list[str]:
        """One line per runtime that failed or could not run the file (empty when passed)."""
        lines = [w.describe_failure() for w in self.weights if not w.passed]
        for r in self.results:
            if r.status == "error":
                lines.append(f"{r.runtime}: could not run the file: {r.reason}")
            elif r.status == "failed":
                lines.extend(f"{r.runtime}: {o.describe_failure()}" for o in r.outputs if not o.passed)
        if not lines and not self.passed:
            lines.append("no runtime could run the file")
        if lines and self.hint:
            lines.append(self.hint)
        return lines

    def summary(self) -> str:
        """Plain lines: one per runtime and output, failures spelled out, then warnings."""
        lines = [f"warning: {w}" for w in self.warnings]
        lines += [w.describe() for w in self.weights]
        for r in self.results:
            if r.status in ("skipped", "error"):
                lines.append(f"{r.runtime}: {r.status} ({r.reason})")
                continue
            for o in r.outputs:
                verdict = "ok" if o.passed else "FAIL: " + o.describe_failure()
                lines.append(f"{r.runtime} {o.name}: max abs {o.max_abs:.3g}, max rel {o.max_rel:.3g} {verdict}")
        return "\n".join(lines)

