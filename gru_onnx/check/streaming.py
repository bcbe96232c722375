"""The streaming check: chunk by chunk, states carried, against PyTorch on the whole sequence.

That equality is what a streaming user relies on. Each runtime runs every sample under each
chunk plan (by default: the whole sequence in one call, one step per call, and an uneven
split; a file with a fixed chunk length: chunks of that length) through a
:class:`~gru_onnx.session.StreamingSession`; the chunks' outputs are joined along their time
axes (outputs without one, e.g. a final state, are taken from the last chunk) and judged with
:func:`gru_onnx.check.runs.judge`, one result per runtime and plan.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from torch import nn

from gru_onnx.check.plain import prepare, report
from gru_onnx.check.results import ParityReport, RuntimeRun
from gru_onnx.check.runs import judge, one_line, run_each, runtimes
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.metadata import input_time_axes
from gru_onnx.options import CheckOptions
from gru_onnx.runners import Runner
from gru_onnx.samples import (
    Sample,
    derived_samples,
    file_scales,
    generate_samples,
    refuse_nonfinite,
    samples_from_npz,
    time_axes,
)
from gru_onnx.session import StreamingSession, StreamInterface
from gru_onnx.streaming import FRAME_LOCAL_HINT, resize_sequence, state_pairs

#: Chunk sizes of the default uneven split, cycled.
UNEVEN = (3, 1, 4, 2)
#: Sequence length of the check when neither the example nor --seq-len gives one.
DEFAULT_LENGTH = 12


def chunk_plans(total: int, fixed: int | None, chunks: Sequence[int] | None) -> list[tuple[str, list[int]]]:
    """``(label, chunk sizes)`` per plan for a sequence of ``total`` steps."""
    if fixed is not None:
        wrong = [c for c in chunks or () if c != fixed]
        if wrong:
            raise GruOnnxUsageError(f"the file takes chunks of exactly {fixed} steps; chunks of {wrong[0]} cannot run")
        return [(str(fixed), [fixed] * (total // fixed))]
    if chunks:
        plans = []
        for c in dict.fromkeys(chunks):
            if c < 1:
                raise GruOnnxUsageError(f"chunk sizes must be positive, got {c}")
            plans.append((str(c), [c] * (total // c) + ([total % c] if total % c else [])))
        return plans
    uneven: list[int] = []
    for c in itertools.cycle(UNEVEN):
        if sum(uneven) >= total:
            break
        uneven.append(min(c, total - sum(uneven)))
    return [("whole", [total]), ("1", [1] * total), ("+".join(map(str, UNEVEN)) + "...", uneven)]


def _view(proto: onnx.ModelProto, names: Iterable[str], axes: dict[str, int | None], seq: int | str) -> onnx.ModelProto:
    """A weightless copy of the file's interface: the non-state inputs, their time axes set to
    ``seq`` (a length, or a name for any length). The sample planners read only this."""
    view = onnx.ModelProto()
    wanted = set(names)
    for info in proto.graph.input:
        if info.name not in wanted:
            continue
        copy = view.graph.input.add()
        copy.CopyFrom(info)
        axis = axes.get(info.name)
        if axis is not None:
            dim = copy.type.tensor_type.shape.dim[axis]
            dim.Clear()
            if isinstance(seq, int):
                dim.dim_value = seq
            else:
                dim.dim_param = seq
    view.graph.output.extend(proto.graph.output)
    return view


def plan_stream_samples(
    proto: onnx.ModelProto,
    metadata: dict[str, Any],
    input_names: Sequence[str],
    *,
    args: tuple[Any, ...] | None,
    inputs: str | os.PathLike[str] | None,
    count: int,
    seq_len: int | None,
    batch: int | None,
    seed: int,
    scales: Sequence[float],
    budget: int,
) -> list[Sample]:
    """Whole-sequence samples: the ``.npz``, else the example fitted to the check's length and
    varied (batch grown, inputs scaled), else seeded random samples (lone-GRU files)."""
    axes = _input_axes(proto, metadata, input_names)
    stacks = metadata.get("stacks", [])
    lone = len(stacks) == 1 and stacks[0]["path"] == ""
    if inputs is not None:
        return samples_from_npz(_view(proto, input_names, axes, "seq"), inputs, metadata, lone)
    fixed = metadata.get("chunk")
    by_position = None
    if args is not None:
        tensors = iter(input_names)
        by_position = [axes.get(next(tensors)) if hasattr(a, "shape") else None for a in args]
        lengths = [a.shape[x] for a, x in zip(args, by_position, strict=True) if x is not None]
        length = seq_len or (lengths[0] if lengths else DEFAULT_LENGTH)
    else:
        length = seq_len or DEFAULT_LENGTH
    if fixed is not None:  # whole chunks, at least two so that a state is carried
        length = max(-(-length // fixed), 2) * fixed
    view = _view(proto, input_names, axes, length)
    if args is not None and by_position is not None:
        fitted = resize_sequence(args, by_position, length)
        return derived_samples(view, fitted, count=count, scales=scales, batch=batch, budget=budget)
    if lone:
        return generate_samples(
            view, metadata, count=count, seq_len=None, batch=batch, seed=seed, scales=scales, budget=budget
        )
    raise GruOnnxUsageError("no inputs for this file: give example args (--model) or --inputs FILE.npz")


def run_chunked(
    session: Any, feeds: dict[str, np.ndarray], sizes: Sequence[int], in_axes: dict[str, int | None],
    out_axes: Sequence[int | None],
) -> list[np.ndarray]:  # fmt: skip
    """One sample through ``session`` in chunks of ``sizes`` steps, from zero states; the
    outputs joined along their time axes (the last chunk's value where there is none)."""
    session.reset()
    pieces: list[list[np.ndarray]] = [[] for _ in out_axes]
    start = 0
    for size in sizes:
        chunk = {}
        for name, array in feeds.items():
            axis = in_axes.get(name)
            chunk[name] = array if axis is None else np.take(array, np.arange(start, start + size), axis=axis)
        outputs = session.run(chunk)
        for i, value in enumerate(outputs.values()):
            pieces[i].append(value)
        start += size
    return [np.concatenate(p, axis=a) if a is not None else p[-1] for p, a in zip(pieces, out_axes, strict=True)]


def check_streaming(
    source: nn.Module,
    kind: str,
    proto: onnx.ModelProto,
    metadata: dict[str, Any] | None,
    path: str | os.PathLike[str],
    args: tuple[Any, ...] | None,
    options: CheckOptions,
) -> ParityReport:
    """The streaming form of :func:`gru_onnx.check_parity` (which calls it); a ParityReport
    with one result per runtime and chunk plan."""
    keys, required = runtimes(options.providers, skip_unavailable=options.skip_unavailable)
    if metadata is None or not state_pairs(metadata):
        raise GruOnnxUsageError(f"{path} is not a streaming file (export it with --streaming)")
    interface = StreamInterface.of(proto, path)
    scales = options.scales or file_scales(metadata)
    samples = plan_stream_samples(
        proto, metadata, interface.input_names, args=args, inputs=options.inputs, count=options.samples,
        seq_len=options.seq_len, batch=options.batch, seed=options.seed, scales=scales, budget=options.memory_budget,
    )  # fmt: skip
    if not options.allow_nonfinite:
        refuse_nonfinite(samples)
    out_names = list(interface.output_names)
    prepared = prepare(source, kind, proto, metadata, samples, out_names, options, what="outputs besides its states")
    in_axes = _input_axes(proto, metadata, interface.input_names)
    by_output = dict(zip([o.name for o in proto.graph.output], time_axes(proto, metadata), strict=True))
    out_axes = [by_output[n] for n in out_names]
    plans = chunk_plans(_length(prepared.samples[0], in_axes), metadata.get("chunk"), options.chunks)

    def produce(runner: Runner) -> list[RuntimeRun]:
        session = StreamingSession(path, model=proto, runner=runner)
        runs = []
        for label, _ in plans:
            name = f"{runner.name}, chunks {label}"
            try:
                outputs = [
                    run_chunked(session, s.feeds, _sizes(plans, label, _length(s, in_axes)), in_axes, out_axes)
                    for s in prepared.samples
                ]
            except Exception as exc:
                runs.append(RuntimeRun(name, "error", reason=one_line(exc), notes=tuple(runner.notes)))
            else:
                runs.append(RuntimeRun(name, "ran", outputs, notes=tuple(runner.notes)))
        return runs

    results = [
        judge(run, prepared.references, out_names, out_axes, prepared.atol, prepared.rtol, prepared.magnitudes)
        for run in run_each(path, keys, produce, required=required)
    ]
    parity = report(path, prepared, results)
    parity.hint = FRAME_LOCAL_HINT if _only_chunking_failed(parity) else ""
    return parity


def _only_chunking_failed(report: ParityReport) -> bool:
    """True when a chunked run failed although the same runtime passed on the whole sequence
    (or no whole-sequence run was made): the case the frame-local hint explains."""
    failed = [r for r in report.results if r.status == "failed"]
    whole_failed = {r.runtime.split(", chunks")[0] for r in failed if r.runtime.endswith("chunks whole")}
    return any(not r.runtime.endswith("chunks whole") and r.runtime.split(", chunks")[0] not in whole_failed
               for r in failed)  # fmt: skip


def _input_axes(proto: onnx.ModelProto, metadata: dict[str, Any], names: Sequence[str]) -> dict[str, int | None]:
    ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in proto.graph.input if i.name in set(names)}
    return input_time_axes(metadata, ranks)


def _length(sample: Sample, in_axes: dict[str, int | None]) -> int:
    for name, array in sample.feeds.items():
        axis = in_axes.get(name)
        if axis is not None:
            return int(array.shape[axis])
    raise GruOnnxUsageError("the file has no input with a time axis")


def _sizes(plans: list[tuple[str, list[int]]], label: str, total: int) -> list[int]:
    """The plan ``label`` for a sample of ``total`` steps (samples may differ in length)."""
    sizes = dict(plans)[label]
    if sum(sizes) == total:
        return sizes
    fitted: list[int] = []
    for size in itertools.cycle(sizes):
        if sum(fitted) >= total:
            break
        fitted.append(min(size, total - sum(fitted)))
    return fitted
