"""Option groups: every decision of an export, a check, a quantization or a package, as frozen objects.

Each group validates its own fields when built and imports neither torch nor onnx, so the
command line builds the same objects the Python API takes (one click decorator per group,
:mod:`gru_onnx.cli.groups`), and a flag is honoured by every command that takes its group, by
construction. Rules that cross groups live in one place, :meth:`ExportOptions.__post_init__`.

A ``--model`` factory may return a flat mapping of fields (``{"strategy": "loop", "atol":
1e-4}``); :func:`groups_from_flat` maps it onto the groups, the one place that knows the flat
names (:data:`FLAT_FIELDS`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gru_onnx import registry
from gru_onnx.errors import GruOnnxUsageError

#: The check's default allocation budget: inputs, outputs and states of one sample together.
DEFAULT_MEMORY_BUDGET = 2 * 2**30
#: The most intra-op threads a runtime is given (bench ``--threads``, ``StreamingSession(threads=)``):
#: more than any machine has cores; a larger number only makes a runtime spawn threads for minutes.
MAX_THREADS = 1024


def check_threads(value: Any, *, allow_none: bool = False) -> None:
    """Refuse ``threads`` that is not a whole number in ``1..``:data:`MAX_THREADS` (one line)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS:
        none = " or None" if allow_none else ""
        raise GruOnnxUsageError(f"threads must be a whole number from 1 to {MAX_THREADS}{none}, got {value!r}")


def _positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GruOnnxUsageError(f"{name} must be a positive integer, got {value!r}")


def _tuple_of_str(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    items = tuple(value)
    if not all(isinstance(v, str) for v in items):
        raise GruOnnxUsageError(f"{name} must be strings, got {list(items)!r}")
    return items


def _tolerance(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise GruOnnxUsageError(f"{name} must be a finite number >= 0, got {value!r}")


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class GraphOptions:
    """How the GRU stacks are written: the strategy, the opset, the floating type, and the
    runtime the file is for (``auto`` picks the fastest form exact there; ``any``: everywhere).
    ``dtype=None`` keeps the model's own type."""

    strategy: str = "auto"
    opset: int = registry.DEFAULT_OPSET
    dtype: str | None = None
    target: str = "any"

    def __post_init__(self) -> None:
        registry.strategy_name(self.strategy)
        if self.dtype is not None and not isinstance(self.dtype, str):  # a torch.dtype
            _set(self, "dtype", str(self.dtype).removeprefix("torch."))
        if isinstance(self.opset, bool) or not isinstance(self.opset, int):
            raise GruOnnxUsageError(f"opset must be an integer, got {self.opset!r}")
        if not registry.MIN_OPSET <= self.opset <= registry.MAX_OPSET:
            raise GruOnnxUsageError(
                f"opset {self.opset} is not supported (use {registry.MIN_OPSET} to {registry.MAX_OPSET})"
            )
        if self.dtype is not None and self.dtype not in registry.EXPORT_DTYPES:
            raise GruOnnxUsageError(
                f"unknown dtype {self.dtype!r}; valid dtypes: {', '.join(registry.EXPORT_DTYPES)}"
            )
        if self.target not in registry.TARGETS:
            raise GruOnnxUsageError(f"unknown target {self.target!r}; valid targets: {', '.join(registry.TARGETS)}")


@dataclass(frozen=True)
class ShapeOptions:
    """Which axes stay dynamic and what the graph's inputs and outputs are called.

    ``dynamic_shapes`` (as for ``torch.export``) says it axis by axis and then wins over the two
    flags' axis rules; explicit ``input_names``/``output_names`` win over the naming rules.
    """

    dynamic_batch: bool = True
    dynamic_seq: bool = False
    dynamic_shapes: Any = None
    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _set(self, "input_names", _tuple_of_str("input_names", self.input_names))
        _set(self, "output_names", _tuple_of_str("output_names", self.output_names))
        names = [*(self.input_names or ()), *(self.output_names or ())]
        if any(not n for n in names):
            raise GruOnnxUsageError("input_names and output_names must not be empty strings")
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise GruOnnxUsageError(
                f"{twice[0]!r} is given twice in input_names and output_names: each graph input and output "
                "needs its own name"
            )


@dataclass(frozen=True)
class StreamingOptions:
    """A streaming file: every CustomGRU call's state lifted to a graph input/output pair.

    ``chunk`` fixes the time steps per call; ``exclude`` names modules whose CustomGRUs keep
    their state inside the model."""

    enabled: bool = False
    chunk: int | None = None
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "exclude", _tuple_of_str("streaming_exclude", self.exclude) or ())
        _positive_int("chunk (time steps per call)", self.chunk, allow_none=True)
        if not self.enabled and self.chunk is not None:
            raise GruOnnxUsageError(
                "chunk is the fixed chunk length of a streaming file: enable streaming too "
                "(StreamingOptions(enabled=True), --streaming)"
            )
        if not self.enabled and self.exclude:
            raise GruOnnxUsageError(
                "streaming_exclude applies to streaming exports: enable streaming too "
                "(StreamingOptions(enabled=True), --streaming)"
            )


@dataclass(frozen=True)
class CheckOptions:
    """How a file is checked against its source: runtimes, tolerances, inputs, streaming plans, limits.

    ``providers`` are runner keys or ``all`` (every in-process runtime available here); a runtime
    asked for by name that cannot run here is an error unless ``skip_unavailable``. ``inputs``
    is an ``.npz`` keyed by the file's input names; otherwise ``samples`` inputs are derived from
    the example (or drawn with ``seed``) at the magnitudes ``scales``. ``streaming`` runs the
    file chunk by chunk (``chunks``: the chunk sizes to try). Non-finite inputs are refused
    unless ``allow_nonfinite``; one sample may take at most ``memory_budget`` bytes.
    """

    providers: tuple[str, ...] = ("cpu",)
    atol: float | None = None
    rtol: float | None = None
    samples: int = 3
    seq_len: int | None = None
    batch: int | None = None
    seed: int = 0
    scales: tuple[float, ...] | None = None
    inputs: str | os.PathLike[str] | None = None
    streaming: bool = False
    chunks: tuple[int, ...] | None = None
    skip_unavailable: bool = False
    allow_nonfinite: bool = False
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        providers = _tuple_of_str("providers", self.providers) or ()
        if not providers:
            raise GruOnnxUsageError("providers is empty: name at least one runtime (or all)")
        for key in providers:
            if key != "all":
                registry.runner_name(key)
        _set(self, "providers", providers)
        _tolerance("atol", self.atol)
        _tolerance("rtol", self.rtol)
        _positive_int("samples", self.samples)
        _positive_int("seq_len", self.seq_len, allow_none=True)
        _positive_int("batch", self.batch, allow_none=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise GruOnnxUsageError(f"seed must be an integer, got {self.seed!r}")
        if self.scales is not None:
            scales = tuple(self.scales) if not isinstance(self.scales, int | float) else (self.scales,)
            bad = [s for s in scales if isinstance(s, bool) or not isinstance(s, int | float)
                   or not math.isfinite(s) or s <= 0]  # fmt: skip
            if bad or not scales:
                raise GruOnnxUsageError(f"scales must be finite numbers > 0, got {list(scales)!r}")
            _set(self, "scales", tuple(float(s) for s in scales))
        if self.chunks is not None:
            chunks = tuple(self.chunks)
            for c in chunks:
                _positive_int("chunk sizes", c)
            if not chunks:
                raise GruOnnxUsageError("chunks is empty")
            _set(self, "chunks", chunks)
            _set(self, "streaming", True)
        _positive_int("memory_budget (bytes)", self.memory_budget)

    @property
    def expanded_providers(self) -> tuple[str, ...]:
        """The runner keys to run, ``all`` expanded to the in-process runtimes."""
        return registry.expand_providers(self.providers)


@dataclass(frozen=True)
class SavingOptions:
    """How the file is written: inline or with external data (None: when it reaches 2 GiB),
    and the IR version to stamp (None: the lowest the content needs)."""

    external_data: bool | None = None
    ir_version: int | None = None

    def __post_init__(self) -> None:
        _positive_int("ir_version", self.ir_version, allow_none=True)


@dataclass(frozen=True)
class QuantizeOptions:
    """An int8 file (``mode``: weights or dynamic; None: a float file), per channel or per tensor."""

    mode: str | None = None
    per_channel: bool = True

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in registry.QUANTIZE_MODES:
            raise GruOnnxUsageError(
                f"unknown quantization mode {self.mode!r}; valid modes: {', '.join(registry.QUANTIZE_MODES)}"
            )


@dataclass(frozen=True)
class KerasOptions:
    """Reading a Keras file: modules to import first (they register the file's custom classes)."""

    imports: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "imports", _tuple_of_str("imports", self.imports) or ())


#: Triton model names become folder names and URL path parts (the whole name must match).
TRITON_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
TRITON_DEVICES = ("cpu", "gpu")
#: The longest Triton model name: a folder name (most file systems allow 255 bytes), less room for
#: the temporary names the entry is assembled under.
TRITON_NAME_BYTES = 200
#: How long Triton keeps a silent stream's state by default here: Triton's own default (1 s) frees
#: the state of a stream that pauses for a second (a speaker thinking), so a minute.
DEFAULT_SEQUENCE_IDLE_US = 60_000_000
SEQUENCE_STRATEGIES = ("direct", "oldest")
_INT32_MAX = 2**31 - 1
_UINT64_MAX = 2**64 - 1
TENSORRT_PRECISIONS = ("FP32", "FP16")


@dataclass(frozen=True)
class TritonOptions:
    """A Triton model repository entry: its name (None: the file's), ``max_batch_size`` (None:
    8 with a dynamic batch axis first on every tensor, else 0), instances per device, the device
    kind, and whether an existing entry may be replaced."""

    name: str | None = None
    max_batch_size: int | None = None
    instances: int = 1
    device: str = "cpu"
    force: bool = False
    #: streaming files: how long a silent stream keeps its state (None: a minute,
    #: :data:`DEFAULT_SEQUENCE_IDLE_US`; Triton's own default, 1 s, cuts a stream that pauses)
    max_sequence_idle_us: int | None = None
    #: streaming files: ``direct`` (a batch slot per stream) or ``oldest`` (batches the oldest
    #: requests); None: direct
    sequence_strategy: str | None = None
    max_candidate_sequences: int | None = None  # oldest only
    preferred_batch_sizes: tuple[int, ...] = ()  # oldest only
    max_queue_delay_us: int | None = None
    #: ONNX Runtime's CUDA graphs on the GPU (files without control flow, static shapes only)
    cuda_graph: bool = False
    #: ONNX Runtime's TensorRT accelerator on the GPU, at this precision (None: off)
    tensorrt: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.name, str) and len(self.name.encode()) > TRITON_NAME_BYTES:
            raise GruOnnxUsageError(
                f"the Triton model name is {len(self.name.encode())} bytes long; it becomes a folder name: at most "
                f"{TRITON_NAME_BYTES}"
            )
        if self.name is not None and (not isinstance(self.name, str) or not TRITON_NAME.fullmatch(self.name)):
            raise GruOnnxUsageError(
                f"{self.name!r} is not a valid Triton model name (letters, digits, '_', '.', '-'; "
                "not starting with '.' or '-')"
            )
        if self.max_batch_size is not None and (
            isinstance(self.max_batch_size, bool) or not isinstance(self.max_batch_size, int) or self.max_batch_size < 0
        ):
            raise GruOnnxUsageError(f"max_batch_size must be an integer >= 0, got {self.max_batch_size!r}")
        _positive_int("instances", self.instances)
        if self.device not in TRITON_DEVICES:
            raise GruOnnxUsageError(f"unknown device {self.device!r}; use {' or '.join(TRITON_DEVICES)}")
        _positive_int("max_sequence_idle_us", self.max_sequence_idle_us, allow_none=True)
        _positive_int("max_candidate_sequences", self.max_candidate_sequences, allow_none=True)
        if self.max_queue_delay_us is not None and (not isinstance(self.max_queue_delay_us, int)
                                                    or self.max_queue_delay_us < 0):  # fmt: skip
            raise GruOnnxUsageError(f"max_queue_delay_us must be an integer >= 0, got {self.max_queue_delay_us!r}")
        _set(self, "preferred_batch_sizes", tuple(self.preferred_batch_sizes))
        for size in self.preferred_batch_sizes:
            _positive_int("preferred batch sizes", size)
        # The config's fields are protobuf integers: int32 counts, uint64 microseconds.
        for field_name, value, limit in (
            ("max_batch_size", self.max_batch_size, _INT32_MAX), ("instances", self.instances, _INT32_MAX),
            ("max_candidate_sequences", self.max_candidate_sequences, _INT32_MAX),
            ("max_sequence_idle_us", self.max_sequence_idle_us, _UINT64_MAX),
            ("max_queue_delay_us", self.max_queue_delay_us, _UINT64_MAX),
            *(("preferred batch size", size, _INT32_MAX) for size in self.preferred_batch_sizes),
        ):  # fmt: skip
            if value is not None and value > limit:
                raise GruOnnxUsageError(f"{field_name} {value} is beyond what Triton's config holds (at most {limit})")
        if self.sequence_strategy is not None and self.sequence_strategy not in SEQUENCE_STRATEGIES:
            raise GruOnnxUsageError(
                f"unknown sequence strategy {self.sequence_strategy!r}; use {' or '.join(SEQUENCE_STRATEGIES)}"
            )
        if self.sequence_strategy != "oldest" and (self.max_candidate_sequences or self.preferred_batch_sizes):
            raise GruOnnxUsageError(
                "max_candidate_sequences and preferred batch sizes belong to the oldest sequence strategy "
                "(--sequence-strategy oldest)"
            )
        if self.tensorrt is not None and self.tensorrt not in TENSORRT_PRECISIONS:
            raise GruOnnxUsageError(
                f"unknown TensorRT precision {self.tensorrt!r}; use {' or '.join(TENSORRT_PRECISIONS)}"
            )
        if (self.cuda_graph or self.tensorrt) and self.device != "gpu":
            raise GruOnnxUsageError("CUDA graphs and the TensorRT accelerator run on the GPU: add --device gpu")


@dataclass(frozen=True)
class BenchOptions:
    """A bench run: runtimes, shapes (``seq_len`` None: the file's, else 200), threads, warm-up
    and timed calls per runner, and whether the fused-op and PyTorch baselines run beside it."""

    providers: tuple[str, ...] = ("cpu",)
    batch: int = 1
    seq_len: int | None = None
    threads: int = 1
    warmup: int = 10
    runs: int = 100
    baselines: bool = True
    #: replay the file as a CUDA graph on the CUDA provider (unrolled files: no control flow)
    cuda_graph: bool = False

    def __post_init__(self) -> None:
        providers = _tuple_of_str("providers", self.providers) or ()
        for key in providers:
            registry.runner_name(key)
        if not providers:
            raise GruOnnxUsageError("providers is empty: name at least one runtime")
        _set(self, "providers", providers)
        for name in ("batch", "runs"):
            _positive_int(name, getattr(self, name))
        check_threads(self.threads)
        _positive_int("seq_len", self.seq_len, allow_none=True)
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise GruOnnxUsageError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        if self.cuda_graph and providers != ("cuda",):
            raise GruOnnxUsageError(
                "CUDA graphs replay on the CUDA provider: use --cuda-graph with --provider cuda only"
            )


#: Frames of a web bundle's generated reference input (a streaming file runs them one call each).
DEFAULT_WEB_FRAMES = 100
#: The most frames a web bundle's reference may have: its page runs every one of them in the
#: browser, one ``run()`` call each for a streaming file, on a check pass and three timed ones.
MAX_WEB_FRAMES = 100_000
#: The most bytes a web bundle's reference (inputs and outputs together) may take: the page
#: loads it whole, and the PyTorch reference is computed in memory before anything is written.
WEB_REFERENCE_BUDGET = 256 * 2**20


@dataclass(frozen=True)
class WebOptions:
    """A static web bundle (``package --web``): its name (None: the file's), whether an existing
    bundle may be replaced, and the reference its page checks itself against: ``frames`` seeded
    random frames (``seed``) for a lone CustomGRU, held to ``atol``/``rtol`` (None: the check's
    defaults for the file's dtype). ``frames`` None means :data:`DEFAULT_WEB_FRAMES`, or the
    file's own length when that is fixed; a number the file cannot run is refused, and at most
    :data:`MAX_WEB_FRAMES`."""

    name: str | None = None
    force: bool = False
    frames: int | None = None
    seed: int = 0
    atol: float | None = None
    rtol: float | None = None

    def __post_init__(self) -> None:
        if self.name is not None and (
            not isinstance(self.name, str) or not self.name.strip() or not self.name.isprintable()
            or len(self.name) > TRITON_NAME_BYTES
        ):  # fmt: skip
            raise GruOnnxUsageError(f"bundle name {self.name!r}: printable text of 1 to {TRITON_NAME_BYTES} characters")
        _positive_int("frames", self.frames, allow_none=True)
        if self.frames is not None and self.frames > MAX_WEB_FRAMES:
            raise GruOnnxUsageError(
                f"frames (--frames) must be at most {MAX_WEB_FRAMES} for a web bundle, got {self.frames}: "
                "its page runs every frame in the browser"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise GruOnnxUsageError(f"seed must be an integer >= 0, got {self.seed!r}")
        _tolerance("atol", self.atol)
        _tolerance("rtol", self.rtol)


@dataclass(frozen=True)
class ExportOptions:
    """Every group of one export, with the rules that cross groups checked once, here."""

    graph: GraphOptions = field(default_factory=GraphOptions)
    shapes: ShapeOptions = field(default_factory=ShapeOptions)
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    check: CheckOptions | None = field(default_factory=CheckOptions)
    saving: SavingOptions = field(default_factory=SavingOptions)
    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)

    def __post_init__(self) -> None:
        for name, kind in _GROUPS.items():
            value = getattr(self, name)
            if not isinstance(value, kind) and not (name == "check" and value is None):
                raise GruOnnxUsageError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
        strategy = registry.strategy_name(self.graph.strategy)
        if self.shapes.dynamic_seq and not strategy.dynamic_seq:
            dynamic = [n for n in registry.strategy_names() if registry.strategy_name(n).dynamic_seq]
            raise GruOnnxUsageError(
                f"the {strategy.name} strategy fixes the sequence length; use a strategy with a dynamic length "
                f"({', '.join(dynamic)}) with dynamic_seq"
            )
        if self.streaming.enabled:
            if self.streaming.chunk is None and not strategy.dynamic_seq:
                raise GruOnnxUsageError(
                    f"the {strategy.name} strategy fixes the sequence length: a streaming file with it needs a "
                    "fixed chunk length (chunk=N, --chunk N)"
                )
            if self.shapes.dynamic_shapes is not None:
                raise GruOnnxUsageError(
                    "streaming exports name their axes themselves (batch: axis 0, time: axis 1 of every input, a "
                    "lone CustomGRU by its layout); dynamic_shapes cannot be combined with streaming"
                )
        elif self.check is not None and self.check.chunks is not None:
            raise GruOnnxUsageError("chunks are the chunk sizes of a streaming check: export with streaming too")
        if self.quantize.mode is not None and self.graph.dtype not in (None, "float32"):
            raise GruOnnxUsageError(f"only float32 files can be quantized (dtype {self.graph.dtype} asked for)")

    def as_kwargs(self) -> dict[str, Any]:
        """The groups as ``gru_onnx.export``'s keyword arguments."""
        return {name: getattr(self, name) for name in _GROUPS}


_GROUPS: dict[str, type] = {
    "graph": GraphOptions,
    "shapes": ShapeOptions,
    "streaming": StreamingOptions,
    "check": CheckOptions,
    "saving": SavingOptions,
    "quantize": QuantizeOptions,
}

#: Flat option names (a factory's mapping, gru-onnx 0.1's ``export`` keywords) -> (group, field).
#: ``check`` is the whole check group on or off.
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    **{f.name: ("graph", f.name) for f in dataclasses.fields(GraphOptions)},
    **{f.name: ("shapes", f.name) for f in dataclasses.fields(ShapeOptions)},
    "streaming": ("streaming", "enabled"),
    "chunk": ("streaming", "chunk"),
    "streaming_exclude": ("streaming", "exclude"),
    **{f.name: ("check", f.name) for f in dataclasses.fields(CheckOptions) if f.name != "streaming"},
    "check": ("check", ""),
    **{f.name: ("saving", f.name) for f in dataclasses.fields(SavingOptions)},
    "quantize": ("quantize", "mode"),
    "per_channel": ("quantize", "per_channel"),
}


def groups_from_flat(flat: Mapping[str, Any], base: ExportOptions | None = None) -> ExportOptions:
    """``base`` (defaults when None) with the flat fields of ``flat`` applied, groups rebuilt and
    validated; an unknown name is refused naming the valid ones."""
    unknown = sorted(str(k) for k in flat if k not in FLAT_FIELDS)
    if unknown:
        raise GruOnnxUsageError(f"unknown export option {unknown[0]!r}; valid: {', '.join(sorted(FLAT_FIELDS))}")
    base = base or ExportOptions()
    changes: dict[str, dict[str, Any]] = {}
    check_on = base.check is not None
    for key, value in flat.items():
        group, name = FLAT_FIELDS[key]
        if key == "check":
            check_on = bool(value)
            continue
        changes.setdefault(group, {})[name] = value
    groups: dict[str, Any] = {}
    for group in _GROUPS:
        current = getattr(base, group)
        if group == "check":
            current = current if current is not None else CheckOptions()
        groups[group] = dataclasses.replace(current, **changes.get(group, {})) if group in changes else current
    if not check_on:
        groups["check"] = None
    return ExportOptions(**groups)
