"""The package's shape: layers without upward imports or circles, a torch-free ``--help``, a complete wheel."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Every module of the package and its layer; a module imports only from its layer or below.
LAYERS: dict[str, int] = {
    # 1: names, errors, graph naming and rewrites, the runners (no torch)
    "gru_onnx._version": 1, "gru_onnx.errors": 1, "gru_onnx.registry": 1, "gru_onnx.options": 1,
    "gru_onnx.naming": 1, "gru_onnx.workarounds": 1, "gru_onnx.files": 1, "gru_onnx.protos": 1,
    "gru_onnx.runners.base": 1, "gru_onnx.runners.onnxruntime": 1, "gru_onnx.runners.openvino": 1,
    "gru_onnx.runners.node": 1,
    # the JavaScript runtimes' setup, wire format, static server and shared browser (no torch)
    "gru_onnx.web": 1, "gru_onnx.web.setup": 1, "gru_onnx.web.wire": 1, "gru_onnx.web.serve": 1,
    "gru_onnx.web.browser": 1,
    # 2: activations, spec and the dtype table, trees, weights, saving (IR versions), metadata, compat, names
    "gru_onnx.activations": 2, "gru_onnx.spec": 2, "gru_onnx.trees": 2, "gru_onnx.weights": 2,
    "gru_onnx.saving": 2, "gru_onnx.metadata": 2, "gru_onnx.compat": 2, "gru_onnx.irversion": 2,
    "gru_onnx.compact": 2, "gru_onnx.wiring": 2, "gru_onnx.wellformed": 2,
    # the runners' table, and the web runner (it serves a file's external data, checked by saving)
    "gru_onnx.runners": 2, "gru_onnx.runners.web": 2,
    # 3: the recurrence in PyTorch, the module, the torch op
    "gru_onnx.cell": 3, "gru_onnx.module": 3, "gru_onnx._export_op": 3,
    # 4: strategies, state lifting, quantization, loading, tracing
    "gru_onnx.exporters": 4, "gru_onnx.exporters.base": 4, "gru_onnx.exporters._cell": 4,
    "gru_onnx.exporters.auto": 4, "gru_onnx.exporters.loop": 4, "gru_onnx.exporters.native": 4,
    "gru_onnx.exporters.unrolled": 4, "gru_onnx.streaming": 4, "gru_onnx.quantization": 4,
    "gru_onnx.loading": 4, "gru_onnx.tracing": 4,
    # 5: what reads files back or writes placeholders: rebuild, samples, axes, lowering
    "gru_onnx.rebuild": 5, "gru_onnx.samples": 5, "gru_onnx.axes": 5, "gru_onnx.lowering": 5,
    # 6: the check core, the streaming session
    "gru_onnx.check": 6, "gru_onnx.check.compare": 6, "gru_onnx.check.results": 6, "gru_onnx.check.reference": 6,
    "gru_onnx.check.weights": 6, "gru_onnx.check.runs": 6, "gru_onnx.check.plain": 6, "gru_onnx.check.streaming": 6,
    "gru_onnx.session": 6,
    # 7: what users call: check_parity, export, describe, triton, bench, keras, report, testing
    "gru_onnx.parity": 7, "gru_onnx.exporting": 7, "gru_onnx.description": 7, "gru_onnx.triton": 7,
    "gru_onnx.bench": 7, "gru_onnx.report": 7, "gru_onnx.testing": 7, "gru_onnx.keras": 7,
    "gru_onnx.keras.backend": 7, "gru_onnx.keras.convert": 7, "gru_onnx.keras.load": 7, "gru_onnx.keras.check": 7,
    "gru_onnx.web.bundle": 7,
    # 8: the command line
    "gru_onnx.cli": 8, "gru_onnx.cli.app": 8, "gru_onnx.cli.groups": 8, "gru_onnx.cli.factory": 8,
    "gru_onnx.cli.render": 8, "gru_onnx.cli.export_cmd": 8, "gru_onnx.cli.check_cmd": 8,
    "gru_onnx.cli.inspect_cmd": 8, "gru_onnx.cli.quantize_cmd": 8, "gru_onnx.cli.package_cmd": 8,
    "gru_onnx.cli.bench_cmd": 8, "gru_onnx.cli.activations_cmd": 8, "gru_onnx.cli.__main__": 8,
    "gru_onnx.cli.setup_cmd": 8,
    # 9: the public names, loaded lazily
    "gru_onnx": 9,
}  # fmt: skip
#: Modules that import gru-onnx modules inside functions on purpose, to stay light at import:
#: the command line (``--help`` without torch) and the pytest plugin (loaded by every pytest run).
LAZY = ("gru_onnx.cli", "gru_onnx.testing")


def _modules() -> dict[str, Path]:
    """Every module of the installed package by name (``exporters/`` is ``gru_onnx.exporters``)."""
    found = {}
    for folder, package in ((ROOT / "gru_onnx", "gru_onnx"), (ROOT / "exporters", "gru_onnx.exporters")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            name = ".".join(parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path, name: str) -> list[tuple[str, bool]]:
    """``(imported gru-onnx module, inside a function)`` for every import in the file."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
              for n in ast.walk(f) if n is not f}  # fmt: skip
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            if target.startswith("gru_onnx"):
                out.append((target, id(node) in nested))
    return out


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module an import names (``gru_onnx.spec.GRUSpec`` -> ``gru_onnx.spec``)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def test_every_module_has_a_layer() -> None:
    assert sorted(set(_modules()) - set(LAYERS)) == []
    assert sorted(set(LAYERS) - set(_modules())) == []


def test_no_module_imports_a_higher_layer() -> None:
    modules = _modules()
    upward = []
    for name, path in modules.items():
        for target, _ in _imports(path, name):
            found = _resolve(target, modules)
            if found and found != name and not name.startswith(found + ".") and LAYERS[found] > LAYERS[name]:
                upward.append(f"{name} (layer {LAYERS[name]}) imports {found} (layer {LAYERS[found]})")
    assert upward == []


def test_no_import_circle() -> None:
    modules = _modules()
    edges = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _ in _imports(path, name):
            found = _resolve(target, modules)
            if found and found != name and not name.startswith(found + "."):
                edges[name].add(found)
    # Depth-first search for a back edge.
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle.extend([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*trail, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(edges):
        if state.get(start) is None and visit(start, [start]):
            break
    assert cycle == []


def test_imports_inside_functions_only_where_lightness_needs_them() -> None:
    """An import inside a function to dodge a circle is a design smell; only the command line
    (a fast ``--help``) and the pytest plugin (loaded by every pytest run) import lazily."""
    modules = _modules()
    found = []
    for name, path in modules.items():
        if name.startswith(LAZY):
            continue
        for target, inside in _imports(path, name):
            if inside:
                found.append(f"{name}: {target}")
    assert found == []


@pytest.mark.parametrize("argv", [["--help"], ["export", "--help"], ["check", "--help"]])
def test_help_imports_neither_torch_nor_onnx(argv: list[str]) -> None:
    code = (
        "import sys\nfrom gru_onnx.cli import cli\n"
        f"try:\n    cli.main({argv!r}, prog_name='gru-onnx', standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_wheel_holds_every_module(tmp_path: Path) -> None:
    """An editable install hides a package missing from pyproject: build the wheel and import
    every module from it."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("gru_onnx-*.whl")
    unpacked = tmp_path / "wheel"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    names = sorted(n for n in _modules() if n != "gru_onnx.cli.__main__")
    code = (
        f"import importlib, sys\nsys.path.insert(0, {str(unpacked)!r})\n"
        f"for name in {names!r}:\n    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(unpacked)!r}), (name, module.__file__)\n"
        "print('ok', len(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    for data in ("report.schema.json", "bench.schema.json", "metadata.schema.json", "py.typed"):
        assert (unpacked / "gru_onnx" / data).is_file()


def test_no_public_name_is_also_a_submodule() -> None:
    """``gru_onnx.quantize(src, dst)`` raised AttributeError once: importing the submodule
    ``gru_onnx.quantize`` replaced the function of that name on the package."""
    import gru_onnx

    submodules = {name.split(".")[1] for name in _modules() if name.count(".") >= 1}
    assert sorted(set(gru_onnx.__all__) & submodules) == []
