"""Running a file on runtimes: the one loop that opens each runtime, runs, and turns what it
produced into a verdict per runtime (comparison happens in :mod:`gru_onnx.check.compare`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from gru_onnx import registry
from gru_onnx.check.compare import compare
from gru_onnx.check.results import RuntimeResult, RuntimeRun
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.runners import Runner, RuntimeUnavailable, make_runner, unavailable_reason
from gru_onnx.samples import Sample


def runtimes(providers: Sequence[str], *, skip_unavailable: bool) -> tuple[list[str], set[str]]:
    """The runner keys to run, and those that must run: ``all`` is every in-process runtime
    available here (the others reported as skipped); a runtime asked for by name that cannot
    run here is a usage error unless ``skip_unavailable``."""
    keys: list[str] = []
    required: set[str] = set()
    for key in providers:
        if key == "all":
            keys.extend(k for k in registry.expand_providers(("all",)) if k not in keys)
            continue
        registry.runner_name(key)
        if not skip_unavailable:
            if reason := unavailable_reason(key):
                raise GruOnnxUsageError(reason)
            required.add(key)
        if key not in keys:
            keys.append(key)
    if skip_unavailable and keys:  # (without it each one named was found usable above)
        reasons = [unavailable_reason(k) for k in keys]
        if all(reasons):  # every one would be skipped: nothing would be compared
            raise GruOnnxUsageError("no runtime asked for can run here: " + "; ".join(r for r in reasons if r))
    return keys, required


def run_each(
    path: str | os.PathLike[str],
    keys: Iterable[str],
    produce: Callable[[Runner], Iterable[RuntimeRun]],
    *,
    required: Iterable[str] = (),
) -> Iterator[RuntimeRun]:
    """Open each runtime once, let ``produce`` run the file on it, close it. A runtime that cannot
    run here is skipped (a usage error when it is ``required``); one that cannot load the file is
    an error run, not a skip."""
    needed = set(required)
    for key in keys:
        runner = make_runner(key, path)
        try:
            runner.open()
        except RuntimeUnavailable as exc:
            if key in needed:
                raise GruOnnxUsageError(str(exc)) from None
            yield RuntimeRun(runner.name, "skipped", reason=str(exc))
            continue
        except Exception as exc:  # the runtime cannot load this file: a failure, not a skip
            yield RuntimeRun(runner.name, "error", reason=one_line(exc), notes=tuple(runner.notes))
            continue
        try:
            yield from produce(runner)
        finally:
            runner.close()


def run_samples(runner: Runner, samples: Sequence[Sample]) -> list[RuntimeRun]:
    """Every sample through one open runner: one run, or an error run with the runtime's line."""
    try:
        outputs = [runner.run(s.feeds) for s in samples]
    except Exception as exc:
        return [RuntimeRun(runner.name, "error", reason=one_line(exc), notes=tuple(runner.notes))]
    return [RuntimeRun(runner.name, "ran", outputs, notes=tuple(runner.notes))]


def judge(
    run: RuntimeRun,
    references: Sequence[Sequence[np.ndarray]],
    names: Sequence[str],
    axes: Sequence[int | None],
    atol: float,
    rtol: float,
    scales: Sequence[float] | None = None,
) -> RuntimeResult:
    """One runtime's verdict: its outputs compared with the references, output by output."""
    if run.status != "ran":
        return RuntimeResult(run.runtime, run.status, reason=run.reason, notes=run.notes)
    try:
        comparisons = tuple(
            compare(name, [r[i] for r in references], [a[i] for a in run.outputs], atol, rtol, axes[i], scales)
            for i, name in enumerate(names)
        )
    except GruOnnxUsageError as exc:  # an output of the wrong shape: this runtime fails
        return RuntimeResult(run.runtime, "error", reason=str(exc), notes=run.notes)
    status = "passed" if all(c.passed for c in comparisons) else "failed"
    return RuntimeResult(run.runtime, status, comparisons, notes=run.notes)


def one_line(exc: BaseException) -> str:
    """A runtime's error as one line: its informative lines joined, location banners dropped."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    banner = re.compile(r"^(Exception from |Check '.*' failed at |FrontEnd API failed with)")
    useful = [line for line in lines if not banner.match(line)] or lines or [type(exc).__name__]
    # A runtime's own verdict ("Unsupported ...", "Unknown ...") goes first: the context can be long.
    verdicts = [line for line in useful if re.match(r"^(Unsupported|Unknown|Not supported)", line)]
    useful = verdicts + [line for line in useful if line not in verdicts]
    text = " | ".join(useful)
    return text if len(text) <= 400 else text[:397] + "..."
