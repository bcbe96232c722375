"""Streaming export: lift every CustomGRU call's state to a graph input/output pair.

With ``gru_onnx.export(..., streaming=True)`` the model is traced as usual (its ``forward`` is
unchanged, each CustomGRU call a placeholder without ``h0``); while the placeholders are
written, each call gets its initial state from a new graph input and gives its final state
as a new graph output. The state tensors are batch-first, ``[batch, num_layers *
num_directions, hidden]`` (a server batching streams along axis 0 can carry them); inside
the graph one Transpose on each side turns them into the ``[L*D, batch, H]`` the strategies
take. As the states never pass through ``torch.export``, they need no ``dynamic_shapes``: their
batch axis is the very axis (name or size) of the GRU input's batch, the other two are static.

Names (documented in docs/guides/streaming.md): a lone CustomGRU gets ``state_in``/``state_out``; in a whole
model the module path with dots as ``_`` plus ``_state_in``/``_state_out`` (``encoder_gru_state_in``),
``_1``, ``_2`` appended for its second, third call; a name starting with a digit (a Sequential's
``0``) gets the prefix ``gru_``; a name taken already (a user's input, say) gets ``_`` until free.
The file's metadata lists the pairs under ``"streaming"`` in graph order (the order of the calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import onnx_ir as ir
import torch
from torch import nn

from gru_onnx import naming
from gru_onnx.errors import ExportError, GruOnnxUsageError
from gru_onnx.module import CustomGRU
from gru_onnx.options import StreamingOptions
from gru_onnx.spec import GRUSpec

LONE_NAMES = ("state_in", "state_out")
FRAME_LOCAL_HINT = (
    "streaming is exact only when everything outside the GRUs is frame-local: a convolution, pooling, "
    "normalisation or attention over time sees only the current chunk"
)


@dataclass(frozen=True)
class StatePair:
    """One lifted state: graph input and output names, the module path, and the shape
    ``[batch, L*D, H]`` with the batch as its axis name (dynamic) or size (static)."""

    input: str
    output: str
    module: str
    shape: tuple[str | int, int, int]

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "module": self.module, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatePair:
        shape = data["shape"]
        return cls(data["input"], data["output"], data["module"], (shape[0], int(shape[1]), int(shape[2])))


def state_pairs(metadata: Mapping[str, Any] | None) -> list[StatePair]:
    """The state pairs a streaming file's metadata lists (empty for other files)."""
    streaming = (metadata or {}).get("streaming") or {}
    return [StatePair.from_json(s) for s in streaming.get("states", [])]


def excluded(path: str, exclude: Sequence[str]) -> bool:
    """True when ``path`` is one of ``exclude`` or lies under one (``decoder`` covers ``decoder.gru``)."""
    return any(path == e or path.startswith(e + ".") for e in exclude)


def check_modules(grus: Sequence[tuple[str, CustomGRU]], exclude: Sequence[str]) -> None:
    """Refuse, before tracing, what cannot stream: a bidirectional GRU reads the future."""
    known = {path for path, _ in grus}
    for name in exclude:
        if not any(excluded(path, (name,)) for path in known):
            raise GruOnnxUsageError(
                f"streaming_exclude names {name!r}, which is no CustomGRU (or module holding one) of the model; "
                f"its CustomGRUs: {', '.join(repr(p) for p in sorted(known))}"
            )
    for path, gru in grus:
        if gru.spec.bidirectional and not excluded(path, exclude):
            raise ExportError(
                f"{_gru(path)} is bidirectional and cannot stream: its backward direction "
                "reads frames that have not arrived yet"
            )


def _gru(path: str) -> str:
    return f"the CustomGRU {path!r}" if path else "the CustomGRU"


@dataclass
class StateLifter:
    """Adds the state pair of each CustomGRU call while the placeholders are written."""

    exclude: tuple[str, ...] = ()
    #: the batch the model's inputs carry on axis 0 (a lone GRU: by its layout): the axis name
    #: when dynamic, the size when static; None skips the check
    batch: str | int | None = None
    taken: set[str] = field(default_factory=set)
    pairs: list[StatePair] = field(default_factory=list)
    _calls: dict[str, int] = field(default_factory=dict)
    _pending: list[tuple[ir.Value, ir.Value, str, str]] = field(default_factory=list)

    def initial_state(
        self, op: Any, graph: ir.Graph, spec: GRUSpec, cfg: Mapping[str, Any], x: ir.Value
    ) -> tuple[ir.Value | None, Callable[[Any, ir.Value], None]]:
        """The ``h0`` ([L*D, B, H]) this call reads, and a function to call with its ``y_h``;
        ``(None, no-op)`` for an excluded call."""
        path = cfg["path"]
        if excluded(path, self.exclude):
            return None, lambda op, y_h: None
        if cfg["has_h0"]:
            if not path:
                raise ExportError(
                    "the CustomGRU is given an explicit initial state (h0): a streaming file takes it from its "
                    "state_in input instead; leave h0 out of the example"
                )
            raise ExportError(
                f"{_gru(path)} receives an explicit initial state from the model, so it cannot take one from the "
                f"stream; exclude it (streaming_exclude=({path!r},), --streaming-exclude {path}) or do not pass it "
                "a state"
            )
        if cfg["has_lengths"]:
            raise ExportError(
                f"{_gru(path)} is given lengths: streaming files do not take lengths (a padded "
                "chunk would advance the state past a stream's end); send each stream's frames as they come and "
                "reset() the rows of streams that end"
            )
        call = self._calls[path] = self._calls.get(path, -1) + 1
        names = self._names(path, call)
        batch = x.shape[0 if cfg["batch_first"] else 1] if x.shape is not None else None
        batch_dim: str | int = batch if isinstance(batch, int) else str(batch or "batch")
        if self.batch is not None and batch_dim != self.batch:
            raise GruOnnxUsageError(
                f"{_gru(path)} gets {batch_dim!r} as its batch axis where the model's inputs carry the batch "
                f"({self.batch!r}): streaming needs batch-first inputs (axis 0 batch, axis 1 time); transpose "
                "inside forward so the model takes [batch, time, ...]"
            )
        rows = spec.num_layers * spec.num_directions
        state_in = ir.Value(
            name=names[0], type=ir.TensorType(x.dtype), shape=ir.Shape([batch_dim, rows, spec.hidden_size])
        )
        graph.inputs.append(state_in)
        self.pairs.append(StatePair(names[0], names[1], path, (batch_dim, rows, spec.hidden_size)))
        h0 = op.Transpose(state_in, perm=[1, 0, 2])

        def finish(op: Any, y_h: ir.Value) -> None:
            state_out = op.Transpose(y_h, perm=[1, 0, 2])
            state_out.type, state_out.shape = state_in.type, ir.Shape([batch_dim, rows, spec.hidden_size])
            graph.outputs.append(state_out)
            self._pending.append((state_out, state_in, names[1], names[0]))

        return h0, finish

    def _names(self, path: str, call: int) -> tuple[str, str]:
        if path:
            base = naming.sanitize(path.replace(".", "_"))
            base = f"gru_{base}" if base[0].isdigit() else base
            suffix = f"_{call}" if call else ""
            names = [f"{base}_state_in{suffix}", f"{base}_state_out{suffix}"]
        else:
            names = [f"{n}_{call}" if call else n for n in LONE_NAMES]
        for i, name in enumerate(names):
            while name in self.taken:
                name += "_"
            self.taken.add(name)
            names[i] = name
        return names[0], names[1]

    def name_outputs(self, graph: ir.Graph) -> None:
        """Give the state outputs their names (after every placeholder is written, so that
        no value the strategies made later can take them)."""
        for state_out, state_in, out_name, in_name in self._pending:
            naming.claim(graph, state_in, in_name)
            naming.claim(graph, state_out, out_name)

    def metadata(self) -> dict[str, Any]:
        return {"states": [p.to_json() for p in self.pairs]}


# --------------------------------------------------------------------------------------------
# Time axes of the inputs (for chunking; the outputs' are probed by gru_onnx.axes)
# --------------------------------------------------------------------------------------------


def input_sequence_axes(model: nn.Module, args: Sequence[Any]) -> list[int | None]:
    """The time axis of each top-level tensor argument: a CustomGRU's by its layout (axis 0 of
    an unbatched input), any other model's axis 1 (the batch-first rule of whole-model export);
    None for tensors of rank < 2 and for non-tensors."""
    axes: list[int | None] = []
    for i, arg in enumerate(args):
        if not isinstance(arg, torch.Tensor):
            axes.append(None)
        elif isinstance(model, CustomGRU):
            axes.append((1 if model.spec.batch_first and arg.dim() == 3 else 0) if i == 0 else None)
        else:
            axes.append(1 if arg.dim() >= 2 else None)
    return axes


def resize_sequence(args: Sequence[Any], axes: Sequence[int | None], length: int) -> tuple[Any, ...]:
    """``args`` with every time axis cut or cyclically extended to ``length`` steps."""
    resized = []
    for arg, axis in zip(args, axes, strict=True):
        if axis is None or arg.shape[axis] == length:
            resized.append(arg)
            continue
        n = arg.shape[axis]
        resized.append(arg.index_select(axis, torch.arange(length) % n))
    return tuple(resized)


def sequence_length(args: Sequence[Any], axes: Sequence[int | None]) -> int:
    """The example's length (the first tensor with a time axis)."""
    for arg, axis in zip(args, axes, strict=True):
        if axis is not None:
            return int(arg.shape[axis])
    raise GruOnnxUsageError("streaming export needs an input with a time axis (axis 1 of a batch-first input)")


# --------------------------------------------------------------------------------------------
# The plan of a streaming export
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPlan:
    """A streaming export's decisions: the example it traces (``chunk`` steps long when fixed)
    and which axis of each input is time (the outputs' are probed as for every export)."""

    args: tuple[Any, ...]
    chunk: int | None
    input_axes: list[int | None]

    def batch(self, dynamic: bool) -> str | int | None:
        """What every streamed GRU's batch axis must be: ``batch`` when dynamic, else the
        example's batch size (the axis before the first input's time axis)."""
        if dynamic:
            return "batch"
        for arg, axis in zip(self.args, self.input_axes, strict=True):
            if axis is not None:
                return int(arg.shape[0 if axis == 1 else 1])
        return None

    def input_axes_by_name(self, graph: ir.Graph, lifter: StateLifter) -> dict[str, int | None]:
        """The time axis of each graph input by name (state inputs left out)."""
        states = {p.input for p in lifter.pairs}
        inputs = [v.name for v in graph.inputs if not v.is_initializer() and v.name not in states]
        tensor_axes = [a for a, arg in zip(self.input_axes, self.args, strict=True) if isinstance(arg, torch.Tensor)]
        return dict(zip(inputs, tensor_axes, strict=True))


def plan(
    model: nn.Module, args: tuple[Any, ...], grus: Sequence[tuple[str, CustomGRU]], options: StreamingOptions
) -> StreamPlan:
    """Check a streaming request before the export's work, and fit the example to it."""
    bad = [type(a).__name__ for a in args if a is not None and not isinstance(a, torch.Tensor)]
    if bad:
        raise GruOnnxUsageError(f"streaming exports take tensor arguments only, got a {bad[0]}")
    if isinstance(model, CustomGRU) and isinstance(args[0], torch.Tensor) and args[0].dim() == 2:
        raise GruOnnxUsageError(
            "streaming needs batched input (3-D, batch as the states' axis 0); add a batch axis of size 1"
        )
    check_modules(grus, options.exclude)
    axes = input_sequence_axes(model, args)
    length = sequence_length(args, axes)
    # A dynamic time axis needs an example of at least 2 steps; a fixed one exactly ``chunk``.
    wanted = options.chunk if options.chunk is not None else max(length, 2)
    return StreamPlan(resize_sequence(args, axes, wanted), options.chunk, axes)
