"""The runnable code blocks of README.md and docs/ run as written.

A block is runnable when the line before its opening fence is ``<!-- run -->`` (an HTML comment:
invisible on GitHub and in the mkdocs site). Marked blocks are ``python`` or ``bash``; the blocks
of one page run in order, in one Python namespace (so a page may build on its earlier blocks), in
a fresh directory of its own with the repository root importable. Bash blocks run with
``set -euo pipefail``; one made only of ``gru-onnx`` command lines runs them through the console
script's entry point (``gru_onnx.cli:main``) in the same process, and a lone ``python -m pytest ...``
line runs ``pytest.main`` with its arguments there too (a new interpreter costs seconds of imports).
GPU, Triton server and pip lines
are never marked. All pages run in one worker process (one torch import, not one per page), each
page's outcome reported by its own test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
MARK = "<!-- run -->"
FENCE = re.compile(r"^(`{3,})\s*([\w-]*)")
#: What a marked block may not do: install packages, reach a GPU or a Triton server.
NOT_RUNNABLE = re.compile(r"\bpip install\b|\bdocker\b|tritonserver|--provider (cuda|tensorrt)|--device gpu")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The marked blocks of ``page``, in order."""
    lines = page.read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i].strip())
        if fence is None:
            i += 1
            continue
        ticks, language = fence.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == ticks), None)
        assert end is not None, f"{page}:{i + 1}: unclosed code fence"
        if i > 0 and lines[i - 1].strip() == MARK:
            indent = len(lines[i]) - len(lines[i].lstrip())
            code = "\n".join(line[indent:] for line in lines[i + 1 : end])
            found.append(Block(page, i + 1, language, code + "\n"))
        i = end + 1
    return found


MARKED = {page: found for page in PAGES if (found := blocks(page))}


#: The worker: runs each page's blocks in its own folder and a fresh ``__main__`` module (where
#: ``inspect.getmodule`` looks: onnxscript.script reads a function's module and, through
#: linecache, its source), and writes each page's outcome to a JSON file.
WORKER = """
import contextlib, io, json, linecache, os, shlex, subprocess, sys, traceback, types


def run_step(step, namespace):
    if step["language"] == "python":
        code = step["code"]
        linecache.cache[step["where"]] = (len(code), None, code.splitlines(True), step["where"])
        exec(compile(code, step["where"], "exec"), namespace)
        return
    lines = [line for line in step["code"].splitlines() if line.strip() and not line.startswith("#")]
    if all(line.startswith("gru-onnx ") and not set(line) & set("|&;<>$`") for line in lines):
        from gru_onnx.cli import main

        for line in lines:
            sys.argv = shlex.split(line)
            try:
                main()
            except SystemExit as exc:
                if exc.code:
                    raise RuntimeError(f"{line!r} exited {exc.code}") from None
        return
    if len(lines) == 1 and lines[0].startswith("python -m pytest ") and not set(lines[0]) & set("|&;<>$`"):
        import pytest

        code = pytest.main(shlex.split(lines[0])[3:])
        if code:
            raise RuntimeError(f"{lines[0]!r} exited {int(code)}")
        return
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", step["code"]], capture_output=True, text=True)
    print(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"the bash block exited {done.returncode}")


pages, out = json.loads(sys.argv[1]), sys.argv[2]
results = {}
for page, (folder, steps) in pages.items():
    os.chdir(folder)
    main_module = types.ModuleType("__main__")
    sys.modules["__main__"] = main_module
    log = io.StringIO()
    outcome = None
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        for step in steps:
            print(f"--- {step['where']} ({step['language']})", flush=True)
            try:
                run_step(step, main_module.__dict__)
            except BaseException:
                outcome = f"{step['where']}: " + traceback.format_exc()
                break
    results[page] = {"error": outcome, "log": log.getvalue()[-4000:]}
with open(out, "w") as f:
    json.dump(results, f)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str | None]]:
    """Every marked page run once, in one worker process; each page's error (None) and log."""
    base = tmp_path_factory.mktemp("docs")
    pages = {}
    for i, (page, found) in enumerate(MARKED.items()):
        folder = base / f"page{i}"
        folder.mkdir()
        steps = [{"where": b.where, "language": b.language, "code": b.code} for b in found]
        pages[str(page)] = (str(folder), steps)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    env.pop("KERAS_BACKEND", None)
    out = base / "outcomes.json"
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(pages), str(out)],
        cwd=base, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0 and out.is_file(), (done.stdout + done.stderr)[-4000:]
    return json.loads(out.read_text())


def test_pages_have_runnable_blocks() -> None:
    """The marker is in use where a newcomer starts: the README and the quickstart."""
    assert ROOT / "README.md" in MARKED
    assert ROOT / "docs" / "quickstart.md" in MARKED


@pytest.mark.parametrize("block", [b for found in MARKED.values() for b in found], ids=lambda b: b.where)
def test_marked_blocks_are_python_or_bash_without_installs_or_gpus(block: Block) -> None:
    assert block.language in ("python", "bash")
    assert NOT_RUNNABLE.search(block.code) is None
    assert block.code.strip()


@pytest.mark.parametrize("page", list(MARKED), ids=lambda p: str(p.relative_to(ROOT)))
def test_runnable_blocks_run(page: Path, outcomes: dict[str, dict[str, str | None]]) -> None:
    outcome = outcomes[str(page)]
    assert outcome["error"] is None, f"{outcome['error']}\n--- output ---\n{outcome['log']}"


def test_tests_the_docs_name_exist() -> None:
    """The guarantees and guides point at the tests that hold them: each named file and test exists."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    missing = []
    for page in pages:
        text = page.read_text()
        for file, name in re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", text):
            if not (ROOT / file).is_file():
                missing.append(f"{page.name}: {file}")
            elif name and not re.search(rf"def {name}\b", (ROOT / file).read_text()):
                missing.append(f"{page.name}: {file}::{name}")
        for name in re.findall(r"(?<![\w/.])::(test_\w+)", text):  # ``::test_x`` after a named file
            if not any(re.search(rf"def {name}\b", p.read_text()) for p in (ROOT / "tests").rglob("test_*.py")):
                missing.append(f"{page.name}: ::{name}")
    assert missing == []


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_the_shown_output_of_the_main_job_is_what_it_prints(page: str, run_cli) -> None:
    """The block after ``gru-onnx export --activation relu`` is its output (the time aside): the
    README had drifted (file size, the weights line)."""
    text = (ROOT / page).read_text()
    shown = re.search(r"```bash\ngru-onnx export --activation relu\n```\n\n```\n(.*?)```", text, re.S)
    assert shown is not None
    result = run_cli("export", "--activation", "relu")
    assert result.exit_code == 0, result.output

    def lines(out: str) -> list[str]:
        return [line.rstrip() for line in out.strip().splitlines() if not line.startswith("time ")]

    assert lines(shown.group(1)) == lines(result.output)
