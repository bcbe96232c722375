"""Where an exported file keeps each GRU stack's ``nn.GRU`` parameters: one rule per layout.

Every stack's metadata has ``weights = {"layout": NAME, "version": N, ...}``. A layout's rule
reads the stored initializers back into an ``nn.GRU`` state_dict that computes the same
function: exactly the source tensors where they are stored as they are (``torch``), within
float rounding where values were computed (``folded``: biases summed). ``onnx_gru`` only
reorders and stacks, so it is exact too.
Files written before the field had a version are version 1. A strategy that stores weights in
a new way registers its rule here with :func:`register_layout`, so older files keep checking.

Comparing a file with its source (:func:`compare_weights`) works on *effective* parameters:
the r and z gates only ever see ``b_ih + b_hh``, and so does the candidate in the reset-before
form, so a layout may fold those biases and still be compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.spec import GRUSpec

#: ``get(initializer_name) -> array``; raises a usage error when the file lacks it.
Getter = Callable[[str], np.ndarray]
#: ``read(spec, weights_metadata, get) -> {nn.GRU parameter name: array}``
Reader = Callable[[GRUSpec, Mapping[str, Any], Getter], dict[str, np.ndarray]]
#: ``shapes(spec, weights_metadata) -> [(stored names, shape they make joined along axis 0)]``:
#: what the file must hold for ``spec``, checked against its initializers before anything is read.
Shapes = Callable[[GRUSpec, Mapping[str, Any]], list[tuple[list[str], tuple[int, ...]]]]


@dataclass(frozen=True)
class WeightLayout:
    """A registered storage layout: its current version, whether stored values are the source
    values bit for bit (``exact``), and the rule that reads them back."""

    name: str
    version: int
    exact: bool
    read: Reader
    doc: str = ""
    shapes: Shapes | None = None


LAYOUTS: dict[str, WeightLayout] = {}


def register_layout(
    name: str, *, version: int, exact: bool, doc: str = "", shapes: Shapes | None = None
) -> Callable[[Reader], Reader]:
    """Decorator: add the rule that reads layout ``name`` (versions up to ``version``), and the
    rule giving the shapes its stored tensors must have."""

    def wrap(read: Reader) -> Reader:
        LAYOUTS[name] = WeightLayout(name, version, exact, read, doc, shapes)
        return read

    return wrap


def _names(value: Any, where: str) -> list[str]:
    """A record entry as a list of names (a name, or row blocks); anything else is refused."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise GruOnnxUsageError(f"the metadata's weight record {where} is not an initializer name or a list of them")
    return names


def _entry(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise GruOnnxUsageError(f"the metadata's weight record has no {where}{key!r} (the spec needs it)")
    return mapping[key]


def _in_size(spec: GRUSpec, layer: int) -> int:
    return spec.input_size if layer == 0 else spec.hidden_size * spec.num_directions


def _torch_shapes(spec: GRUSpec, weights: Mapping[str, Any]) -> list[tuple[list[str], tuple[int, ...]]]:
    h = spec.hidden_size
    params = _entry(weights, "parameters", "")
    out = []
    for d in spec.directions():
        want = {"weight_ih": (3 * h, _in_size(spec, d.layer)), "weight_hh": (3 * h, h), "bias_ih": (3 * h,),
                "bias_hh": (3 * h,)}  # fmt: skip
        for name in spec.parameter_names(d):
            out.append((_names(_entry(params, name, "parameter "), name), want[name.removesuffix(d.suffix)]))
    return out


def _folded_shapes(spec: GRUSpec, weights: Mapping[str, Any]) -> list[tuple[list[str], tuple[int, ...]]]:
    h = spec.hidden_size
    directions = _entry(weights, "directions", "")
    out = []
    for d in spec.directions():
        entry = _entry(directions, d.suffix, "direction ")
        blocks = _names(_entry(entry, "weight_hh", f"{d.suffix} "), "weight_hh")
        if len(blocks) != 2:
            raise GruOnnxUsageError(f"the metadata's folded weight_hh of {d.suffix} must name 2 blocks (r/z and n)")
        weight_ih = _names(_entry(entry, "weight_ih", f"{d.suffix} "), "weight_ih")
        out += [(weight_ih, (3 * h, _in_size(spec, d.layer))), ([blocks[0]], (2 * h, h)), ([blocks[1]], (h, h))]
        if spec.bias:
            out.append((_names(_entry(entry, "bias_x", f"{d.suffix} "), "bias_x"), (3 * h,)))
            if spec.reset_after:
                out.append((_names(_entry(entry, "bias_hn", f"{d.suffix} "), "bias_hn"), (h,)))
    return out


def _onnx_gru_shapes(spec: GRUSpec, weights: Mapping[str, Any]) -> list[tuple[list[str], tuple[int, ...]]]:
    h, dirs = spec.hidden_size, spec.num_directions
    layers = _entry(weights, "layers", "")
    out = []
    for layer in range(spec.num_layers):
        names = _entry(layers, f"l{layer}", "layer ")
        out += [([_entry(names, "W", f"l{layer} ")], (dirs, 3 * h, _in_size(spec, layer))),
                ([_entry(names, "R", f"l{layer} ")], (dirs, 3 * h, h))]  # fmt: skip
        if spec.bias:
            out.append(([_entry(names, "B", f"l{layer} ")], (dirs, 6 * h)))
    return out


def expected_shapes(spec: GRUSpec, weights: Mapping[str, Any]) -> list[tuple[list[str], tuple[int, ...]]]:
    """``[(stored names, shape)]`` the file must hold for ``spec`` under its layout (names joined
    along axis 0 when a parameter is stored as row blocks); a record missing an entry is refused."""
    layout = get_layout(weights)
    return layout.shapes(spec, weights) if layout.shapes is not None else []


def layout_record(name: str, **fields: Any) -> dict[str, Any]:
    """The metadata entry a strategy stores for its weights: layout, version, its fields."""
    return {"layout": name, "version": LAYOUTS[name].version, **fields}


def get_layout(weights: Mapping[str, Any]) -> WeightLayout:
    """The rule for a stack's ``weights`` metadata; unknown layouts or newer versions refused."""
    name = weights.get("layout")
    layout = LAYOUTS.get(name)  # type: ignore[arg-type]
    if layout is None:
        raise GruOnnxUsageError(f"unknown weight layout {name!r} in the metadata (a newer gru-onnx wrote it?)")
    version = weights.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise GruOnnxUsageError(f"weight layout {name!r} has version {version!r}, not an integer")
    if version > layout.version:
        raise GruOnnxUsageError(
            f"weight layout {name!r} version {version} is newer than this gru-onnx reads ({layout.version}); upgrade"
        )
    return layout


def stored_names(record: Any) -> list[str]:
    """Every initializer name a weights record mentions (strings anywhere in it but the layout's name)."""
    if isinstance(record, str):
        return [record]
    if isinstance(record, Mapping):
        return [n for k, v in record.items() if k != "layout" for n in stored_names(v)]
    if isinstance(record, list | tuple):
        return [n for v in record for n in stored_names(v)]
    return []


def read_state_dict(spec: GRUSpec, weights: Mapping[str, Any], get: Getter) -> dict[str, np.ndarray]:
    """The ``nn.GRU`` parameters of one stack, read back from the file by its layout's rule."""
    return get_layout(weights).read(spec, weights, get)


@register_layout(
    "torch", version=1, exact=True, shapes=_torch_shapes,
    doc="nn.GRU tensors as they are; a parameter may be row blocks",
)  # fmt: skip
def _read_torch(spec: GRUSpec, weights: Mapping[str, Any], get: Getter) -> dict[str, np.ndarray]:
    state = {}
    for param, stored in weights["parameters"].items():
        names = [stored] if isinstance(stored, str) else stored
        state[param] = np.concatenate([get(n) for n in names], axis=0)
    return state


def _rzn(w: np.ndarray) -> np.ndarray:
    """ONNX gate order (z, r, h) -> PyTorch's (r, z, n), along the first axis."""
    z, r, n = np.split(w, 3)
    return np.concatenate([r, z, n])


@register_layout(
    "onnx_gru", version=1, exact=True, shapes=_onnx_gru_shapes,
    doc="the ONNX GRU op's W, R, B per layer (gates z, r, h)",
)  # fmt: skip
def _read_onnx_gru(spec: GRUSpec, weights: Mapping[str, Any], get: Getter) -> dict[str, np.ndarray]:
    # Reordering gate blocks moves values without changing them: still bit-exact.
    state = {}
    hidden = spec.hidden_size
    for d in spec.directions():
        names = weights["layers"][f"l{d.layer}"]
        slot = int(d.reverse)
        state[d.param("weight_ih")] = _rzn(get(names["W"])[slot])
        state[d.param("weight_hh")] = _rzn(get(names["R"])[slot])
        if spec.bias:
            bias = get(names["B"])[slot]
            state[d.param("bias_ih")] = _rzn(bias[: 3 * hidden])
            state[d.param("bias_hh")] = _rzn(bias[3 * hidden :])
    return state


@register_layout(
    "folded",
    version=1,
    exact=False,
    doc="per direction: weight_ih as is, weight_hh as r/z and n row blocks, the input bias with the "
    "r/z (and, reset before, n) recurrent biases folded in, b_hn apart when reset after; optionally "
    "scaled for a candidate's scaled form (input_scale, state_scale)",
    shapes=_folded_shapes,
)
def _read_folded(spec: GRUSpec, weights: Mapping[str, Any], get: Getter) -> dict[str, np.ndarray]:
    # The folded sums are all the recurrence uses, so the rule returns them as bias_ih and
    # zeros for the folded part of bias_hh: the same function, and the same effective
    # parameters (compared within float rounding: the sums were rounded once when written).
    # A file carrying the state scaled by k, with the candidate's input scaled by c
    # (``state_scale``, ``input_scale``: a registry ScaledForm), stores the n rows of weight_ih
    # and the n biases times c, the r/z rows of weight_hh over k, its n rows times c / k.
    c = float(weights.get("input_scale", 1.0))
    k = float(weights.get("state_scale", 1.0))
    state = {}
    hidden = spec.hidden_size
    n_rows = slice(2 * hidden, 3 * hidden)

    def unscale(array: np.ndarray, rows: slice, by: float) -> np.ndarray:
        if by == 1.0:
            return array
        out = array.astype(np.float64)
        out[rows] /= by
        return out.astype(array.dtype)

    for d in spec.directions():
        entry = weights["directions"][d.suffix]
        state[d.param("weight_ih")] = unscale(get(entry["weight_ih"]), n_rows, c)
        rz, n = (get(name) for name in entry["weight_hh"])
        state[d.param("weight_hh")] = np.concatenate(
            [unscale(rz, slice(None), 1.0 / k), unscale(n, slice(None), c / k)]
        )
        if spec.bias:
            b_x = unscale(get(entry["bias_x"]), n_rows, c)
            b_hh = np.zeros_like(b_x)
            if spec.reset_after:
                b_hh[n_rows] = unscale(get(entry["bias_hn"]), slice(None), c)
            state[d.param("bias_ih")] = b_x
            state[d.param("bias_hh")] = b_hh
    return state


def effective_parameters(spec: GRUSpec, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the recurrence actually uses: weights as they are, biases summed where only their
    sum matters (r and z always; n too in the reset-before form). Keys name what they hold."""
    hidden = spec.hidden_size
    out: dict[str, np.ndarray] = {}
    for d in spec.directions():
        out[d.param("weight_ih")] = np.asarray(state[d.param("weight_ih")])
        out[d.param("weight_hh")] = np.asarray(state[d.param("weight_hh")])
        if not spec.bias:
            continue
        b_ih = np.asarray(state[d.param("bias_ih")], dtype=np.float64)
        b_hh = np.asarray(state[d.param("bias_hh")], dtype=np.float64)
        out[d.param("bias_rz")] = b_ih[: 2 * hidden] + b_hh[: 2 * hidden]
        if spec.reset_after:  # b_hn sits inside r * (W_hn h + b_hn): it stays apart
            out[d.param("bias_in")] = b_ih[2 * hidden :]
            out[d.param("bias_hn")] = b_hh[2 * hidden :]
        else:
            out[d.param("bias_n")] = b_ih[2 * hidden :] + b_hh[2 * hidden :]
    return out


@dataclass(frozen=True)
class WeightMismatch:
    """One effective parameter that differs between the file and its source."""

    name: str
    max_abs: float
    index: tuple[int, ...]
    count: int

    def describe(self) -> str:
        return f"{self.name}: {self.count} value(s) differ, worst {self.max_abs:.3g} at {list(self.index)}"


def compare_weights(
    spec: GRUSpec,
    stored: Mapping[str, np.ndarray],
    source: Mapping[str, np.ndarray],
    *,
    exact: bool,
    dtype: np.dtype,
    atol: float = 0.0,
) -> list[WeightMismatch]:
    """Effective parameters of the file against the source's (cast to the file's ``dtype``).

    An exact layout must give the same values (sums are formed the same way on both sides); a
    layout that computed new values (folded sums) gets a few units in the last place of ``dtype``;
    ``atol`` is added (half a quantization step for int8 weights).
    """
    eps = float(np.finfo(dtype).eps)
    cast = {k: np.asarray(v).astype(dtype) for k, v in source.items()}
    want = effective_parameters(spec, cast)
    have = effective_parameters(spec, {k: np.asarray(v).astype(dtype) for k, v in stored.items()})
    mismatches = []
    for name, ref in want.items():
        got = np.asarray(have[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            mismatches.append(WeightMismatch(name + f" (shape {list(got.shape)} vs {list(ref.shape)})", np.inf, (), 1))
            continue
        diff = np.abs(got - ref)
        bad = diff > (0.0 if exact else 4 * eps) * np.maximum(np.abs(ref), 1.0) + atol
        if bad.any():
            worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
            mismatches.append(WeightMismatch(name, float(diff.max()), tuple(int(i) for i in worst), int(bad.sum())))
    return mismatches
