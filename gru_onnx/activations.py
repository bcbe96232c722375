"""The activation registry: one table, each entry a PyTorch function and an ONNX emitter.

An entry knows how to compute itself in PyTorch (``torch_fn``), how to write itself as
standard ONNX ops for any supported opset (``onnx_fn``, written with onnxscript), and, where
it exists, the *exact* equivalent in the ONNX ``GRU`` operator's own activation list (used by
the native export strategy). Users add entries with :func:`register_activation`.

Activations with parameters are written ``name(key=value, ...)``, for example
``leaky_relu(alpha=0.2)``; parameters not given take PyTorch's defaults.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import onnx_ir as ir
import onnxscript
import torch
import torch.nn.functional as F

from gru_onnx.errors import GruOnnxUsageError

__all__ = [
    "Activation",
    "BoundActivation",
    "NativeActivation",
    "ScaledForm",
    "get_activation",
    "list_activations",
    "parse_activation",
    "register_activation",
]

_FLOAT32 = ir.DataType.FLOAT
TorchFn = Callable[..., torch.Tensor]
#: ``onnx_fn(op, x, **params)``: ``op`` is an onnxscript op builder whose ``version`` is the
#: target opset; it returns the output value. An ``onnxscript.OnnxFunction`` is accepted too.
OnnxFn = Callable[..., Any]


@dataclass(frozen=True)
class NativeActivation:
    """An activation as the ONNX ``GRU`` operator spells it (name plus optional alpha/beta)."""

    name: str
    alpha: float | None = None
    beta: float | None = None


@dataclass(frozen=True)
class ScaledForm:
    """A cheaper emitter for a candidate activation ``g``: ``onnx_fn(op, input_scale * x)`` equals
    ``state_scale * g(x)``. The step folds ``input_scale`` into the weights and carries the
    state multiplied by ``state_scale``, so the activation costs fewer nodes per step. Used at
    opsets below ``below_opset`` (where the fused op is not there), float32/float64 only."""

    input_scale: float
    state_scale: float
    onnx_fn: OnnxFn
    below_opset: int | None = None


@dataclass(frozen=True)
class Activation:
    """One registry entry: how an activation runs in PyTorch and in ONNX."""

    name: str
    torch_fn: TorchFn
    onnx_fn: OnnxFn
    defaults: Mapping[str, float] = field(default_factory=dict)
    #: Maps bound parameters to the exact ONNX-GRU equivalent, or None where there is none.
    native: Callable[[Mapping[str, float]], NativeActivation | None] | None = None
    doc: str = ""
    #: Returns why the parameters are invalid (e.g. a division by zero), or None.
    validate: Callable[[Mapping[str, float]], str | None] | None = None
    #: A cheaper form with scaled input and output, for the candidate inside the step.
    scaled: ScaledForm | None = None

    def bind(self, **params: float) -> BoundActivation:
        """Return this activation with parameters fixed (unknown names are an error)."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(self.defaults) or "none"
            raise GruOnnxUsageError(f"activation {self.name!r} has no parameter {unknown[0]!r} (parameters: {valid})")
        merged = {k: float(params.get(k, v)) for k, v in self.defaults.items()}
        problem = self.validate(merged) if self.validate else None
        if problem is None and not all(math.isfinite(v) for v in merged.values()):
            problem = "parameters must be finite numbers"
        if problem:
            raise GruOnnxUsageError(f"activation {self.name}: {problem}")
        return BoundActivation(self.name, tuple(merged.items()))


@dataclass(frozen=True)
class BoundActivation:
    """An activation name with all of its parameters fixed; hashable and JSON-friendly."""

    name: str
    params: tuple[tuple[str, float], ...] = ()

    @property
    def entry(self) -> Activation:
        return get_activation(self.name)

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(self.params)

    def torch(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the activation to a PyTorch tensor."""
        return self.entry.torch_fn(x, **self.kwargs)

    def onnx(self, op: Any, x: Any) -> Any:
        """Emit the activation into an ONNX graph through an onnxscript op builder."""
        fn = self.entry.onnx_fn
        if isinstance(fn, onnxscript.OnnxFunction):
            return op.call_inline(fn, x, **self.kwargs)
        return fn(op, x, **self.kwargs)

    def scaled_form(self, opset: int) -> ScaledForm | None:
        """The registry's scaled form of this activation at ``opset``, or None."""
        form = self.entry.scaled
        if form is None or (form.below_opset is not None and opset >= form.below_opset):
            return None
        return form

    def native(self) -> NativeActivation | None:
        """The exact ONNX GRU activation for this one, or None if ONNX's list has none."""
        mapper = self.entry.native
        return mapper(self.kwargs) if mapper else None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.kwargs}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BoundActivation:
        return get_activation(data["name"]).bind(**data.get("params", {}))

    def __str__(self) -> str:
        changed = [(k, v) for k, v in self.params if v != self.entry.defaults.get(k)]
        if not changed:
            return self.name
        args = ", ".join(f"{k}={v:g}" for k, v in changed)
        return f"{self.name}({args})"


_REGISTRY: dict[str, Activation] = {}
_ALIASES: dict[str, str] = {}


def register_activation(
    name: str,
    torch_fn: TorchFn,
    onnx_fn: OnnxFn,
    *,
    defaults: Mapping[str, float] | None = None,
    native: Callable[[Mapping[str, float]], NativeActivation | None] | None = None,
    aliases: tuple[str, ...] = (),
    doc: str = "",
    validate: Callable[[Mapping[str, float]], str | None] | None = None,
    scaled: ScaledForm | None = None,
    overwrite: bool = False,
) -> Activation:
    """Add an activation to the registry so CustomGRU, every exporter and the CLI can use it.

    ``torch_fn(x, **params)`` computes it in PyTorch. ``onnx_fn`` is either an
    ``onnxscript.OnnxFunction`` (``@onnxscript.script()``), inlined at each use, or a callable
    ``onnx_fn(op, x, **params)`` that calls ops on the onnxscript builder ``op``.
    """
    if not name.isidentifier():
        raise GruOnnxUsageError(f"activation name {name!r} must be a Python identifier")
    taken = name in _REGISTRY or name in _ALIASES
    if taken and not overwrite:
        raise GruOnnxUsageError(f"activation {name!r} is already registered (pass overwrite=True)")
    entry = Activation(
        name=name,
        torch_fn=torch_fn,
        onnx_fn=onnx_fn,
        defaults=MappingProxyType({k: float(v) for k, v in (defaults or {}).items()}),
        native=native,
        doc=doc,
        validate=validate,
        scaled=scaled,
    )
    _ALIASES.pop(name, None)
    _REGISTRY[name] = entry
    for alias in aliases:
        _ALIASES[alias] = name
    return entry


def get_activation(name: str) -> Activation:
    """Look up a registry entry by name or alias; unknown names list the valid ones."""
    key = _ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        valid = ", ".join(sorted([*_REGISTRY, *_ALIASES]))
        raise GruOnnxUsageError(f"unknown activation {name!r}; valid names: {valid}") from None


def list_activations() -> Iterator[tuple[str, Activation, tuple[str, ...]]]:
    """Yield ``(name, entry, aliases)`` for every registered activation, in name order."""
    for name in sorted(_REGISTRY):
        aliases = tuple(sorted(a for a, target in _ALIASES.items() if target == name))
        yield name, _REGISTRY[name], aliases


def parse_activation(text: str | BoundActivation) -> BoundActivation:
    """Parse ``name`` or ``name(key=value, ...)`` into a bound activation."""
    if isinstance(text, BoundActivation):
        return text
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise GruOnnxUsageError(f"cannot parse activation {text!r}; write name or name(key=value, ...)") from None
    if isinstance(tree, ast.Name):
        return get_activation(tree.id).bind()
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and not tree.args:
        params: dict[str, float] = {}
        for kw in tree.keywords:
            try:
                value = ast.literal_eval(kw.value)
            except ValueError:
                value = None
            if kw.arg is None or not isinstance(value, int | float) or isinstance(value, bool):
                raise GruOnnxUsageError(f"activation parameter in {text!r} must be key=number")
            params[kw.arg] = float(value)
        entry = get_activation(tree.func.id)
        return entry.bind(**params)
    raise GruOnnxUsageError(f"cannot parse activation {text!r}; write name or name(key=value, ...)")


# --------------------------------------------------------------------------------------------
# Built-in activations. Each ONNX emitter matches PyTorch's definition exactly; where a fused
# ONNX op only exists from some opset, an exact decomposition serves the older ones.
# --------------------------------------------------------------------------------------------


def _builtin(name: str, torch_fn: TorchFn, **options: Any) -> Callable[[OnnxFn], OnnxFn]:
    """Decorator: register the decorated ONNX emitter with its PyTorch function (and options
    as for :func:`register_activation`)."""

    def wrap(onnx_fn: OnnxFn) -> OnnxFn:
        register_activation(name, torch_fn, onnx_fn, **options)
        return onnx_fn

    return wrap


def _always(native_name: str, **fixed: float) -> Callable[[Mapping[str, float]], NativeActivation]:
    return lambda _params: NativeActivation(native_name, fixed.get("alpha"), fixed.get("beta"))


@_builtin("tanh", torch.tanh, native=_always("Tanh"), doc="hyperbolic tangent")
def _tanh(op: Any, x: Any) -> Any:
    return op.Tanh(x)


@_builtin("sigmoid", torch.sigmoid, native=_always("Sigmoid"), doc="logistic sigmoid")
def _sigmoid(op: Any, x: Any) -> Any:
    return op.Sigmoid(x)


@_builtin("relu", F.relu, native=_always("Relu"), doc="max(0, x)")
def _relu(op: Any, x: Any) -> Any:
    return op.Relu(x)


@_builtin("relu6", F.relu6, doc="min(max(0, x), 6)")
def _relu6(op: Any, x: Any) -> Any:
    return op.Clip(x, 0.0, 6.0)


@_builtin(
    "leaky_relu",
    lambda x, alpha: F.leaky_relu(x, negative_slope=alpha),
    defaults={"alpha": 0.01},
    native=lambda p: NativeActivation("LeakyRelu", alpha=p["alpha"]),
    doc="x if x >= 0 else alpha * x (PyTorch's negative_slope)",
)
def _leaky_relu(op: Any, x: Any, alpha: float) -> Any:
    return op.LeakyRelu(x, alpha=alpha)


@_builtin(
    "elu",
    lambda x, alpha: F.elu(x, alpha=alpha),
    defaults={"alpha": 1.0},
    native=lambda p: NativeActivation("Elu", alpha=p["alpha"]),
    doc="x if x > 0 else alpha * (exp(x) - 1)",
)
def _elu(op: Any, x: Any, alpha: float) -> Any:
    return op.Elu(x, alpha=alpha)


@_builtin("selu", F.selu, doc="scale * elu(x, alpha) with the self-normalising constants")
def _selu(op: Any, x: Any) -> Any:
    # ONNX's Selu defaults are PyTorch's constants, spelled out for readers.
    return op.Selu(x, alpha=1.6732632423543772, gamma=1.0507009873554805)


@_builtin(
    "celu",
    lambda x, alpha: F.celu(x, alpha=alpha),
    defaults={"alpha": 1.0},
    # celu with alpha=1 is elu with alpha=1, term for term.
    native=lambda p: NativeActivation("Elu", alpha=1.0) if p["alpha"] == 1.0 else None,
    doc="max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
    validate=lambda p: "alpha must not be 0 (it divides x)" if p["alpha"] == 0 else None,
)
def _celu(op: Any, x: Any, alpha: float) -> Any:
    if getattr(x, "dtype", None) == _FLOAT32:
        return op.Celu(x, alpha=alpha)
    # ONNX's Celu is float32-only; its defining formula serves every other type.
    expm1 = op.Sub(op.Exp(op.Div(x, alpha)), 1.0)
    return op.Add(op.Max(x, 0.0), op.Min(op.Mul(expm1, alpha), 0.0))


def _gelu_scaled(op: Any, y: Any) -> Any:
    """``y * (1 + erf(y))``: with ``y = x / sqrt(2)`` this is ``sqrt(2) * gelu(x)``, three nodes."""
    return op.Mul(y, op.Add(op.Erf(y), 1.0))


@_builtin(
    "gelu",
    F.gelu,
    doc="x * Phi(x), exact (erf) form",
    scaled=ScaledForm(1.0 / math.sqrt(2.0), math.sqrt(2.0), _gelu_scaled, below_opset=20),
)
def _gelu(op: Any, x: Any) -> Any:
    if op.version >= 20:
        return op.Gelu(x)
    half = 0.5
    erf = op.Erf(op.Mul(x, 1.0 / math.sqrt(2.0)))
    return op.Mul(op.Mul(half, x), op.Add(1.0, erf))


@_builtin(
    "gelu_tanh",
    lambda x: F.gelu(x, approximate="tanh"),
    doc="GELU's tanh approximation (PyTorch approximate='tanh')",
)
def _gelu_tanh(op: Any, x: Any) -> Any:
    if op.version >= 20:
        return op.Gelu(x, approximate="tanh")
    cube = op.Mul(op.Mul(x, x), x)
    inner = op.Add(x, op.Mul(0.044715, cube))
    t = op.Tanh(op.Mul(math.sqrt(2.0 / math.pi), inner))
    return op.Mul(op.Mul(0.5, x), op.Add(1.0, t))


@_builtin("silu", F.silu, aliases=("swish",), doc="x * sigmoid(x)")
def _silu(op: Any, x: Any) -> Any:
    return op.Mul(x, op.Sigmoid(x))


@_builtin("mish", F.mish, doc="x * tanh(softplus(x))")
def _mish(op: Any, x: Any) -> Any:
    if op.version >= 18:
        return op.Mish(x)
    return op.Mul(x, op.Tanh(op.Softplus(x)))


@_builtin(
    "softplus",
    lambda x, beta, threshold: F.softplus(x, beta=beta, threshold=threshold),
    defaults={"beta": 1.0, "threshold": 20.0},
    # No native equivalent: ONNX Runtime's GRU kernel computes log(1 + exp(x)) directly and
    # returns inf past x ~ 88, where PyTorch returns x (above the threshold).
    doc="log(1 + exp(beta * x)) / beta, linear above threshold",
    validate=lambda p: "beta must not be 0 (it divides the result)" if p["beta"] == 0 else None,
)
def _softplus(op: Any, x: Any, beta: float, threshold: float) -> Any:
    bx = x if beta == 1.0 else op.Mul(x, beta)
    soft = op.Softplus(bx)
    if beta != 1.0:
        soft = op.Div(soft, beta)
    return op.Where(op.Greater(bx, threshold), x, soft)


@_builtin("softsign", F.softsign, native=_always("Softsign"), doc="x / (1 + |x|)")
def _softsign(op: Any, x: Any) -> Any:
    return op.Softsign(x)


@_builtin(
    "hardtanh",
    lambda x, min_val, max_val: F.hardtanh(x, min_val=min_val, max_val=max_val),
    defaults={"min_val": -1.0, "max_val": 1.0},
    doc="clip(x, min_val, max_val)",
    validate=lambda p: "max_val must be greater than min_val" if p["max_val"] <= p["min_val"] else None,
)
def _hardtanh(op: Any, x: Any, min_val: float, max_val: float) -> Any:
    return op.Clip(x, min_val, max_val)


_HARD_SIGMOID_DEFAULTS = {"alpha": 1.0 / 6.0, "beta": 0.5}


def _hard_sigmoid_torch(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    # PyTorch's own kernel for its own definition, so the default is bit-identical to it.
    if alpha == _HARD_SIGMOID_DEFAULTS["alpha"] and beta == _HARD_SIGMOID_DEFAULTS["beta"]:
        return F.hardsigmoid(x)
    return torch.clamp(alpha * x + beta, 0.0, 1.0)


@_builtin(
    "hard_sigmoid",
    _hard_sigmoid_torch,
    defaults=_HARD_SIGMOID_DEFAULTS,
    native=lambda p: NativeActivation("HardSigmoid", alpha=p["alpha"], beta=p["beta"]),
    doc="max(0, min(1, alpha * x + beta)); the defaults are PyTorch's relu6(x + 3) / 6 (= Keras 3's), "
    "alpha=0.2 is Keras 2's",
)
def _hard_sigmoid(op: Any, x: Any, alpha: float, beta: float) -> Any:
    return op.HardSigmoid(x, alpha=alpha, beta=beta)


@_builtin("hard_swish", F.hardswish, aliases=("hardswish",), doc="x * hard_sigmoid(x)")
def _hard_swish(op: Any, x: Any) -> Any:
    return op.HardSwish(x)


@_builtin(
    "linear",
    lambda x: x,
    aliases=("identity",),
    native=_always("Affine", alpha=1.0, beta=0.0),
    doc="x",
)
def _linear(op: Any, x: Any) -> Any:
    return op.Identity(x)


def onnx_ops(activation: str | BoundActivation, opset: int) -> list[str]:
    """The ONNX op types an activation's emitter writes at ``opset`` (traced, not declared)."""
    bound = parse_activation(activation)
    graph = onnxscript.build_graph(
        lambda op, x: bound.onnx(op, x),
        inputs=[ir.val("x", ir.DataType.FLOAT, ir.Shape([2, 3]))],
        outputs=[ir.val("y", ir.DataType.FLOAT, ir.Shape([2, 3]))],
        opset_imports={"": opset},
    )
    return [node.op_type for node in graph]
