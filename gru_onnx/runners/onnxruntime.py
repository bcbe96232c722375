"""ONNX Runtime with the CPU, CUDA or TensorRT execution provider.

GPU providers are checked the way they fail in practice: the provider may be missing from the
build, the machine may have no NVIDIA driver or device, or ONNX Runtime may load and then
silently run everything on the CPU because CUDA libraries are missing. Each case is a
:class:`RuntimeUnavailable` with one line saying which. ``onnxruntime.preload_dlls()`` is
called first so the CUDA libraries of a CUDA build of torch can serve. TF32 is disabled for
float32 runs (``use_tf32=0`` and ``NVIDIA_TF32_OVERRIDE=0``), and where nodes ran is read from
ONNX Runtime's profiler, so a GRU node handed back to the CPU shows in the report.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gru_onnx.runners.base import Runner, RuntimeUnavailable, captured_output

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
DISPLAY = {"cpu": "CPU", "cuda": "CUDA", "tensorrt": "TensorRT"}
#: Ops whose placement on another provider than the requested one is worth telling about.
COMPUTE_OPS = {"GRU", "Scan", "Loop", "MatMul", "Gemm"}


def cuda_device_problem() -> str | None:
    """Why CUDA cannot run here (no driver, no device), or None when a device answers."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver (libcuda.so.1 not found)"
    if libcuda.cuInit(0) != 0:
        return "the NVIDIA driver did not initialise (cuInit failed)"
    count = ctypes.c_int(0)
    if libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "no CUDA device"
    return None


def provider_problem(provider: str) -> str | None:
    """Why ONNX Runtime cannot use ``provider`` here (missing from the build, no GPU), or None."""
    import onnxruntime as ort

    unavailable = f"{DISPLAY[provider]} execution provider not available"
    if PROVIDERS[provider] not in ort.get_available_providers():
        return f"{unavailable}: this onnxruntime build does not include it"
    if provider != "cpu" and (problem := cuda_device_problem()):
        return f"{unavailable}: {problem}"
    return None


def fallback_nodes(profile: list[dict[str, Any]], provider: str) -> list[tuple[str, str, str]]:
    """``(node, op, provider)`` for compute nodes the profiler saw on another provider."""
    seen = {}
    for event in profile:
        args = event.get("args", {})
        op, where = args.get("op_name"), args.get("provider")
        if event.get("cat") != "Node" or not op or not where:
            continue
        if op in COMPUTE_OPS and where != provider:
            node = event.get("name", "").removesuffix("_kernel_time")
            seen[node] = (node, op, where)
    return sorted(seen.values())


#: Where each provider keeps its tensors (``OrtValue`` device names).
DEVICES = {"cpu": "cpu", "cuda": "cuda", "tensorrt": "cuda"}


class Binding:
    """Runs a session through I/O binding: inputs may be ``OrtValue`` s already on the device (a
    streaming file's states), outputs stay there as ``OrtValue`` s until someone asks for NumPy."""

    def __init__(self, session: Any, device: str) -> None:
        import onnxruntime as ort

        self._ort = ort
        self.session = session
        self.device = device

    def upload(self, array: np.ndarray) -> Any:
        """``array`` as an ``OrtValue`` on the device."""
        return self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, 0)

    def is_value(self, value: Any) -> bool:
        return isinstance(value, self._ort.OrtValue)

    def run(self, inputs: dict[str, Any], outputs: list[str]) -> list[Any]:
        """One run; ``inputs`` are NumPy arrays or ``OrtValue`` s; returns ``OrtValue`` s on the device."""
        io = self.session.io_binding()
        for name, value in inputs.items():
            if isinstance(value, self._ort.OrtValue):
                io.bind_ortvalue_input(name, value)
            else:
                io.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in outputs:
            io.bind_output(name, self.device)
        self.session.run_with_iobinding(io)
        return io.get_outputs()


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime with one execution provider (``cpu``, ``cuda`` or ``tensorrt``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        provider: str = "cpu",
        *,
        threads: int | None = None,
        placement: bool = True,
        cuda_graph: bool = False,
    ) -> None:
        super().__init__(path, threads=threads)
        self.provider = provider
        self.cuda_graph = cuda_graph  # CUDA provider: capture the run once, replay it (timing mode)
        self.placement = placement  # read where nodes ran from the profiler (GPU providers)
        self.provider_name = PROVIDERS[provider]
        self.name = f"onnxruntime-{provider}"
        self._session: Any = None
        self._profiled = False
        self._restore_env = False

    def _open(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RuntimeUnavailable(f"onnxruntime is not installed: {exc}") from None
        wanted = self.provider_name
        unavailable = f"{DISPLAY[self.provider]} execution provider not available"
        problem = provider_problem(self.provider)
        if problem:
            raise RuntimeUnavailable(problem)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: a failed run's error is ours to report, on one line
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        provider_options: dict[str, str] = {}
        gpu = self.provider != "cpu"
        if gpu:
            self._disable_tf32(provider_options)
        if self.cuda_graph:
            provider_options["enable_cuda_graph"] = "1"
            self.notes.append("CUDA graph: captured on the first run, replayed after")
        if gpu and self.placement and not self.cuda_graph:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(os.environ.get("TMPDIR", "/tmp")) / "gru_onnx_profile")
        # Only GPU sessions print what is worth capturing (missing CUDA libraries); a CPU
        # session prints nothing, and a crash while creating it must reach the terminal.
        capture = captured_output() if gpu else contextlib.nullcontext([])
        with capture as printed:
            if gpu and hasattr(ort, "preload_dlls"):
                try:
                    ort.preload_dlls()
                except Exception as exc:
                    printed.append(str(exc))
            # With the CPU provider listed after a GPU one, nodes the GPU refuses run there. A
            # file ONNX Runtime cannot load raises here: that is an error, not a missing runtime.
            fallback = ["CPUExecutionProvider"] if gpu else []
            session = ort.InferenceSession(str(self.path), options, providers=[(wanted, provider_options), *fallback])
        self._profiled = not (gpu and self.placement)  # only GPU sessions profile: a CPU run has nothing to read
        if session.get_providers()[0] != wanted:
            detail = next((line for line in printed if "cannot open shared object" in line or "Failed" in line), "")
            raise RuntimeUnavailable(
                f"{unavailable}: ONNX Runtime fell back to the CPU" + (f" ({detail})" if detail else "")
            )
        self._session = session

    def _disable_tf32(self, provider_options: dict[str, str]) -> None:
        """TF32 off for this runner's session: ``use_tf32=0``, and ``NVIDIA_TF32_OVERRIDE=0``
        while the session lives (the caller's own value wins and is restored on close)."""
        if self.provider == "cuda":
            provider_options["use_tf32"] = "0"
        override = os.environ.get("NVIDIA_TF32_OVERRIDE")
        if override is None:
            os.environ["NVIDIA_TF32_OVERRIDE"] = "0"
            self._restore_env = True
            override = "0"
        if override == "0":
            self.notes.append("TF32 disabled (use_tf32=0, NVIDIA_TF32_OVERRIDE=0)")
        else:
            self.notes.append(f"TF32 may be used (NVIDIA_TF32_OVERRIDE={override})")

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = self._session.run(None, feeds)
        if not self._profiled and self._session.get_session_options().enable_profiling:
            self._profiled = True
            self._read_placement(self._session.end_profiling())
        return outputs

    def io_signature(self) -> tuple[tuple[tuple[str, str, tuple[Any, ...]], ...], tuple[str, ...]] | None:
        self._require_open("io_signature()")
        inputs = tuple((i.name, i.type, tuple(i.shape)) for i in self._session.get_inputs())
        return inputs, tuple(o.name for o in self._session.get_outputs())

    def binding(self) -> Binding:
        """The session for I/O binding on this provider's device (the runner must be open)."""
        self._require_open("binding()")
        return Binding(self._session, DEVICES[self.provider])

    def _timed(self, feeds: dict[str, np.ndarray]) -> Any:
        if not self._profiled:  # one run first ends the profiling (and reads where nodes ran)
            self._run(feeds)
        session = self._session
        if not self.cuda_graph:
            return lambda: session.run(None, feeds)
        # A CUDA graph replays fixed device buffers: inputs uploaded once, outputs bound once.
        binding = self.binding()
        io = session.io_binding()
        for name, array in feeds.items():
            io.bind_ortvalue_input(name, binding.upload(array))
        for output in session.get_outputs():
            io.bind_output(output.name, binding.device)
        session.run_with_iobinding(io)  # the capture
        return lambda: session.run_with_iobinding(io)

    def _read_placement(self, profile_path: str) -> None:
        try:
            profile = json.loads(Path(profile_path).read_text())
        finally:
            Path(profile_path).unlink(missing_ok=True)
        moved = fallback_nodes(profile, self.provider_name)
        if moved:
            ops = sorted({op for _, op, _ in moved})
            where = sorted({p for _, _, p in moved})
            self.notes.append(
                f"{len(moved)} {'/'.join(ops)} node(s) ran on {', '.join(where)}, not {self.provider_name}"
                + (" (GRU handed back to the CPU: RNNNeedFallbackToCPU)" if "GRU" in ops else "")
            )

    def _close(self) -> None:
        self._session = None
        if self._restore_env:
            os.environ.pop("NVIDIA_TF32_OVERRIDE", None)
            self._restore_env = False
