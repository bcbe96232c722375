"""Argument groups: each adds its flags to a command and hands the command one :class:`Given`.

A group is a list of :class:`Flag` s, each bound to one field of an option group
(:mod:`gru_onnx.options`, by its flat name :data:`gru_onnx.options.FLAT_FIELDS`) or of a
command's own source (the embedded model, ``--model``, ``--keras``). A command is the list of
groups it takes; two commands that take the same group honour its flags the same way, and a
flag that does not apply to the source in use is refused by :meth:`Given.refuse` with one line.
Choices come from :mod:`gru_onnx.registry`; nothing here imports torch or onnx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from gru_onnx import registry
from gru_onnx.options import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_SEQUENCE_IDLE_US,
    DEFAULT_WEB_FRAMES,
    MAX_THREADS,
    SEQUENCE_STRATEGIES,
    TENSORRT_PRECISIONS,
    TRITON_DEVICES,
)

#: The embedded default model of ``gru-onnx export`` (documented in the README and the quickstart).
DEFAULTS = {"input_size": 16, "hidden_size": 32, "num_layers": 1, "seq_len": 20, "batch": 2, "seed": 0}


@dataclass(frozen=True)
class Flag:
    """One command-line flag: its click declaration, the field it sets, and how its value maps."""

    decls: tuple[str, ...]
    field: str
    options: Mapping[str, Any] = field(default_factory=dict)
    convert: Callable[[Any], Any] | None = None

    @property
    def dest(self) -> str:
        """The click parameter name (the last declaration without dashes, or an explicit name)."""
        names = [d for d in self.decls if not d.startswith("-")]
        if names:
            return names[0]
        longest = max((d for d in self.decls if d.startswith("--")), key=len).split("/")[0]
        return longest.lstrip("-").replace("-", "_")

    def label(self, value: Any = True) -> str:
        """How a message names the flag as given (``--static-batch``; ``--no-bias`` for a false
        ``--bias/--no-bias``)."""
        on, _, off = next(d for d in self.decls if d.startswith("--")).partition("/")
        return off if off and value is False else on


@dataclass
class Given:
    """What a command's groups received: every field's value (defaults included), the fields
    given on the command line, and the flag that set each."""

    values: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def refuse(self, fields: Iterable[str], because: str) -> None:
        """Refuse (usage error) the first of ``fields`` given on the command line, saying why."""
        for name in fields:
            if name in self.given:
                raise click.UsageError(f"{self.labels[name]} {because}")

    def flat(self, fields: Iterable[str], factory: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``fields``' values: a factory's options win over the flags' defaults, flags given on
        the command line win over both."""
        wanted = list(fields)
        out = {k: self.values[k] for k in wanted if k in self.values}
        out.update({k: v for k, v in (factory or {}).items()})
        out.update({k: self.given[k] for k in wanted if k in self.given})
        return out


class Group:
    """Flags that belong together; decorating a command adds them and collects them into ``given``."""

    def __init__(self, *flags: Flag) -> None:
        self.flags = flags

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.flags)

    def __call__(self, command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def collect(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            given: Given = kwargs.setdefault("given", Given())
            for flag in self.flags:
                raw = kwargs.pop(flag.dest)
                value = flag.convert(raw) if flag.convert is not None and raw is not None else raw
                given.values[flag.field] = value
                given.labels[flag.field] = flag.label(raw)
                source = ctx.get_parameter_source(flag.dest)
                if source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
                    given.given[flag.field] = value
            return command(*args, **kwargs)

        for flag in reversed(self.flags):
            collect = click.option(*flag.decls, **flag.options)(collect)
        return collect


def _tuple_or_none(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) or None


def _chunks(value: str) -> tuple[int, ...]:
    """``--chunks 1,5`` -> (1, 5); anything else is a one-line usage error."""
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a comma-separated list of chunk sizes", param_hint="--chunks"
        ) from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{value!r}: chunk sizes must be positive", param_hint="--chunks")
    return sizes


class _Path(click.Path):
    """A click path that refuses an empty value: ``-o "$OUT"`` with OUT unset must not mean the
    working directory (``Path("")`` is ``.``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("the path is empty", param, ctx)
        return super().convert(value, param, ctx)


def path(*, folder: bool = False) -> click.Path:
    """The path type of every file (or, with ``folder``, folder) argument and option."""
    return _Path(file_okay=not folder, dir_okay=folder, path_type=Path)


STRATEGY_HELP = "Export strategy: " + ", ".join(registry.strategy_names()) + "."

# ---------------------------------------------------------------- export's option groups

GRAPH = Group(
    Flag(("--strategy",), "strategy", {"default": "auto", "show_default": True, "metavar": "NAME",
                                      "help": STRATEGY_HELP}),
    Flag(("--opset",), "opset", {"type": int, "default": registry.DEFAULT_OPSET, "show_default": True,
                                 "help": f"ONNX opset ({registry.MIN_OPSET} to {registry.MAX_OPSET})."}),
    Flag(("--dtype",), "dtype", {"type": click.Choice(registry.EXPORT_DTYPES), "default": "float32",
                                 "show_default": True, "help": "Weights and compute type of the exported file."}),
    Flag(("--target",), "target", {"type": click.Choice(registry.TARGETS), "default": "any", "show_default": True,
                                   "help": "Runtime the file is for: auto picks the fastest form exact there "
                                           "(any: exact everywhere)."}),
)  # fmt: skip

SHAPES = Group(
    Flag(("--static-batch",), "dynamic_batch", {"is_flag": True, "help": "Fix the batch axis at the example's "
         "batch size (any size, 1 included) instead of leaving it dynamic."}, convert=lambda v: not v),
    Flag(("--dynamic-seq",), "dynamic_seq", {"is_flag": True,
                                             "help": "Leave the sequence length dynamic (loop, native, auto)."}),
)  # fmt: skip

STREAMING = Group(
    Flag(("--streaming", "streaming"), "streaming", {"is_flag": True, "help": "Give every CustomGRU call a state "
         "input and output ([batch, layers, hidden]) to run chunk by chunk."}),
    Flag(("--chunk",), "chunk", {"type": click.IntRange(min=1), "help": "With --streaming: fix the chunk length "
         "(time steps per call) for the fastest file."}),
    Flag(("--streaming-exclude",), "streaming_exclude", {"multiple": True, "metavar": "MODULE", "help": "With "
         "--streaming: a module path whose CustomGRUs keep their state inside the model (repeatable)."},
         convert=tuple),
)  # fmt: skip

_PROVIDER = Flag(
    ("--provider", "providers"), "providers",
    {"multiple": True, "default": ("cpu",), "show_default": True,
     "type": click.Choice([*registry.runner_names(), "all"]),
     "help": "Runtime(s) to check on (repeat the option); all: every in-process runtime available here. "
             "A runtime named that cannot run here is an error unless --skip-unavailable."},
    convert=tuple,
)  # fmt: skip
_SKIP = Flag(("--skip-unavailable",), "skip_unavailable", {"is_flag": True, "help": "Report a runtime named with "
             "--provider that cannot run here as skipped instead of failing."})  # fmt: skip
_ATOL = Flag(("--atol",), "atol", {"type": click.FloatRange(min=0.0), "help": "Absolute tolerance (default per "
             "dtype)."})  # fmt: skip
_RTOL = Flag(("--rtol",), "rtol", {"type": click.FloatRange(min=0.0), "help": "Relative tolerance (default per "
             "dtype)."})  # fmt: skip
_SAMPLES = Flag(("--samples",), "samples", {"type": click.IntRange(min=1), "default": 3, "show_default": True,
                "help": "Number of samples (the example and its variations, or seeded random ones)."})  # fmt: skip
_SCALE = Flag(("--scale", "scales"), "scales", {"type": click.FloatRange(min=0.0, min_open=True), "multiple": True,
              "help": "Input magnitude of the samples, cycled (repeat the option); default x1, x10, x100 "
                      "(float16: x1, x4)."}, convert=_tuple_or_none)  # fmt: skip
_NONFINITE = Flag(("--allow-nonfinite",), "allow_nonfinite", {"is_flag": True, "help": "Accept inputs holding "
                  "NaN or infinity (refused by default: they would make the comparison meaningless)."})  # fmt: skip
_BUDGET = Flag(("--memory-budget",), "memory_budget", {"type": click.IntRange(min=1), "default": DEFAULT_MEMORY_BUDGET,
               "show_default": True, "metavar": "BYTES", "help": "Most bytes one sample's inputs, outputs and "
               "states may take; larger --batch/--seq-len are refused before anything is allocated."})  # fmt: skip

#: The check as ``export`` runs it (on the export's own example).
EXPORT_CHECK = Group(
    Flag(("--check/--no-check",), "check", {"default": True, "show_default": True,
         "help": "Run the written file and compare it with PyTorch (see --provider)."}),
    _PROVIDER, _SKIP, _ATOL, _RTOL, _SAMPLES, _SCALE,
)  # fmt: skip

SAVING = Group(
    Flag(("--external-data/--no-external-data",), "external_data", {"default": None, "help": "Write the tensors "
         "to a data file beside the model (default: only when the model reaches 2 GiB)."}),
    Flag(("--ir-version",), "ir_version", {"type": click.IntRange(min=1), "metavar": "N", "help": "Stamp the file "
         "with this ONNX IR version (default: the lowest its content needs, so older runtimes load it); refused "
         "when the content needs more."}),
)  # fmt: skip

QUANTIZE = Group(
    Flag(("--quantize",), "quantize", {"type": click.Choice(registry.QUANTIZE_MODES), "help": "Write an int8 file "
         "(see gru-onnx quantize), checked against the float model."}),
    Flag(("--per-channel/--per-tensor",), "per_channel", {"default": True, "show_default": True,
         "help": "int8: one scale per output channel, or one per weight."}),
)  # fmt: skip

# ---------------------------------------------------------------- sources of a model

#: The embedded default model and its example (``export`` without --model or --keras).
EMBEDDED = Group(
    Flag(("--activation",), "activation", {"default": "tanh", "show_default": True, "help": "Candidate "
         "activation, e.g. relu, gelu, 'leaky_relu(alpha=0.2)'. See `gru-onnx activations`."}),
    Flag(("--recurrent-activation",), "recurrent_activation", {"default": "sigmoid", "show_default": True,
         "help": "Gate activation."}),
    Flag(("--reset-after/--reset-before",), "reset_after", {"default": True, "show_default": True, "help": "Reset "
         "gate after the recurrent matmul (PyTorch/cuDNN) or before it (Cho et al.)."}),
    Flag(("--input-size",), "input_size", {"type": click.IntRange(min=1), "default": DEFAULTS["input_size"],
         "show_default": True}),
    Flag(("--hidden-size",), "hidden_size", {"type": click.IntRange(min=1), "default": DEFAULTS["hidden_size"],
         "show_default": True}),
    Flag(("--num-layers",), "num_layers", {"type": click.IntRange(min=1), "default": DEFAULTS["num_layers"],
         "show_default": True}),
    Flag(("--bias/--no-bias",), "bias", {"default": True, "show_default": True}),
    Flag(("--batch-first",), "batch_first", {"is_flag": True, "help": "Input is [batch, seq, feature]."}),
    Flag(("--bidirectional",), "bidirectional", {"is_flag": True}),
    Flag(("--dropout",), "dropout", {"type": click.FloatRange(0.0, 1.0, max_open=True), "default": 0.0,
         "show_default": True, "help": "Training-time dropout between layers (no effect on the export)."}),
    Flag(("--with-h0",), "with_h0", {"is_flag": True, "help": "Give the exported graph an initial-state input h0."}),
    Flag(("--lengths", "with_lengths"), "with_lengths", {"is_flag": True, "help": "Give the graph a lengths input "
         "(int64 [batch]) for padded batches."}),
)  # fmt: skip

#: The example input every source takes (the embedded model, a Keras model; not --model's own).
EXAMPLE = Group(
    Flag(("--seq-len", "example_seq_len"), "example_seq_len", {"type": click.IntRange(min=1), "help": "Sequence "
         f"length of the example input (default {DEFAULTS['seq_len']}, Keras models 16; fixed in an unrolled "
         "export)."}),
    Flag(("--batch", "example_batch"), "example_batch", {"type": click.IntRange(min=1), "default": DEFAULTS["batch"],
         "show_default": True, "help": "Batch size of the example input (at least 2 unless --static-batch: the "
         "batch axis stays dynamic)."}),
    Flag(("--seed",), "seed", {"type": int, "default": DEFAULTS["seed"], "show_default": True, "help": "Seed for "
         "the weights (without --checkpoint) and the example input."}),
)  # fmt: skip

CHECKPOINT = Group(
    Flag(("--checkpoint",), "checkpoint", {"type": path(), "help": "A state_dict saved with torch.save, loaded "
         "with weights_only=True."}),
)  # fmt: skip

MODEL = Group(
    Flag(("--model", "factory"), "factory", {"metavar": "PKG.MODULE:FACTORY", "help": "Your own model: FACTORY() "
         "returns (module, example_args) or (module, example_args, options)."}),
)  # fmt: skip

KERAS = Group(
    Flag(("--keras", "keras_path"), "keras_path", {"type": path(), "help": "A Keras 3 model (.keras or legacy "
         ".h5), checked against Keras itself (gru-onnx[keras])."}),
    Flag(("--import", "imports"), "imports", {"multiple": True, "metavar": "MODULE", "help": "With --keras: "
         "import MODULE first, so the custom Keras classes it registers can be loaded (repeatable)."},
         convert=tuple),
)  # fmt: skip

# ---------------------------------------------------------------- check's groups

#: The check as ``check`` runs it: the check group in full.
CHECK = Group(
    _PROVIDER, _SKIP, _ATOL, _RTOL, _SAMPLES, _SCALE,
    Flag(("--seq-len",), "seq_len", {"type": click.IntRange(min=1), "help": "Longest sequence of the samples."}),
    Flag(("--batch",), "batch", {"type": click.IntRange(min=1), "help": "Batch size of the samples."}),
    Flag(("--seed",), "seed", {"type": int, "default": 0, "show_default": True}),
    Flag(("--inputs",), "inputs", {"type": path(), "help": "Inputs from an .npz whose keys are the file's input "
         "names."}),
    Flag(("--streaming", "check_streaming"), "streaming", {"is_flag": True, "help": "Run the file chunk by chunk, "
         "carrying its states, against PyTorch on the whole sequence (streaming files are always checked so)."}),
    Flag(("--chunks",), "chunks", {"metavar": "N,N,...", "help": "With --streaming: chunk sizes to try (default: "
         "whole, 1 and an uneven split; a --chunk file: its chunk)."}, convert=_chunks),
    _NONFINITE, _BUDGET,
)  # fmt: skip

REPORT = Group(
    Flag(("--report", "report_path"), "report_path", {"type": path(), "help": "Write the report as JSON (schema: "
         "gru_onnx/report.schema.json)."}),
    Flag(("--plot", "plot_path"), "plot_path", {"type": path(), "help": "Draw error against time step as a PNG "
         "(needs gru-onnx[plot])."}),
)  # fmt: skip

# ---------------------------------------------------------------- quantize, package, bench

QUANTIZE_MODE = Group(
    Flag(("--mode",), "quantize", {"type": click.Choice(registry.QUANTIZE_MODES), "default": "dynamic",
         "show_default": True, "help": "weights: int8 storage, float compute; dynamic: int8 MatMuls, activations "
         "quantized at run time."}),
    QUANTIZE.flags[1],
)  # fmt: skip

# ---------------------------------------------------------------- package's option groups

#: Flags of both package forms (--triton, --web).
PACKAGE = Group(
    Flag(("--name",), "name", {"help": "Model name (Triton: in the repository; web: in the manifest and page). "
         "Default: the file's name without .onnx."}),
    Flag(("--force",), "force", {"is_flag": True, "help": "Replace an existing entry (Triton: REPO/NAME; web: a "
         "bundle or empty DIR)."}),
)  # fmt: skip

TRITON = Group(
    Flag(("--max-batch-size",), "max_batch_size", {"type": click.IntRange(min=0), "help": "Triton's max_batch_size "
         "(default: 8 with a dynamic batch axis first on every tensor, else 0)."}),
    Flag(("--instances",), "instances", {"type": click.IntRange(min=1), "default": 1, "show_default": True,
         "help": "Instances per device."}),
    Flag(("--device",), "device", {"type": click.Choice(TRITON_DEVICES), "default": "cpu", "show_default": True}),
    Flag(("--max-sequence-idle-us",), "max_sequence_idle_us", {"type": click.IntRange(min=1), "metavar": "US",
         "help": f"Streaming files: how long a silent stream keeps its state [default: {DEFAULT_SEQUENCE_IDLE_US}, a "
         "minute; Triton's own default, 1 s, cuts a stream that pauses]."}),
    Flag(("--sequence-strategy",), "sequence_strategy", {"type": click.Choice(SEQUENCE_STRATEGIES),
         "help": "Streaming files: direct (one batch slot per stream) or oldest (batch the oldest requests of the "
         "candidate streams) [default: direct]."}),
    Flag(("--max-candidate-sequences",), "max_candidate_sequences", {"type": click.IntRange(min=1),
         "help": "With --sequence-strategy oldest: streams considered for each batch."}),
    Flag(("--preferred-batch-size", "preferred_batch_sizes"), "preferred_batch_sizes", {"type": click.IntRange(
         min=1), "multiple": True, "help": "With --sequence-strategy oldest: batch sizes to form (repeatable)."},
         convert=tuple),
    Flag(("--max-queue-delay-us",), "max_queue_delay_us", {"type": click.IntRange(min=0), "metavar": "US",
         "help": "How long a request may wait for others to form a batch."}),
    Flag(("--cuda-graph",), "cuda_graph", {"is_flag": True, "help": "With --device gpu: ONNX Runtime's CUDA "
         "graphs (files without control flow, static shapes, --max-batch-size 0)."}),
    Flag(("--tensorrt",), "tensorrt", {"type": click.Choice(TENSORRT_PRECISIONS), "help": "With --device gpu: "
         "ONNX Runtime's TensorRT accelerator at this precision, where TensorRT runs the file as intended."}),
)  # fmt: skip

WEB = Group(
    Flag(("--frames",), "frames", {"type": click.IntRange(min=1), "help": "Web: frames of the "
         f"page's reference input, a lone CustomGRU's seeded random input [default: {DEFAULT_WEB_FRAMES}, or the "
         "file's own length when it is fixed]."}),
    Flag(("--seed",), "seed", {"type": click.IntRange(min=0), "default": 0, "show_default": True,
         "help": "Web: seed of the reference input."}),
    Flag(("--atol",), "atol", {"type": click.FloatRange(min=0.0), "help": "Web: the page's absolute tolerance "
         "(default per dtype, as the check's)."}),
    Flag(("--rtol",), "rtol", {"type": click.FloatRange(min=0.0), "help": "Web: the page's relative tolerance "
         "(default per dtype)."}),
)  # fmt: skip

BENCH = Group(
    Flag(("--provider", "providers"), "providers", {"multiple": True, "default": ("cpu",), "show_default": True,
         "type": click.Choice(registry.runner_names()), "help": "Runtime(s) to time the file on (repeat the "
         "option); OpenVINO is given static shapes."}, convert=tuple),
    Flag(("--batch",), "batch", {"type": click.IntRange(min=1), "default": 1, "show_default": True}),
    Flag(("--seq-len",), "seq_len", {"type": click.IntRange(min=1), "help": "Sequence length (default: the "
         "file's, else 200)."}),
    Flag(("--threads",), "threads", {"type": click.IntRange(min=1, max=MAX_THREADS), "default": 1,
         "show_default": True, "help": f"Intra-op threads, 1 to {MAX_THREADS}."}),
    Flag(("--warmup",), "warmup", {"type": click.IntRange(min=0), "default": 10, "show_default": True}),
    Flag(("--runs",), "runs", {"type": click.IntRange(min=1), "default": 100, "show_default": True,
         "help": "Timed runs per runner."}),
    Flag(("--cuda-graph",), "cuda_graph", {"is_flag": True, "help": "With --provider cuda: capture the file once "
         "as a CUDA graph and time its replays (unrolled files; control flow is refused with the reason)."}),
)  # fmt: skip
