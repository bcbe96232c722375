"""Keras 3 models -> PyTorch modules with a CustomGRU per Keras GRU (``gru_onnx.from_keras``).

A layer converter: the Keras functional graph is walked in topological order and each layer
becomes a torch module taken from a table keyed by the Keras class name (:data:`CONVERTERS`).
The result is plain torch (weights copied as NumPy), so ``gru_onnx.export`` treats it like any
model and Keras is not needed to export it; the Keras model is only read, never changed.
"""

from __future__ import annotations

import functools
import inspect
import keyword
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gru_onnx.activations import BoundActivation
from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.keras.backend import ActivationModule, ActivationTable, import_keras, variable_array
from gru_onnx.module import CustomGRU


def _zrh_to_rzn(w: np.ndarray) -> np.ndarray:
    """Keras' gate blocks (z, r, h) along the last axis -> PyTorch's order (r, z, n)."""
    z, r, h = np.split(w, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


class KerasGRU(nn.Module):
    """A Keras GRU layer: a batch-first CustomGRU plus Keras' ``go_backwards`` and output options."""

    def __init__(self, gru: CustomGRU, *, go_backwards: bool, return_sequences: bool, return_state: bool) -> None:
        super().__init__()
        self.gru = gru
        self.go_backwards = go_backwards
        self.return_sequences = return_sequences
        self.return_state = return_state

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> Any:
        if self.go_backwards:  # Keras reads the sequence backwards and returns it in that order
            x = torch.flip(x, (1,))
        y, h_n = self.gru(x, None if h0 is None else h0.unsqueeze(0))
        last = h_n[0]
        out = y if self.return_sequences else last
        return (out, last) if self.return_state else out


_MERGES: dict[str | None, Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]] = {
    "concat": lambda a, b: (torch.cat([a, b], dim=-1),),
    "sum": lambda a, b: (a + b,),
    "ave": lambda a, b: ((a + b) / 2,),
    "mul": lambda a, b: (a * b,),
    None: lambda a, b: (a, b),
}


class KerasBidirectional(nn.Module):
    """Keras' Bidirectional: both GRUs on the input, the backward sequence flipped back, merged."""

    def __init__(self, forward_layer: KerasGRU, backward_layer: KerasGRU, merge_mode: str | None) -> None:
        super().__init__()
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    def forward(self, x: torch.Tensor, *states: torch.Tensor) -> Any:
        half = len(states) // 2
        y = self.forward_layer(x, *states[:half])
        y_rev = self.backward_layer(x, *states[half:])
        extra: tuple[torch.Tensor, ...] = ()
        if self.forward_layer.return_state:
            (y, h_fwd), (y_rev, h_bwd) = y, y_rev
            extra = (h_fwd, h_bwd)
        if self.forward_layer.return_sequences:
            y_rev = torch.flip(y_rev, (1,))
        merged = _MERGES[self.merge_mode](y, y_rev) + extra
        return merged[0] if len(merged) == 1 else merged


class _Merge(nn.Module):
    """Keras merge layers (Add, Multiply, Concatenate, ...): a function of all inputs."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


@dataclass
class _Context:
    """What a converter sees besides the layer: activation names and the model's inputs."""

    activations: ActivationTable
    node: Any = None


def keras_gru(
    layer: Any,
    *,
    activation: str | BoundActivation | None = None,
    recurrent_activation: str | BoundActivation | None = None,
    activations: ActivationTable | None = None,
) -> CustomGRU:
    """A batch-first :class:`~gru_onnx.CustomGRU` holding a Keras GRU layer's weights (a ``GRU``,
    or an ``RNN`` over a ``GRUCell``): Keras' gate blocks z, r, h reordered to PyTorch's r, z, n.

    The activations are the cell's, read with their Keras meaning, unless given: a converter
    registered for a layer whose cell computes its candidate in a method of its own says here
    what that method computes (``keras_gru(layer, activation="relu")``).
    """
    where = f"Keras layer {layer.name!r} ({type(layer).__name__})"
    cell = layer.cell
    if not cell.built:
        raise GruOnnxUsageError(f"{where} is not built; call it on an input (or give the model a keras.Input)")
    table = activations or ActivationTable(import_keras(), None)
    kernel, recurrent = variable_array(cell.kernel), variable_array(cell.recurrent_kernel)
    hidden = cell.units
    gru = CustomGRU(
        kernel.shape[0],
        hidden,
        bias=cell.use_bias,
        batch_first=True,
        activation=activation if activation is not None else table.bound(cell.activation, where),
        recurrent_activation=(
            recurrent_activation if recurrent_activation is not None
            else table.bound(cell.recurrent_activation, where)
        ),
        reset_after=cell.reset_after,
    )  # fmt: skip
    state = {"weight_ih_l0": _zrh_to_rzn(kernel).T, "weight_hh_l0": _zrh_to_rzn(recurrent).T}
    if cell.use_bias:
        bias = variable_array(cell.bias)
        if cell.reset_after:  # (2, 3H): input bias, recurrent bias
            state["bias_ih_l0"], state["bias_hh_l0"] = _zrh_to_rzn(bias[0]), _zrh_to_rzn(bias[1])
        else:  # one bias, added with the input projection (b_hn = 0 is exact: Keras adds none)
            state["bias_ih_l0"], state["bias_hh_l0"] = _zrh_to_rzn(bias), np.zeros(3 * hidden, np.float32)
    gru.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    return gru


def _refuse_stateful(layer: Any) -> None:
    if getattr(layer, "stateful", False):
        raise GruOnnxUsageError(
            f"Keras layer {layer.name!r} ({type(layer).__name__}) is stateful=True: its state carries over between "
            "calls, which a plain export does not model; export it for streaming instead (gru_onnx.export(..., "
            "streaming=StreamingOptions(enabled=True)), with the state as an input and output)"
        )


def _wrap(gru: CustomGRU, layer: Any) -> KerasGRU:
    """A CustomGRU with the Keras layer's sequence options (go_backwards, what it returns)."""
    _refuse_stateful(layer)
    return KerasGRU(
        gru,
        go_backwards=bool(getattr(layer, "go_backwards", False)),
        return_sequences=bool(getattr(layer, "return_sequences", False)),
        return_state=bool(getattr(layer, "return_state", False)),
    )


def _gru(layer: Any, ctx: _Context) -> KerasGRU:
    """keras.layers.GRU, or RNN over a GRUCell, with stock math -> KerasGRU."""
    _refuse_stateful(layer)
    return _wrap(keras_gru(layer, activations=ctx.activations), layer)


def _rnn(layer: Any, ctx: _Context) -> KerasGRU:
    """keras.layers.RNN: converted when its cell is a GRUCell (or one with the stock math)."""
    keras = import_keras()
    cell = layer.cell
    if not isinstance(cell, keras.layers.GRUCell):
        raise GruOnnxUsageError(
            f"unsupported Keras layer {layer.name!r} (class RNN around {type(cell).__name__}): gru-onnx converts "
            "RNN over a GRUCell"
        )
    return _gru(layer, ctx)


def _bidirectional(layer: Any, ctx: _Context) -> KerasBidirectional:
    halves = []
    keras = import_keras()
    for inner in (layer.forward_layer, layer.backward_layer):
        converted = None
        if isinstance(getattr(inner, "cell", None), keras.layers.GRUCell) or _user_converter(type(inner)):
            converted = converter_for(inner)(inner, ctx)
        if not isinstance(converted, KerasGRU):
            raise GruOnnxUsageError(
                f"unsupported Keras layer {layer.name!r} (class Bidirectional around {type(inner).__name__}): "
                "gru-onnx converts Bidirectional around a GRU"
            )
        halves.append(converted)
    return KerasBidirectional(halves[0], halves[1], layer.merge_mode)


def _dense(layer: Any, ctx: _Context) -> nn.Module:
    kernel = variable_array(layer.kernel)
    linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=layer.use_bias)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
        if layer.use_bias:
            linear.bias.copy_(torch.from_numpy(variable_array(layer.bias)))
    fn = ctx.activations.torch_fn(layer.activation, f"Keras layer {layer.name!r} (Dense)")
    return linear if fn is None else nn.Sequential(linear, ActivationModule(fn))


def _activation_layer(layer: Any, ctx: _Context) -> nn.Module:
    fn = ctx.activations.torch_fn(layer.activation, f"Keras layer {layer.name!r} (Activation)")
    return nn.Identity() if fn is None else ActivationModule(fn)


def _embedding(layer: Any, ctx: _Context) -> nn.Embedding:
    if layer.mask_zero:
        raise _masking_error(layer, "Embedding(mask_zero=True)")
    weights = variable_array(layer.embeddings)
    embedding = nn.Embedding(weights.shape[0], weights.shape[1])
    with torch.no_grad():
        embedding.weight.copy_(torch.from_numpy(weights))
    return embedding


def _masking_error(layer: Any, what: str) -> GruOnnxUsageError:
    return GruOnnxUsageError(
        f"Keras layer {layer.name!r} ({what}) masks time steps: Keras masks need not be contiguous, so they do not "
        "map onto a lengths input; remove the masking (or pad and pass lengths to a CustomGRU yourself)"
    )


def _refuse_masking(layer: Any, ctx: _Context) -> nn.Module:
    raise _masking_error(layer, "Masking")


def _identity(layer: Any, ctx: _Context) -> nn.Module:
    """Dropout and noise layers: the identity at inference."""
    return nn.Identity()


def _concatenate(layer: Any, ctx: _Context) -> nn.Module:
    axis = layer.axis
    return _Merge(lambda *xs: torch.cat(xs, dim=axis))


def _reduce(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[Any, _Context], nn.Module]:
    return lambda layer, ctx: _Merge(lambda *xs: functools.reduce(fn, xs))


def _average(layer: Any, ctx: _Context) -> nn.Module:
    return _Merge(lambda *xs: functools.reduce(torch.add, xs) / len(xs))


#: Layers that act on the last axis only, so TimeDistributed over them is the layer itself.
_POINTWISE = ("Dense", "Activation", "Dropout")


def _time_distributed(layer: Any, ctx: _Context) -> nn.Module:
    inner = type(layer.layer).__name__
    if inner not in _POINTWISE:
        raise GruOnnxUsageError(
            f"unsupported Keras layer {layer.name!r} (class TimeDistributed around {inner}); "
            f"gru-onnx converts TimeDistributed around {', '.join(_POINTWISE)}"
        )
    return CONVERTERS[inner](layer.layer, ctx)


def _nested_model(layer: Any, ctx: _Context) -> nn.Module:
    return _convert_model(layer, ctx.activations)


#: Keras layer class name -> converter ``(layer, context) -> torch module``. The module takes
#: the layer call's tensors in order and returns its outputs (a tuple when several).
CONVERTERS: dict[str, Callable[[Any, _Context], nn.Module]] = {
    "GRU": _gru,
    "RNN": _rnn,
    "Bidirectional": _bidirectional,
    "Dense": _dense,
    "Activation": _activation_layer,
    "Embedding": _embedding,
    "Dropout": _identity,
    "SpatialDropout1D": _identity,
    "GaussianNoise": _identity,
    "GaussianDropout": _identity,
    "AlphaDropout": _identity,
    "Concatenate": _concatenate,
    "Add": _reduce(torch.add),
    "Subtract": _reduce(torch.sub),
    "Multiply": _reduce(torch.mul),
    "Maximum": _reduce(torch.maximum),
    "Minimum": _reduce(torch.minimum),
    "Average": _average,
    "TimeDistributed": _time_distributed,
    "Masking": _refuse_masking,
    "Functional": _nested_model,
    "Sequential": _nested_model,
}


#: Converters users registered (:func:`register_keras_layer`), by class or registered name.
USER_CONVERTERS: dict[type | str, Callable[[Any], nn.Module]] = {}
#: Methods a subclass may define without changing what a Keras GRU computes.
_NOT_COMPUTING = frozenset({"__init__", "get_config", "from_config", "__repr__", "__str__"})
#: Keras classes whose subclasses convert as the class itself when they keep its math.
_STOCK = ("GRU", "GRUCell", "RNN", "Bidirectional")


def register_keras_layer(
    cls_or_name: type | str, converter: Callable[[Any], nn.Module], *, overwrite: bool = False
) -> None:
    """Convert Keras layers of class ``cls_or_name`` (a class, its registered name such as
    ``"Custom>CustomGRU"``, or its class name) with ``converter(layer) -> torch module``.

    For a cell class the converter gets the ``RNN`` layer that runs it. A converter returning a
    :class:`~gru_onnx.CustomGRU` (:func:`keras_gru` builds one from the layer's weights) gets the
    layer's ``go_backwards``, ``return_sequences`` and ``return_state``; any other module is used
    as it is, called with the layer's inputs. A registered converter wins over the built-in ones.
    """
    if not (isinstance(cls_or_name, str | type)) or not callable(converter):
        raise GruOnnxUsageError("register_keras_layer takes a class or a name, and a callable converter")
    if cls_or_name in USER_CONVERTERS and not overwrite:
        raise GruOnnxUsageError(f"a converter for {cls_or_name!r} is registered already (pass overwrite=True)")
    USER_CONVERTERS[cls_or_name] = converter


def _registered_name(cls: type) -> str:
    try:
        return str(import_keras().saving.get_registered_name(cls))
    except Exception:  # not a Keras class
        return cls.__name__


def _user_converter(cls: type) -> Callable[[Any], nn.Module] | None:
    for klass in cls.__mro__:
        for key in (klass, _registered_name(klass), klass.__name__):
            if key in USER_CONVERTERS:
                return USER_CONVERTERS[key]
    return None


def _keras_base(cls: type) -> type | None:
    """The first class of Keras' own in ``cls``'s ancestry (``cls`` itself for a Keras class)."""
    return next((k for k in cls.__mro__ if k.__module__.startswith("keras.")), None)


def computing_overrides(cls: type) -> list[str]:
    """The methods ``cls`` (a subclass of a Keras class) defines above its Keras base that may
    change what it computes: anything callable but ``__init__``, ``get_config``, ``from_config``."""
    base = _keras_base(cls)
    found = []
    for klass in cls.__mro__:
        if klass is base or klass is object:
            break
        for name, value in vars(klass).items():
            if name in _NOT_COMPUTING or (name.startswith("__") and name.endswith("__")):
                continue
            if callable(value) or isinstance(value, property | staticmethod | classmethod):
                found.append(name)
    return sorted(set(found))


def converter_for(layer: Any) -> Callable[[Any, _Context], nn.Module]:
    """The converter of a Keras layer: a registered one; a built-in one for Keras' own classes
    and for subclasses that keep their base's math (a GRU subclass overriding only ``__init__``);
    else a usage error naming the class, the overridden methods, and the way to convert it."""
    cls = type(layer)
    cell = getattr(layer, "cell", None)
    user = _user_converter(cls) or (_user_converter(type(cell)) if cell is not None else None)
    if user is not None:
        return lambda layer, ctx: _from_user(user, layer)
    base = _keras_base(cls)
    name = base.__name__ if base is not None else cls.__name__
    if base is not cls and name not in _STOCK:
        raise GruOnnxUsageError(
            f"unsupported Keras layer {layer.name!r} (class {cls.__name__}, a subclass of {name}): register a "
            f"converter with gru_onnx.register_keras_layer({cls.__name__}, converter)"
        )
    changed = computing_overrides(cls) if base is not cls else []
    owner = cls.__name__  # the class to register: the layer's, or its cell's when only the cell overrides
    if cell is not None and _keras_base(type(cell)) is not type(cell):
        in_cell = [f"{type(cell).__name__}.{m}" for m in computing_overrides(type(cell))]
        if in_cell and not changed:
            owner = type(cell).__name__
        changed += in_cell
    if changed:
        raise GruOnnxUsageError(
            f"Keras layer {layer.name!r} (class {cls.__name__}) overrides {', '.join(changed)}, which may change "
            f"what a {name} computes; register a converter: gru_onnx.register_keras_layer({owner}, "
            "lambda layer: gru_onnx.keras.keras_gru(layer, activation=...))"
        )
    converter = CONVERTERS.get(name)
    if converter is None:
        raise GruOnnxUsageError(
            f"unsupported Keras layer {layer.name!r} (class {cls.__name__}); gru-onnx converts "
            f"{', '.join(sorted(k for k in CONVERTERS if k != 'Masking'))}, and what register_keras_layer adds"
        )
    return converter


def _from_user(converter: Callable[[Any], nn.Module], layer: Any) -> nn.Module:
    try:
        module = converter(layer)
    except GruOnnxUsageError:
        raise
    except Exception as exc:
        raise GruOnnxUsageError(
            f"the converter registered for Keras layer {layer.name!r} ({type(layer).__name__}) raised "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if isinstance(module, CustomGRU):
        return _wrap(module, layer)
    if not isinstance(module, nn.Module):
        raise GruOnnxUsageError(
            f"the converter registered for Keras layer {layer.name!r} returned a {type(module).__name__}, not a "
            "torch module"
        )
    return module


# --------------------------------------------------------------------------------------------
# The converted model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """A Keras input: name, shape without the batch axis (None where free), dtype, id bound."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    high: int | None = None  # for integer inputs feeding an Embedding: its input_dim


@dataclass(frozen=True)
class _Step:
    module: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class KerasModule(nn.Module):
    """What :func:`from_keras` returns: the Keras graph as torch modules, run step by step.

    ``forward`` takes the Keras model's inputs in order and returns its output, or a tuple of
    outputs. ``gru_onnx_input_names``/``gru_onnx_output_names`` carry Keras' names into the
    ONNX file; ``input_specs`` the Keras input shapes (see :meth:`example_inputs`).
    """

    def __init__(
        self,
        layers: dict[str, nn.Module],
        steps: list[_Step],
        inputs: list[int],
        outputs: list[int],
        input_specs: list[InputSpec],
        output_names: list[str],
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self._steps = steps
        self._inputs = inputs
        self._outputs = outputs
        self.input_specs = input_specs
        self.gru_onnx_input_names = [s.name for s in input_specs]
        self.gru_onnx_output_names = output_names
        # One named parameter per Keras input, so torch.export matches dynamic_shapes to them.
        self.__class__ = _with_parameters(tuple(_parameter_name(s.name, i) for i, s in enumerate(input_specs)))

    def forward(self, *inputs: torch.Tensor) -> Any:
        if len(inputs) != len(self._inputs):
            raise GruOnnxUsageError(f"the Keras model takes {len(self._inputs)} input(s), got {len(inputs)}")
        values: dict[int, torch.Tensor] = dict(zip(self._inputs, inputs, strict=True))
        for step in self._steps:
            result = self.layers[step.module](*(values[i] for i in step.inputs))
            results = result if isinstance(result, tuple) else (result,)
            values.update(zip(step.outputs, results, strict=True))
        outs = tuple(values[i] for i in self._outputs)
        return outs[0] if len(outs) == 1 else outs

    @property
    def dynamic_time(self) -> bool:
        """True when some input has a free time axis (Keras ``None``): export with ``dynamic_seq``."""
        return any(len(s.shape) >= 1 and s.shape[0] is None for s in self.input_specs)

    def dynamic_shapes(self, *, batch: bool = True, seq: bool = True) -> tuple[dict[int, Any] | None, ...]:
        """``dynamic_shapes`` for ``gru_onnx.export``: axis 0 is the batch, axis 1 the time where Keras
        leaves it free (every input with a time axis when none is free)."""
        batch_dim = torch.export.Dim("batch") if batch else None
        seq_dim = torch.export.Dim("seq") if seq else None
        free = [len(s.shape) >= 1 and s.shape[0] is None for s in self.input_specs]
        if not any(free):
            free = [len(s.shape) >= 1 for s in self.input_specs]
        shapes = []
        for is_free in free:
            axes = {0: batch_dim, 1: seq_dim if is_free else None}
            shapes.append({a: d for a, d in axes.items() if d is not None} or None)
        return tuple(shapes)

    def gru_onnx_dynamic_shapes(self, *, batch: bool, seq: bool) -> tuple[dict[int, Any] | None, ...]:
        """What ``gru_onnx.export`` uses when not given ``dynamic_shapes``: :meth:`dynamic_shapes`."""
        return self.dynamic_shapes(batch=batch, seq=seq)

    def example_inputs(self, *, batch: int = 2, seq_len: int = 16, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Seeded inputs shaped like the Keras inputs (free time axis: ``seq_len``); integer inputs
        get ids below their Embedding's ``input_dim``, floating ones standard normal values."""
        gen = torch.Generator().manual_seed(seed)
        args = []
        for spec in self.input_specs:
            dims = [seq_len if i == 0 and d is None else d for i, d in enumerate(spec.shape)]
            if any(d is None for d in dims):
                raise GruOnnxUsageError(
                    f"Keras input {spec.name!r} has shape {spec.shape}: only the time axis may be free"
                )
            shape = (batch, *dims)
            if "int" in spec.dtype:
                args.append(torch.randint(0, spec.high or 2, shape, generator=gen))
            else:
                args.append(torch.randn(*shape, generator=gen))
        return tuple(args)


def _parameter_name(name: str, index: int) -> str:
    return name if name.isidentifier() and not keyword.iskeyword(name) and name != "self" else f"input_{index}"


@functools.cache
def _with_parameters(names: tuple[str, ...]) -> type[KerasModule]:
    """A KerasModule subclass whose ``forward`` declares ``names`` (``*inputs`` would be one argument
    to torch.export, which matches ``dynamic_shapes`` to the declared parameters)."""

    def forward(self: KerasModule, *inputs: torch.Tensor) -> Any:
        return KerasModule.forward(self, *inputs)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind) for n in ("self", *names)]
    forward.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return type("KerasModule", (KerasModule,), {"forward": forward, "__module__": __name__})


def _output_names(tensors: Sequence[Any]) -> list[str]:
    """ONNX output names from the Keras layers producing the outputs; a layer with several
    outputs among them gets its output index appended."""
    histories = [t._keras_history for t in tensors]
    counts: dict[str, int] = {}
    for op, _, _ in histories:
        counts[op.name] = counts.get(op.name, 0) + 1
    names = [op.name if counts[op.name] == 1 else f"{op.name}_{index}" for op, _, index in histories]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, -1) + 1
        unique.append(name if not seen[name] else f"{name}_{seen[name]}")
    return unique


def _call_tensors(node: Any, layer: Any) -> tuple[list[Any], list[Any]]:
    """The Keras tensors a layer call consumed, in order (positional ones, then initial states),
    and the masks it was given (refused once their producers are converted)."""
    keras = import_keras()
    args, kwargs = node.arguments.args, node.arguments.kwargs
    tensors = [t for t in keras.tree.flatten(args) if isinstance(t, keras.KerasTensor)]
    masks = []
    for key, value in kwargs.items():
        if value is None or key == "training":
            continue
        flat = [t for t in keras.tree.flatten(value) if isinstance(t, keras.KerasTensor)]
        if key == "mask":
            masks.extend(flat)
        elif key == "initial_state" and isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional):
            tensors.extend(flat)
        elif flat:
            raise GruOnnxUsageError(f"Keras layer {layer.name!r} is called with {key}=; gru-onnx does not convert that")
    return tensors, masks


def _convert_model(model: Any, activations: ActivationTable) -> KerasModule:
    """Walk ``model``'s graph from its outputs back to its inputs; convert each layer once."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        inputs = outputs = []
    if not inputs or not outputs:
        raise GruOnnxUsageError(
            f"Keras model {model.name!r} has no defined inputs and outputs; build it from keras.Input(...)"
        )
    ids: dict[int, int] = {}

    def key(tensor: Any) -> int:
        return ids.setdefault(id(tensor), len(ids))

    input_keys = [key(t) for t in inputs]
    layers: dict[str, nn.Module] = {}
    names: dict[int, str] = {}
    steps: list[_Step] = []
    highs: dict[int, int] = {}
    done: set[tuple[int, int]] = set()

    def visit(tensor: Any) -> None:
        if key(tensor) in input_keys:
            return
        op, node_index, _ = tensor._keras_history
        if (id(op), node_index) in done:
            return
        done.add((id(op), node_index))
        node = op._inbound_nodes[node_index]
        cls = type(op).__name__
        if cls == "InputLayer":
            raise GruOnnxUsageError(f"Keras input {op.name!r} is not an input of model {model.name!r}")
        consumed, masks = _call_tensors(node, op)
        for t in consumed + masks:
            visit(t)  # producers first: a Masking layer is named before the GRU it masks
        if masks:
            raise _masking_error(op, "called with a mask")
        if id(op) not in names:
            converter = converter_for(op)
            name = _module_name(op.name, layers)
            layers[name] = converter(op, _Context(activations, node))
            names[id(op)] = name
        if cls == "Embedding":
            for t in consumed:
                if key(t) in input_keys:
                    highs[key(t)] = min(highs.get(key(t), op.input_dim), op.input_dim)
        steps.append(_Step(names[id(op)], tuple(key(t) for t in consumed), tuple(key(t) for t in node.outputs)))

    for tensor in outputs:
        visit(tensor)
    if not any(isinstance(m, CustomGRU) for layer in layers.values() for m in layer.modules()):
        raise GruOnnxUsageError(f"Keras model {model.name!r} has no GRU layer: gru-onnx exports GRU models")
    specs = [InputSpec(t.name, tuple(t.shape[1:]), str(t.dtype), highs.get(key(t))) for t in inputs]
    return KerasModule(layers, steps, input_keys, [key(t) for t in outputs], specs, _output_names(outputs))


def _module_name(name: str, taken: Mapping[str, Any]) -> str:
    clean = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "layer"
    candidate, n = clean, 1
    while candidate in taken:
        candidate, n = f"{clean}_{n}", n + 1
    return candidate


def _convert_layer(layer: Any, activations: ActivationTable) -> KerasModule:
    """A lone GRU, RNN(GRUCell) or Bidirectional layer: one input ``input``, outputs named after the layer."""
    module = converter_for(layer)(layer, _Context(activations))
    gru = getattr(layer, "forward_layer", layer)
    features = int(gru.cell.kernel.shape[0])
    with torch.no_grad():  # how many outputs this configuration returns
        probe = module(torch.zeros(2, 2, features))
    count = len(probe) if isinstance(probe, tuple) else 1
    outputs = [layer.name] if count == 1 else [f"{layer.name}_{i}" for i in range(count)]
    name = _module_name(layer.name, {})
    steps = [_Step(name, (0,), tuple(range(1, count + 1)))]
    spec = InputSpec("input", (None, features), "float32")
    return KerasModule({name: module}, steps, [0], list(range(1, count + 1)), [spec], outputs)


def from_keras(obj: Any, *, activations: Mapping[str, str | BoundActivation] | None = None) -> KerasModule:
    """Convert a Keras 3 GRU, RNN(GRUCell), Bidirectional or whole model to a torch module computing the same.

    Each Keras GRU becomes a batch-first :class:`~gru_onnx.CustomGRU`; inputs, outputs (including
    ``return_state``) and their order are Keras'. ``activations`` maps Keras activation names to
    gru-onnx ones where the default reading (:data:`KERAS_ACTIVATIONS`) is not wanted. The Keras
    object is only read. Needs Keras on the torch backend.
    """
    keras = import_keras()
    table = ActivationTable(keras, activations)
    if isinstance(obj, keras.Model):
        return _convert_model(obj, table)
    if isinstance(obj, keras.layers.RNN | keras.layers.Bidirectional) or _user_converter(type(obj)) is not None:
        if not obj.built:
            raise GruOnnxUsageError(f"Keras layer {obj.name!r} is not built; call it on an input first")
        return _convert_layer(obj, table)
    raise GruOnnxUsageError(
        "from_keras takes a keras.Model, a keras.layers.GRU (or an RNN over a GRUCell) or a Bidirectional around "
        f"one, not {type(obj).__name__}"
    )


