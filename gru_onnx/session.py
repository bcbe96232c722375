"""``StreamingSession``: run a streaming file chunk by chunk, carrying its GRU states.

The session reads the state pairs from the file's metadata (:mod:`gru_onnx.streaming`), feeds
the last chunk's final states as the next chunk's initial states, and hides them from the
caller: ``run`` takes and returns only the file's other inputs and outputs, by name.

One session is one stream (or one batch of streams): calls from several threads are
serialised by a lock, so no state update is lost, but the chunks of different callers then
interleave in one state. Give each stream its own session, or each a batch row.

On ONNX Runtime the states stay where the provider keeps its tensors (on the GPU for CUDA and
TensorRT), as ONNX Runtime values bound with I/O binding: no copy through NumPy per call. They
are read back only when asked for (:attr:`StreamingSession.states`, or ``run(...,
as_numpy=False)`` for the outputs too). Other runtimes (OpenVINO) carry NumPy arrays.
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import onnx

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.metadata import check_against_file, declared_dims, find_metadata, load_model
from gru_onnx.options import check_threads
from gru_onnx.registry import expand_providers, runner_names
from gru_onnx.runners import Runner, open_runner
from gru_onnx.runners.onnxruntime import Binding
from gru_onnx.streaming import StatePair, state_pairs


@dataclass(frozen=True)
class StreamInterface:
    """What a streaming file takes and gives, read from the file: its state pairs, its other
    inputs and outputs (names in graph order), the states' dtypes and each input's batch axis."""

    pairs: tuple[StatePair, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    all_outputs: tuple[str, ...]
    state_dtypes: dict[str, np.dtype]
    batch_axes: dict[str, int]
    #: per non-state input: its NumPy dtype and axes (a size, or None where dynamic)
    input_types: dict[str, tuple[np.dtype, tuple[int | None, ...]]]

    @classmethod
    def of(cls, proto: onnx.ModelProto, path: str | os.PathLike[str] = "the file") -> StreamInterface:
        metadata = find_metadata(proto)
        if metadata is not None:  # a model given in memory: its states, inputs and sizes as the file's
            check_against_file(proto, metadata)
        pairs = tuple(state_pairs(metadata))
        if not pairs:
            raise GruOnnxUsageError(
                f"{path} is not a streaming file (no state pairs in its metadata); export it with streaming=True"
            )
        initializers = {t.name for t in proto.graph.initializer}
        states = {n for p in pairs for n in (p.input, p.output)}
        graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
        inputs = tuple(i.name for i in graph_inputs if i.name not in states)
        outputs = tuple(o.name for o in proto.graph.output)
        by_name = {i.name: i for i in graph_inputs}
        dtypes = {
            p.input: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(by_name[p.input].type.tensor_type.elem_type))
            for p in pairs
        }
        batch = pairs[0].shape[0]
        batch_axes = {}
        for info in graph_inputs:
            if info.name in states:
                continue
            dims = info.type.tensor_type.shape.dim
            named = [a for a, d in enumerate(dims) if isinstance(batch, str) and d.dim_param == batch]
            if named:  # the axis named like the states' batch axis
                batch_axes[info.name] = named[0]
            elif isinstance(batch, int) and dims:  # a static batch: axis 0, the whole-model rule
                batch_axes[info.name] = 0
        types = {}
        for name in inputs:
            tensor = by_name[name].type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
            types[name] = (np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)), dims)
        return cls(pairs, inputs, tuple(n for n in outputs if n not in states), outputs, dtypes, batch_axes, types)


def _reset_rows(rows: Any) -> list[Any]:
    """``reset()``'s rows as a list of batch indices (an integer, or an iterable of them); else a
    one-line usage error (a float, a string, an array of floats)."""
    if isinstance(rows, numbers.Integral) and not isinstance(rows, bool | np.bool_):
        return [rows]
    problem = f"reset rows must be a batch index or an iterable of them (integers), got {rows!r}"
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        raise GruOnnxUsageError(problem)
    try:
        picked = list(rows)
    except TypeError:  # a 0-d array: iterable by its type, not by its value
        raise GruOnnxUsageError(problem) from None
    bad = [r for r in picked if isinstance(r, bool | np.bool_) or not isinstance(r, numbers.Integral)]
    if bad:
        raise GruOnnxUsageError(f"reset rows must be batch indices (integers), got {bad[0]!r}")
    return picked


class StreamingSession:
    """A streaming file on one runtime, with its GRU states held between calls.

    ``run(feeds)`` takes the file's non-state inputs by name (NumPy arrays of the file's dtypes
    and shapes) and returns its non-state outputs by name. States start at zero (in the file's
    dtype) with the batch size of the first call; a call with another batch size is an error
    until :meth:`reset`. ``reset(rows)`` zeros the given batch rows (a stream that ended),
    ``reset()`` all of them and forgets the batch size. Calls from several threads are
    serialised (one session is one stream). ``io_binding`` keeps the states as ONNX Runtime values
    on the provider's device between calls; the default turns it on for GPU providers only (on
    the CPU it costs more than the copies it saves, see ``benchmarks/results/streaming.md``).
    ``providers`` are tried in order (``all``: every in-process runtime, the first that opens
    here is used); ``threads`` is a number of intra-op threads (1 to
    :data:`~gru_onnx.options.MAX_THREADS`), or None for the
    runtime's default. ``runner`` and ``model`` serve callers that opened the file already (the
    parity check): ``runner`` open on ``path``, ``model`` the file's proto (its inputs and outputs
    are checked against the file's). ``io_binding=True`` needs a runtime with I/O binding (ONNX
    Runtime). Misuse is a :class:`~gru_onnx.GruOnnxUsageError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[str] | str = ("cpu",),
        *,
        threads: int | None = None,
        runner: Runner | None = None,
        model: onnx.ModelProto | None = None,
        io_binding: bool | None = None,
    ) -> None:
        keys = _provider_keys(providers) if runner is None else ()
        check_threads(threads, allow_none=True)
        if io_binding is not None and not isinstance(io_binding, bool):
            raise GruOnnxUsageError(f"io_binding must be True, False or None (by the provider), got {io_binding!r}")
        if model is not None and not isinstance(model, onnx.ModelProto):
            raise GruOnnxUsageError(f"model must be the file's onnx.ModelProto, got a {type(model).__name__}")
        if runner is not None and not isinstance(runner, Runner):
            raise GruOnnxUsageError(f"runner must be a gru_onnx Runner open on the file, got a {type(runner).__name__}")
        self.interface = StreamInterface.of(model if model is not None else load_model(path), path)
        self.pairs = self.interface.pairs
        self.input_names = self.interface.input_names
        self.output_names = self.interface.output_names
        self._input_set = set(self.input_names)
        self._runner = runner if runner is not None else open_runner(path, keys, threads)
        self._owns_runner = runner is None
        try:
            if runner is not None and not _same_file(runner.path, path):
                raise GruOnnxUsageError(f"the runner given is open on {runner.path}, not on {path}")
            if model is not None:
                _check_model_is_file(model, self._runner, path)
            bind = getattr(self._runner, "binding", None)
            if io_binding and not callable(bind):
                raise GruOnnxUsageError(
                    f"io_binding=True needs ONNX Runtime's I/O binding; {self._runner.name} carries NumPy arrays "
                    "(leave io_binding None or False)"
                )
            if io_binding is None:  # measured: binding pays on a GPU, costs ~20 us a call on the CPU
                io_binding = getattr(self._runner, "provider", "cpu") != "cpu"
            #: I/O binding of the runner's session (ONNX Runtime), None for NumPy-only runtimes
            self._binding: Binding | None = bind() if callable(bind) and io_binding else None
        except BaseException:
            if self._owns_runner:
                self._runner.close()
            raise
        self._states: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def states(self) -> dict[str, np.ndarray]:
        """The current states by state-input name (NumPy copies, ``[batch, L*D, H]``); empty
        before the first call and after :meth:`reset`."""
        with self._lock:
            return {k: _to_numpy(v, copy=True) for k, v in (self._states or {}).items()}

    @property
    def io_binding(self) -> bool:
        """True when the states stay as ONNX Runtime values on the provider's device."""
        return self._binding is not None

    @property
    def batch_size(self) -> int | None:
        """The batch size the states have, or None before the first call."""
        states = self._states
        if states is None:
            return None
        first = next(iter(states.values()))
        return int((first.shape() if callable(first.shape) else first.shape)[0])

    def run(self, feeds: Mapping[str, np.ndarray], *, as_numpy: bool = True) -> dict[str, Any]:
        """Run one chunk; returns the non-state outputs by name and keeps the new states.
        ``as_numpy=False`` leaves the outputs as ONNX Runtime values where the provider keeps
        them (with I/O binding; NumPy arrays otherwise)."""
        self._check_open()
        if not isinstance(feeds, Mapping):
            raise GruOnnxUsageError(f"run() takes a mapping of input name to array, got a {type(feeds).__name__}")
        if feeds.keys() != self._input_set:
            missing = [n for n in self.input_names if n not in feeds]
            extra = [n for n in feeds if n not in self.input_names]
            problem = f"missing {missing[0]!r}" if missing else f"unknown input {extra[0]!r}"
            raise GruOnnxUsageError(f"{problem}: the session takes {', '.join(self.input_names)} (states are kept)")
        for name, array in feeds.items():
            if not isinstance(array, np.ndarray):
                dtype, dims = self.interface.input_types[name]
                raise GruOnnxUsageError(f"input {name!r} must be a NumPy array ({dtype}, {_shown(dims)}), got a "
                                        f"{type(array).__name__}")  # fmt: skip
        batch = self._batch_of(feeds)
        fixed = self.pairs[0].shape[0]
        if isinstance(fixed, int) and batch != fixed:
            raise GruOnnxUsageError(f"this chunk has batch size {batch}; the file's batch is fixed at {fixed}")
        for name, array in feeds.items():
            self._check_feed(name, array)
        with self._lock:
            self._check_open()
            if self._states is None:
                dtypes = self.interface.state_dtypes
                zeros = {p.input: np.zeros((batch, *p.shape[1:]), dtypes[p.input]) for p in self.pairs}
                self._states = {k: self._binding.upload(v) for k, v in zeros.items()} if self._binding else zeros
            elif batch != self.batch_size:
                raise GruOnnxUsageError(
                    f"this chunk has batch size {batch}, the session's states {self.batch_size}; "
                    "call reset() before changing the batch size"
                )
            names = list(self.interface.all_outputs)
            if self._binding is not None:
                outputs = self._binding.run({**feeds, **self._states}, names)
            else:
                outputs = self._runner.run({**feeds, **self._states})
            by_name = dict(zip(names, outputs, strict=True))
            self._states = {p.input: by_name[p.output] for p in self.pairs}
        return {n: _to_numpy(by_name[n]) if as_numpy else by_name[n] for n in self.output_names}

    def _check_open(self) -> None:
        if self._closed:
            raise GruOnnxUsageError("the streaming session is closed; open a new one")

    def _check_feed(self, name: str, array: np.ndarray) -> None:
        """One input against the file's type and shape, with a line naming what was expected."""
        dtype, dims = self.interface.input_types[name]
        shown = _shown(dims)
        if array.dtype != dtype:
            raise GruOnnxUsageError(f"input {name!r} is {array.dtype}; the file takes {dtype} {shown} (cast it first)")
        if array.ndim != len(dims) or any(d is not None and d != n for d, n in zip(dims, array.shape, strict=True)):
            raise GruOnnxUsageError(f"input {name!r} has shape {list(array.shape)}; the file takes {dtype} {shown}")
        if array.size == 0:
            raise GruOnnxUsageError(
                f"input {name!r} is empty (shape {list(array.shape)}): a chunk needs at least 1 step"
            )

    def _batch_of(self, feeds: Mapping[str, np.ndarray]) -> int:
        sizes = {feeds[n].shape[a] for n, a in self.interface.batch_axes.items() if feeds[n].ndim > a}
        if len(sizes) > 1:
            raise GruOnnxUsageError(f"the inputs disagree on the batch size: {sorted(sizes)}")
        if not sizes:
            raise GruOnnxUsageError("no input of the file carries the batch axis the states take")
        return sizes.pop()

    def reset(self, rows: Iterable[int] | None = None) -> None:
        """Zero the states: all of them (and forget the batch size), or only ``rows`` (batch indices)."""
        self._check_open()
        picked = None if rows is None else _reset_rows(rows)
        with self._lock:
            if picked is None or self._states is None:
                self._states = None
                return
            batch = self.batch_size or 0
            outside = [int(r) for r in picked if not -batch <= r < batch]
            if outside:
                raise GruOnnxUsageError(f"reset rows {outside} are outside the batch of {batch}")
            rows_ = [int(r) for r in picked]
            for name, state in self._states.items():
                if isinstance(state, np.ndarray):
                    state[rows_] = 0
                else:  # an ONNX Runtime value: its rows zeroed, written back in place
                    array = _to_numpy(state, copy=True)
                    array[rows_] = 0
                    state.update_inplace(array)
                    self._states[name] = state

    def close(self) -> None:
        """Release the runtime (when the session opened it); the session cannot run after."""
        with self._lock:
            if self._owns_runner and not self._closed:
                self._runner.close()
            self._closed = True

    def __enter__(self) -> StreamingSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _provider_keys(providers: Any) -> tuple[str, ...]:
    """The runner keys to try, in order: one key or a sequence of them, ``all`` expanded to every
    in-process runtime; anything else a usage error naming the valid keys."""
    if isinstance(providers, str):
        providers = (providers,)
    elif not isinstance(providers, Sequence) or not all(isinstance(p, str) for p in providers):
        valid = ", ".join(runner_names())
        raise GruOnnxUsageError(
            f"providers must be a provider key or a sequence of them ({valid}, all), got {providers!r}"
        )
    return expand_providers(tuple(providers))


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _signature(model: onnx.ModelProto) -> tuple[tuple[tuple[str, str, tuple[Any, ...]], ...], tuple[str, ...]]:
    """A proto's interface in the form :meth:`Runner.io_signature` gives (inputs that are not
    initializers, with ONNX Runtime's type names; output names)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = tuple(
        (i.name, f"tensor({onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type).lower()})",
         tuple(declared_dims(i)))
        for i in model.graph.input if i.name not in initializers
    )  # fmt: skip
    return inputs, tuple(o.name for o in model.graph.output)


def _check_model_is_file(model: onnx.ModelProto, runner: Runner, path: str | os.PathLike[str]) -> None:
    """``model`` given beside ``path`` must be that file: the same inputs (names, types, axes)
    and output names as the runtime opened (or, where it does not say, as the file holds)."""
    found = runner.io_signature()
    if found is None:
        found = _signature(load_model(path, weights="none"))
    given = _signature(model)
    if found != given:
        what = "inputs" if found[0] != given[0] else "outputs"
        have = [i[0] for i in given[0]] if what == "inputs" else list(given[1])
        want = [i[0] for i in found[0]] if what == "inputs" else list(found[1])
        detail = (
            f"{', '.join(have)} against {', '.join(want)}" if have != want else "the same names, other types or axes"
        )
        raise GruOnnxUsageError(f"the model given is not the file {path}: its {what} differ ({detail})")


def _shown(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _to_numpy(value: Any, copy: bool = False) -> np.ndarray:
    """A NumPy array from an ONNX Runtime value (read back from its device) or an array."""
    if isinstance(value, np.ndarray):
        return value.copy() if copy else value
    return np.array(value.numpy(), copy=True)
