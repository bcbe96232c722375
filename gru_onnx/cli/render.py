"""What the commands print: the export summary and the description of a file, as rich tables."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from gru_onnx.compat import file_support
from gru_onnx.description import FileDescription, describe_spec
from gru_onnx.exporting import ExportResult
from gru_onnx.streaming import state_pairs


def size(n: float) -> str:
    """Bytes for people: ``56.1 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def export_summary(result: ExportResult) -> Table:
    """The table ``export`` prints: file, strategy per stack, states, runtimes, nodes, verdict."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("file", f"{result.path} ({size(result.file_size)})")
    if result.data_path is not None:
        table.add_row("data", f"{result.data_path} ({size(result.data_size)}, external data)")
    meta = result.metadata
    table.add_row("strategy", f"{result.strategy}, opset {result.opset}, {meta['dtype']}")
    for stack in meta["stacks"]:
        label = stack["path"] or "model"
        table.add_row("GRU", f"{label}: {describe_spec(stack['spec'])}")
        requested = stack["reason"] == f"{stack['strategy']} requested"
        table.add_row(
            "", f"{stack['strategy']} (requested)" if requested else f"{stack['strategy']}: {stack['reason']}"
        )
    state_rows(table, meta)
    support_rows(table, meta)
    counts = sorted(result.node_counts.items(), key=lambda kv: -kv[1])
    more = ", ..." if len(counts) > 6 else ""
    table.add_row("nodes", f"{result.num_nodes} (" + ", ".join(f"{k} {v}" for k, v in counts[:6]) + more + ")")
    table.add_row("time", f"{result.seconds:.1f} s")
    if result.parity is None:
        table.add_row("parity", "not checked (--no-check)")
    else:
        report = result.parity
        for line in report.summary().splitlines():
            table.add_row("parity", escape(line))
        verdict = "[green]PASS[/]" if report.passed else "[red]FAIL[/]"
        table.add_row("result", f"{verdict} ({escape(report.rule())})")
    return table


def state_rows(table: Table, metadata: dict[str, Any]) -> None:
    """A streaming file's state pairs, one row each, and its chunk length."""
    pairs = state_pairs(metadata)
    if not pairs:
        return
    chunk = metadata.get("chunk")
    table.add_row("streaming", f"chunks of {chunk} steps" if chunk else "chunks of any length")
    for pair in pairs:
        shape = escape(f"[{', '.join(str(d) for d in pair.shape)}]")
        table.add_row("state", f"{pair.input} -> {pair.output}: {pair.module or 'model'} {shape}")


def support_rows(table: Table, metadata: dict[str, Any]) -> None:
    """Runtimes that do not run the file as intended (native GRU nodes), one row each."""
    for row in file_support(metadata):
        if row.status != "yes":
            table.add_row("[yellow]runtime[/]", f"{row.runtime}: {row.status} ({row.note})")


def description(info: FileDescription) -> list[Any]:
    """The renderables ``inspect`` prints: the head, inputs and outputs, nodes, runtimes."""
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_row("file", f"{info.path} ({size(info.size)})")
    for data in info.data_files:
        if data.problem == "missing":
            state = "MISSING: check, package and runtimes need it beside the model"
        elif data.problem == "hard links":
            state = f"{size(data.size or 0)}, HARD-LINKED: ONNX refuses to read it; give the pair its own copy"
        elif data.problem == "truncated":
            state = f"{size(data.size or 0)}, TRUNCATED: the model needs {data.needed} bytes, it has {data.size}"
        else:
            state = size(data.size or 0)
        head.add_row("external data", escape(f"{data.location} ({state})"))
    head.add_row("opset", ", ".join(f"{domain} {version}" for domain, version in info.opsets.items()))
    needs = f"its content needs {info.ir_needed}: {info.ir_reason}"
    head.add_row("IR version", f"{info.ir_version} ({needs})" if info.ir_version == info.ir_needed
                 else f"[yellow]{info.ir_version}[/], higher than {needs}")  # fmt: skip
    head.add_row("producer", info.producer)
    meta = info.metadata
    if meta is None:
        head.add_row("gru-onnx", "no gru-onnx metadata: not exported by gru-onnx")
    else:
        head.add_row("strategy", f"{meta['strategy']} (requested: {meta.get('requested_strategy', '-')})")
        head.add_row("target", meta.get("target", "any"))
        head.add_row("dtype", meta.get("dtype", "float32"))
        head.add_row("exported by", f"gru-onnx {meta.get('version', '?')}")
        if meta.get("quantization"):
            q = meta["quantization"]
            floats = f"; left float: {', '.join(q['left_float'])}" if q.get("left_float") else ""
            head.add_row(
                "int8", f"{q['mode']}, {q['granularity'].replace('_', ' ')}: {len(q['tensors'])} weight(s){floats}"
            )
        static = "static: runs only at the {} shown below"
        if "dynamic_batch" in meta:
            head.add_row("batch axis", "dynamic" if meta["dynamic_batch"] else static.format("batch size"))
        head.add_row("sequence axis", "dynamic" if meta.get("dynamic_seq") else static.format("length"))
        for stack in info.stacks:
            head.add_row("GRU", escape(f"{stack.path or 'model'}: {stack.description}"))
            seq = stack.seq_len if stack.seq_len is not None else "dynamic"
            extras = [f"seq_len {seq}"] + [n for n, on in (("has_h0", stack.has_h0), ("has_lengths",
                                                                                      stack.has_lengths)) if on]
            head.add_row("", f"{stack.strategy} ({stack.reason}); {', '.join(extras)}")
        state_rows(head, meta)
    io = Table(title="inputs and outputs", caption="named axes are dynamic, numbers are static")
    for column in ("", "name", "type", "shape", "time axis"):
        io.add_column(column)
    for t in info.tensors:
        when = "" if t.kind == "input" or meta is None else ("none" if t.time_axis is None else str(t.time_axis))
        io.add_row(t.kind, t.name, t.dtype, escape(f"[{', '.join(str(d) for d in t.dims)}]"), when)
    ops = ", ".join(f"{k} {v}" for k, v in info.node_counts.items())
    out: list[Any] = [head, io, f"nodes: {info.num_nodes} ({ops})"]
    if meta is not None:
        runtimes = Table(title="runtimes (from their sources; see gru_onnx/compat.py)")
        for column in ("runtime", "runs as intended", "note"):
            runtimes.add_column(column)
        for row in info.support:
            runtimes.add_row(row.runtime, row.status, row.note)
        out.append(runtimes)
    return out
