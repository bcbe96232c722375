"""Shared helpers that are not fixtures (those are in ``conftest.py``): NumPy references and
running files, small cases, a lone CustomGRU written at the graph level, whole models, Keras.

Graph level: :func:`stack_model` builds, for a lone CustomGRU, the graph ``torch.onnx`` traces
(graph inputs ``input``/``h0``/``lengths``, the weights as initializers, one placeholder node,
outputs ``output``/``h_n``) directly with onnx_ir, then lowers it as :func:`gru_onnx.export`
does (:func:`gru_onnx.lowering.replace_placeholders`, the state lifting of a streaming file,
the workarounds, the metadata, compact names, the checked atomic save). :func:`graph_export`
is ``flat.export`` for a lone CustomGRU on that path: the same file, byte for byte
(``exporters/test_strategies.py::test_graph_level_files_are_the_files_export_writes``), in
milliseconds instead of a torch export's second. What tracing does (names, axes, dtype
conversion) stays tested through :func:`gru_onnx.export`.
"""

from __future__ import annotations

import collections
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import torch

import gru_onnx
from gru_onnx import _export_op, lowering, saving, workarounds
from gru_onnx._version import __version__
from gru_onnx.compact import compact_names
from gru_onnx.exporters import get_strategy
from gru_onnx.metadata import METADATA_KEY, read_metadata
from gru_onnx.streaming import StateLifter
from gru_onnx.tracing import TORCH_MIN_OPSET
from gru_onnx.wiring import record_consumers

import reference

# ------------------------------------------------------------------------ references and running files


def numpy_params(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.state_dict().items()}


def numpy_reference(gru, x, h0=None, lengths=None):
    """Reference output of a CustomGRU computed by tests/reference.py from the module's weights."""
    spec = gru.spec
    return reference.gru_stack(
        x.detach().double().numpy(),
        numpy_params(gru),
        num_layers=spec.num_layers,
        bidirectional=spec.bidirectional,
        activation_fn=reference.activation(spec.activation.name, **spec.activation.kwargs),
        recurrent_fn=reference.activation(spec.recurrent_activation.name, **spec.recurrent_activation.kwargs),
        reset_after=spec.reset_after,
        batch_first=spec.batch_first,
        h0=None if h0 is None else h0.detach().double().numpy(),
        lengths=None if lengths is None else lengths.numpy(),
    )


def run_ort(path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def feeds_for(args) -> dict[str, np.ndarray]:
    """A lone CustomGRU's ``(input, h0, lengths)`` as the feeds of its file (None left out)."""
    names = ("input", "h0", "lengths")
    return {n: a.numpy() for n, a in zip(names, args, strict=False) if a is not None}


def stream(session, feeds: dict[str, np.ndarray], sizes, axis: int = 1) -> dict[str, np.ndarray]:
    """Run ``feeds`` through a StreamingSession in chunks of ``sizes`` steps; outputs joined on ``axis``."""
    pieces: dict[str, list[np.ndarray]] = {}
    start = 0
    for size in sizes:
        chunk = {k: np.take(v, np.arange(start, start + size), axis=axis) for k, v in feeds.items()}
        for name, value in session.run(chunk).items():
            pieces.setdefault(name, []).append(value)
        start += size
    assert start == next(iter(feeds.values())).shape[axis]
    return {k: np.concatenate(v, axis=axis) for k, v in pieces.items()}


def scan_bodies(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    """The bodies of the main graph's Scan nodes."""
    return [a.g for n in model.graph.node if n.op_type == "Scan" for a in n.attribute if a.name == "body"]


def perturb(path, out, name, delta):
    """Add ``delta`` to parameter ``name`` (all its stored row blocks, ``name.rz``/``name.n``)."""
    model = onnx.load(path)
    for init in model.graph.initializer:
        if init.name == name or init.name.startswith(f"{name}."):
            array = onnx.numpy_helper.to_array(init) + np.float32(delta)
            init.CopyFrom(onnx.numpy_helper.from_array(array.astype(np.float32), init.name))
    onnx.save(model, out)


# ----------------------------------------------------------------------------------------- small cases

#: CustomGRU(5, 7) shapes against nn.GRU: layers, bidirectional, batch_first, with h0, bias.
NN_GRU_SHAPES = [
    (1, False, False, False, True),
    (2, True, False, True, True),
    (3, False, True, True, True),
    (2, True, True, False, False),
    (3, True, False, True, True),
]


def make_pair(layers, bidirectional, batch_first, bias, **custom):
    """An nn.GRU(5, 7) and a CustomGRU with its weights."""
    ref = torch.nn.GRU(5, 7, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    gru = gru_onnx.CustomGRU(5, 7, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                             bias=bias, **custom)  # fmt: skip
    gru.load_state_dict(ref.state_dict(), strict=True)
    return ref, gru


def example(gru, batch=3, seq=6, h0=False):
    """``(x, h0)`` for a CustomGRU of input 5 and hidden 7 (h0 None unless asked for)."""
    spec = gru.spec
    x = torch.randn((batch, seq, 5) if spec.batch_first else (seq, batch, 5))
    h = torch.randn(spec.num_layers * spec.num_directions, batch, 7) if h0 else None
    return x, h


def make(layers=1, bidirectional=False, batch_first=False, **kw):
    """A CustomGRU(4, 6)."""
    return gru_onnx.CustomGRU(4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, **kw)


def inputs(gru, batch=3, seq=5, with_h0=False):
    """``(x,)`` or ``(x, h0)`` for a CustomGRU(4, 6)."""
    spec = gru.spec
    x = torch.randn((batch, seq, 4) if spec.batch_first else (seq, batch, 4))
    if not with_h0:
        return (x,)
    return x, 0.5 * torch.randn(spec.num_layers * spec.num_directions, batch, 6)


def make_inputs(gru, batch=3, seq=6, with_lengths=False, with_h0=False):
    """``(input, h0, lengths)`` for a CustomGRU: lengths ``[seq, 1, seq - 2]`` with ``with_lengths``,
    a random ``h0`` (x0.5) with ``with_h0``; None where not asked for."""
    spec = gru.spec
    x = torch.randn((batch, seq, spec.input_size) if spec.batch_first else (seq, batch, spec.input_size))
    h0 = 0.5 * torch.randn(spec.num_layers * spec.num_directions, batch, spec.hidden_size) if with_h0 else None
    lengths = torch.tensor([seq, 1, seq - 2][:batch]) if with_lengths else None
    return x, h0, lengths


# ------------------------------------------ graph level: a lone CustomGRU written without torch.export

_IR_TYPES = {torch.float32: ir.DataType.FLOAT, torch.float16: ir.DataType.FLOAT16, torch.float64: ir.DataType.DOUBLE}


def _value(name: str, dtype: ir.DataType, dims: list[Any]) -> ir.Value:
    return ir.Value(name=name, type=ir.TensorType(dtype), shape=ir.Shape(dims))


def stack_model(
    gru,
    *,
    strategy: str = "auto",
    seq_len: int | None = None,
    batch: int | None = None,
    h0: bool = False,
    lengths: bool = False,
    opset: int = 18,
    target: str = "any",
    streaming: bool = False,
    chunk: int | None = None,
) -> tuple[ir.Model, dict[str, Any]]:
    """The lowered model of a lone CustomGRU and its metadata, without torch.export.

    ``seq_len``/``batch`` None keep that axis dynamic (``seq``/``batch``, as the export names
    them); the weights are the module's own tensors, in its floating type. ``streaming`` lifts
    the state to ``state_in``/``state_out`` (``chunk``: the fixed chunk length, else dynamic).
    """
    if streaming:
        seq_len = chunk
    spec = gru.spec
    state = gru.state_dict()
    dtype = _IR_TYPES[next(iter(state.values())).dtype]
    b = "batch" if batch is None else batch
    t = "seq" if seq_len is None else seq_len
    inputs = [_value("input", dtype, [b, t, spec.input_size] if spec.batch_first else [t, b, spec.input_size])]
    dirs = spec.num_directions
    if h0:
        inputs.append(_value("h0", dtype, [spec.num_layers * dirs, b, spec.hidden_size]))
    if lengths:
        inputs.append(_value("lengths", ir.DataType.INT64, [b]))
    weights = []
    for name in spec.all_parameter_names():
        tensor = ir.tensor(state[name].detach().numpy(), name=name)
        weights.append(ir.Value(name=name, type=ir.TensorType(dtype), shape=tensor.shape, const_value=tensor))
    config = _export_op.make_config(spec, has_h0=h0, has_lengths=lengths, batch_first=spec.batch_first, path="")
    stub = ir.Node(
        _export_op.STUB_DOMAIN, _export_op.STUB_OP, [*inputs, *weights], [ir.AttrString("config", config)],
        num_outputs=2,
    )  # fmt: skip
    y, h_n = stub.outputs
    y.name, y.type = "output", ir.TensorType(dtype)
    y.shape = ir.Shape([b, t, dirs * spec.hidden_size] if spec.batch_first else [t, b, dirs * spec.hidden_size])
    h_n.name, h_n.type, h_n.shape = "h_n", ir.TensorType(dtype), ir.Shape([spec.num_layers * dirs, b, spec.hidden_size])
    traced = max(opset, TORCH_MIN_OPSET)  # torch.onnx writes opset 18 at the oldest
    graph = ir.Graph(
        inputs, [y, h_n], nodes=[stub], initializers=weights,
        opset_imports={"": traced, _export_op.STUB_DOMAIN: 1}, name="main_graph",
    )  # fmt: skip
    model = ir.Model(graph, ir_version=10, producer_name="pytorch", producer_version=torch.__version__)
    chosen = get_strategy(strategy)
    lifter = None
    if streaming:
        lifter = StateLifter((), "batch" if batch is None else batch)
        lifter.taken.update(v.name for v in (*graph.inputs, *graph.outputs))
    stacks = lowering.replace_placeholders(model, chosen, opset, lifter, target)
    workarounds.apply_all(graph)
    used = sorted({s["strategy"] for s in stacks})
    metadata = {
        "producer": "gru-onnx",
        "version": __version__,
        "strategy": used[0] if len(used) == 1 else "mixed",
        "requested_strategy": chosen.name,
        "target": target,
        "opset": opset,
        "dtype": str(next(iter(state.values())).dtype).removeprefix("torch."),
        "dynamic_seq": seq_len is None,
        "dynamic_batch": batch is None,
        "stacks": stacks,
    }
    if lifter is not None:
        metadata["streaming"] = lifter.metadata()
        metadata["chunk"] = chunk
        metadata["input_time_axes"] = {"input": 1 if spec.batch_first else 0}
    model.metadata_props[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    if opset != traced:
        lowering.relabel_opset(model, opset)
    compact_names(model)
    record_consumers(model)  # as the export does: which nodes read each weight, metadata format 2
    return model, json.loads(model.metadata_props[METADATA_KEY])


def stack_file(gru, path: Path, **options: Any) -> dict[str, Any]:
    """:func:`stack_model` written to ``path`` (checked by ONNX's full checker, IR version
    stamped, as the export writes); returns the metadata as written."""
    model, _ = stack_model(gru, **options)
    saving.save_model(model, Path(path))
    return read_metadata(path)


@dataclass
class StackExport:
    """What :func:`graph_export` wrote, shaped like the :class:`gru_onnx.ExportResult` the same
    call of :func:`gru_onnx.export` returns (the file is the same, byte for byte)."""

    path: Path
    metadata: dict[str, Any]
    parity: Any = None

    @property
    def strategy(self) -> str:
        return self.metadata["strategy"]

    @property
    def passed(self) -> bool:
        return self.parity is None or self.parity.passed

    @property
    def node_counts(self) -> dict[str, int]:
        return dict(collections.Counter(n.op_type for n in onnx.load(self.path).graph.node))


def graph_export(
    gru,
    args,
    path,
    *,
    strategy: str = "auto",
    dynamic_seq: bool = False,
    dynamic_batch: bool = True,
    opset: int = 18,
    target: str = "any",
    dtype: str | None = None,
    check: bool = True,
    streaming: bool = False,
    chunk: int | None = None,
) -> StackExport:
    """``flat.export(gru, args, path, ...)`` for a lone CustomGRU, without torch.export.

    ``args`` are ``(input, h0, lengths)`` (None or missing where not given); sizes, optional
    inputs and layout are read from them as the export reads them. With ``dtype`` the module
    and floating args are converted copies; with ``check`` the file is checked against the
    (converted) module on the (converted) args, as the export checks it.
    """
    args = tuple(args)
    x, h0, lengths = args + (None,) * (3 - len(args))
    if dtype is not None:
        target_type = getattr(torch, dtype)
        gru = copy.deepcopy(gru).to(target_type)
        args = tuple(a.to(target_type) if a is not None and a.is_floating_point() else a for a in args)
    batch_axis, seq_axis = (0, 1) if gru.spec.batch_first else (1, 0)
    metadata = stack_file(
        gru, Path(path), strategy=strategy, opset=opset, target=target, h0=h0 is not None,
        lengths=lengths is not None, seq_len=None if dynamic_seq else int(x.shape[seq_axis]),
        batch=None if dynamic_batch else int(x.shape[batch_axis]), streaming=streaming, chunk=chunk,
    )  # fmt: skip
    parity = gru_onnx.check_parity(gru, path, args) if check else None
    return StackExport(Path(path), metadata, parity)


def small_export(tmp_path, name="m.onnx", seq=6, lengths=False, **options):
    """``CustomGRU(4, 5, **options)`` (seed 0) on a ``[seq, 3, 4]`` example, lengths
    ``[seq, 2, 1]`` with ``lengths``, written at the graph level (``strategy``, ``opset`` and
    ``dtype`` go to the export): ``(gru, (x, None, lengths), result)``."""
    export = {k: options.pop(k) for k in ("strategy", "opset", "dtype") if k in options}
    torch.manual_seed(0)
    gru = gru_onnx.CustomGRU(4, 5, **options)
    x = torch.randn(seq, 3, 4)
    lens = torch.tensor([seq, 2, 1]) if lengths else None
    return gru, (x, None, lens), graph_export(gru, (x, None, lens), tmp_path / name, **export)


def export_and_run(gru, args, tmp_path, **kwargs):
    """Write ``gru`` at the graph level (unrolled unless told) and run it on ``args``: ``(result, outputs)``."""
    path = tmp_path / "gru.onnx"
    kwargs.setdefault("strategy", "unrolled")
    result = graph_export(gru, args, path, **kwargs)
    feeds = {name: a.numpy() for name, a in zip(["input", "h0"], args, strict=False)}
    return result, run_ort(path, feeds)


# ------------------------------------------------------------------------------------ the command line


def one_line_error(result, code: int = 2) -> str:
    """The one line a command printed on failure with exit code ``code``."""
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


#: A ``--model`` factory module whose factories return export options (``opts_models``).
OPTIONS_FACTORY = """
import torch
from torch import nn
from gru_onnx import CustomGRU

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = CustomGRU(4, 8, batch_first=True, activation="relu")
        self.head = nn.Linear(8, 3)

    def forward(self, feats):
        y, _ = self.rnn(feats)
        return self.head(y)

def with_options():
    torch.manual_seed(0)
    return Tagger(), (torch.randn(2, 6, 4),), {"output_names": ["tags"], "strategy": "loop", "dynamic_seq": True}

def unknown_option():
    return Tagger(), (torch.randn(2, 6, 4),), {"colour": "red"}

def loose():
    torch.manual_seed(0)
    return Tagger(), (torch.randn(2, 6, 4),), {"atol": 1e-30, "rtol": 0.0}
"""

# ---------------------------------------------------------------------------------------- whole models


class TokenTagger(torch.nn.Module):
    """The tagger of the external-data issue (#13) in miniature: an embedding in front of a
    CustomGRU and a head."""

    def __init__(self, vocab: int = 50, embed: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.rnn = gru_onnx.CustomGRU(embed, hidden, batch_first=True, activation="relu")
        self.head = torch.nn.Linear(hidden, 5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.embed(tokens))
        return self.head(y)


TOKENS = torch.tensor([[1, 7, 3, 9, 2], [4, 4, 0, 49, 11]])


def export_pair(model: torch.nn.Module, path: Path, **options) -> gru_onnx.ExportResult:
    """A token model exported as a model + external data pair (loop, dynamic length, unchecked)."""
    import flat

    options = {"check": False, "external_data": True, **options}
    return flat.export(model, (TOKENS,), path, dynamic_seq=True, strategy="loop", **options)


def external_tensors(path: Path) -> list[onnx.TensorProto]:
    """Every tensor of the model at ``path`` stored in external data (loop bodies included)."""
    model = onnx.load(str(path), load_external_data=False)
    tensors = onnx.external_data_helper._get_all_tensors(model)
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def set_location(path: Path, location: str) -> None:
    """Point every external tensor of the model at ``path`` to ``location`` (a crafted file)."""
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(path))


class FeatureTagger(torch.nn.Module):
    """A batch-first tagger returning a dict (the Triton tests' model)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = gru_onnx.CustomGRU(4, 6, batch_first=True, activation="relu")
        self.head = torch.nn.Linear(6, 3)

    def forward(self, feats: torch.Tensor) -> dict:
        y, _ = self.rnn(feats)
        return {"tags": self.head(y), "pooled": y.mean(1)}


def triton_config(repo, name):
    """A written config.pbtxt parsed with Triton's own schema."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    return text_format.Parse((repo / name / "config.pbtxt").read_text(), pb.ModelConfig())


class Pair(NamedTuple):
    mask: torch.Tensor
    energy: torch.Tensor


class Denoiser(torch.nn.Module):
    """Three GRUs, outputs as a NamedTuple."""

    def __init__(self) -> None:
        super().__init__()
        self.vad = gru_onnx.CustomGRU(6, 4, batch_first=True, activation="relu")
        self.noise = gru_onnx.CustomGRU(10, 5, batch_first=True, activation="relu")
        self.denoise = gru_onnx.CustomGRU(15, 6, batch_first=True, activation="relu")
        self.gain = torch.nn.Linear(6, 3)

    def forward(self, features: torch.Tensor) -> Pair:
        v, _ = self.vad(features)
        n, _ = self.noise(torch.cat([v, features], dim=-1))
        d, _ = self.denoise(torch.cat([v, n, features], dim=-1))
        return Pair(torch.sigmoid(self.gain(d)), torch.sigmoid(v.sum(-1)))


class Nested(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = gru_onnx.CustomGRU(3, 4, batch_first=True)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> dict:
        y, h = self.gru(x)
        return {"heads": {"tag": self.head(y), "pooled": y.mean(1)}, "state": (h,)}


class Plain(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = gru_onnx.CustomGRU(3, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.gru(x)
        return torch.sigmoid(y), torch.tanh(h)


# ------------------------------------------------------------------------ Keras (imported when called)

KERAS_ATOL, KERAS_RTOL = 1e-5, 1e-4


def k2_hard_sigmoid(x):
    """Keras 2's hard_sigmoid, written here from its definition (not gru-onnx's)."""
    import keras

    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def keras_outputs(obj, *inputs):
    """What Keras computes (inference mode), as a list of NumPy arrays."""
    import keras

    out = obj(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
    out = out if isinstance(out, list | tuple) else [out]
    return [keras.ops.convert_to_numpy(o) for o in out]


def assert_same(got, want, atol=KERAS_ATOL, rtol=KERAS_RTOL):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol)


def keras_seq(batch=2, steps=6, features=4, scale=2.0, seed=0):
    """Inputs large enough to reach every activation's kinks and saturation."""
    return (scale * np.random.default_rng(seed).standard_normal((batch, steps, features))).astype(np.float32)


def functional_model():
    """Two inputs, concatenations, Add, TimeDistributed, Dropout, Embedding; two outputs."""
    import keras
    from keras import layers

    tokens = keras.Input((None,), dtype="int32", name="tokens")
    feats = keras.Input((None, 4), name="feats")
    e = layers.Embedding(11, 5)(tokens)
    both = layers.Concatenate(name="both")([e, feats])
    both = layers.Dropout(0.5)(both)
    g1 = layers.GRU(6, return_sequences=True, activation="relu", recurrent_activation="hard_sigmoid")(both)
    g2 = layers.GRU(6, return_sequences=True, go_backwards=True, reset_after=False)(both)
    mixed = layers.Add()([g1, layers.Activation("tanh")(g2)])
    bi, h_f, h_b = layers.Bidirectional(layers.GRU(4, return_sequences=True, return_state=True))(mixed)
    tagger = layers.TimeDistributed(layers.Dense(3, activation="softmax"), name="tags")(bi)
    summary = layers.Dense(2, name="summary")(layers.Concatenate()([h_f, h_b]))
    return keras.Model([tokens, feats], [tagger, summary])


def sequential(*stack, shape=(None, 4), dtype="float32"):
    """A Keras Sequential model of ``stack`` on an input of ``shape``."""
    import keras

    return keras.Sequential([keras.Input(shape, dtype=dtype), *stack])
