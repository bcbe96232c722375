"""Where the JavaScript runtimes live and how they get there (``gru-onnx setup web``).

onnxruntime-web and onnxruntime-node are npm packages, installed at the versions pinned in
:data:`PINS` into one cache folder: ``$GRU_ONNX_WEB_CACHE``, else ``$XDG_CACHE_HOME/gru-onnx/web``,
else ``~/.cache/gru-onnx/web``. onnxruntime-node's install script downloads binaries from outside
the package registry (which fails offline), so npm runs with ``--ignore-scripts``: its CPU
binaries ship inside the package. Node.js is ``$GRU_ONNX_NODE`` or ``node`` on PATH; Chromium is
``$GRU_ONNX_CHROMIUM`` or the first of :data:`CHROMIUM_NAMES` on PATH (Debian's ``chromium``),
driven by Playwright without a browser download. Nothing here is needed to import gru_onnx: the
runners call the ``*_problem`` functions and report the one line they return.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gru_onnx.errors import GruOnnxError, GruOnnxUsageError
from gru_onnx.files import regular_file, remove_stale_temps, temp_name

#: The npm packages and their exact versions (the one place they are recorded).
PINS: dict[str, str] = {"onnxruntime-web": "1.30.0", "onnxruntime-node": "1.30.0"}
#: The oldest Node.js major version onnxruntime-node 1.30 and the driver script run on.
MIN_NODE = 18

CACHE_ENV = "GRU_ONNX_WEB_CACHE"
NODE_ENV = "GRU_ONNX_NODE"
CHROMIUM_ENV = "GRU_ONNX_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

SETUP_COMMAND = "gru-onnx setup web"
NODE_COMMAND = "apt-get install nodejs npm"
CHROMIUM_COMMAND = "apt-get install chromium"
PLAYWRIGHT_COMMAND = "pip install 'gru-onnx[web]'"
#: ``name`` in the cache's package.json: marks a folder this module made (and may replace).
CACHE_MARK = "gru-onnx-web-cache"
#: The largest package.json read from the cache (npm's are a few KiB).
PACKAGE_JSON_LIMIT = 2**20


def cache_dir(cache: str | os.PathLike[str] | None = None) -> Path:
    """The npm cache folder: ``cache`` if given, else ``$GRU_ONNX_WEB_CACHE``, else
    ``$XDG_CACHE_HOME/gru-onnx/web`` (``~/.cache`` when unset)."""
    if cache is not None:
        return Path(cache).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gru-onnx" / "web"


def _executable(env: str, names: tuple[str, ...]) -> Path | None:
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    for name in names:
        if found := shutil.which(name):
            return Path(found)
    return None


def find_node() -> Path | None:
    """``$GRU_ONNX_NODE``, else ``node`` on PATH, else None."""
    return _executable(NODE_ENV, ("node",))


def find_chromium() -> Path | None:
    """``$GRU_ONNX_CHROMIUM``, else the first Chromium or Chrome on PATH, else None."""
    return _executable(CHROMIUM_ENV, CHROMIUM_NAMES)


def package_dir(package: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Where npm puts ``package`` in the cache (it may not be there)."""
    return cache_dir(cache) / "node_modules" / package


def _read_json(path: Path) -> tuple[object, str | None]:
    """The JSON in ``path``, read only when it is a regular file (a link to one is fine) of at
    most :data:`PACKAGE_JSON_LIMIT` bytes: ``(value, None)``; ``(None, None)`` when it is absent;
    ``(None, why)`` when it is something else (a FIFO would block, ``/dev/zero`` never ends) or
    unreadable. Never raises, never blocks."""
    if not os.path.exists(path):  # absent (or a dangling link): not installed
        return None, None
    try:
        regular_file(path, "file")
        size = path.stat().st_size
        if size > PACKAGE_JSON_LIMIT:
            return None, f"{path} is {size} bytes, no npm package.json"
        return json.loads(path.read_bytes()), None
    except GruOnnxUsageError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    except ValueError:
        return None, f"{path} is not JSON"


def _package_version(package: str, cache: str | os.PathLike[str] | None = None) -> tuple[str | None, str | None]:
    """``(version, None)`` of ``package`` in the cache, ``(None, None)`` when it is not
    installed, ``(None, why)`` when its package.json is no readable package.json."""
    path = package_dir(package, cache) / "package.json"
    found, problem = _read_json(path)
    if problem is not None:
        return None, problem
    if found is None:
        return None, None
    version = found.get("version") if isinstance(found, dict) else None
    if not isinstance(version, str):
        return None, f"{path} names no version"
    return version, None


def installed_version(package: str, cache: str | os.PathLike[str] | None = None) -> str | None:
    """The version of ``package`` in the cache, or None when it is not installed (or its
    package.json is not a regular, small JSON file: such a file is never opened for reading)."""
    return _package_version(package, cache)[0]


def _version_of(executable: Path) -> str | None:
    try:
        done = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if done.returncode == 0 and lines else None


def node_version(node: Path | None = None) -> str | None:
    """``node --version`` (``v20.20.2``), or None when node is missing or does not run."""
    node = node or find_node()
    return _version_of(node) if node else None


def package_problem(package: str, cache: str | os.PathLike[str] | None = None) -> str | None:
    """Why ``package`` cannot be used from the cache (missing, or not the pinned version), or None."""
    (found, broken), wanted = _package_version(package, cache), PINS[package]
    where = cache_dir(cache)
    if broken is None and found == wanted:
        return None
    what = (f"{package} in {where} is broken ({broken})" if broken is not None
            else f"{package} is not installed in {where}" if found is None
            else f"{package} {found} in {where}, gru-onnx pins {wanted}")  # fmt: skip
    return f"{what}: {_setup_advice(where, repair=broken is not None, explicit=cache is not None)}"


def _setup_advice(where: Path, *, repair: bool, explicit: bool) -> str:
    """What repairs the cache: ``setup web``, or, where setup would refuse the folder, its refusal
    (advice that only leads to a second refusal helps nobody)."""
    how = _how_to_choose(explicit)
    try:
        _refuse_target(Path(os.path.abspath(where)), how)
    except GruOnnxUsageError as exc:
        return f"`{SETUP_COMMAND}` would refuse it: {exc}"
    return f"run `{SETUP_COMMAND}`" + (" to repair it" if repair else "")


def _how_to_choose(explicit: bool) -> str:
    """How to name another cache, as the refusals say it (a ``cache`` given as an argument is --cache)."""
    return "choose another with --cache" if explicit else f"choose another with {CACHE_ENV} or --cache"


def _node_missing() -> str | None:
    node = find_node()
    if node is None:
        return f"Node.js not found (node on PATH, or {NODE_ENV}): `{NODE_COMMAND}`, then `{SETUP_COMMAND}`"
    version = node_version(node)
    if version is None:
        return f"Node.js at {node} does not run (`{node} --version` failed): `{NODE_COMMAND}`"
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < MIN_NODE:
        return f"Node.js {version} at {node} is too old (onnxruntime-node needs {MIN_NODE}+): `{NODE_COMMAND}`"
    return None


def node_problem(cache: str | os.PathLike[str] | None = None) -> str | None:
    """Why the ``node`` runner cannot run here (no Node.js, onnxruntime-node not set up), or None."""
    return _node_missing() or package_problem("onnxruntime-node", cache)


def chromium_problem() -> str | None:
    """Why no Chromium can be started (none found, or ``$GRU_ONNX_CHROMIUM`` wrong), or None."""
    chromium = find_chromium()
    if chromium is None:
        return f"Chromium not found (chromium on PATH, or {CHROMIUM_ENV}): `{CHROMIUM_COMMAND}`"
    if not (chromium.is_file() and os.access(chromium, os.X_OK)):
        return f"{CHROMIUM_ENV}={chromium} is not an executable file: `{CHROMIUM_COMMAND}` or fix the variable"
    return None


def playwright_problem() -> str | None:
    """Why Playwright cannot drive the browser (not installed), or None; checked without importing it."""
    if importlib.util.find_spec("playwright") is None:
        return f"Playwright is not installed: `{PLAYWRIGHT_COMMAND}` (it drives the system Chromium)"
    return None


def web_problem(cache: str | os.PathLike[str] | None = None) -> str | None:
    """Why the ``web`` runner cannot run here (Chromium, Playwright or onnxruntime-web missing), or None."""
    return chromium_problem() or playwright_problem() or package_problem("onnxruntime-web", cache)


@dataclass(frozen=True)
class SetupResult:
    """What ``setup_web`` found and did: the cache, the versions in it, Node.js and Chromium,
    and one line per thing the runners still miss (``missing``; empty when both can run)."""

    cache: Path
    versions: dict[str, str]
    node: str | None
    chromium: Path | None
    installed: bool  # False when the cache held the pinned versions already
    seconds: float
    missing: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        """True when both the node and the web runner can run."""
        return not self.missing

    def summary(self) -> list[str]:
        """Lines for the terminal."""
        action = "installed into" if self.installed else "already in"
        lines = [
            f"{', '.join(f'{k} {v}' for k, v in self.versions.items())} {action} {self.cache} ({self.seconds:.1f} s)",
            f"Node.js: {self.node or 'not found'}",
            f"Chromium: {self.chromium or 'not found'}",
        ]
        return lines + [f"missing: {line}" for line in self.missing]


def _has_pins(cache: Path) -> bool:
    return all(installed_version(p, cache) == v for p, v in PINS.items())


def _package_json() -> str:
    return json.dumps({"name": CACHE_MARK, "private": True, "dependencies": dict(PINS)}, indent=2) + "\n"


#: What an npm install of the cache leaves in it: all that a reinstall may replace.
CACHE_ENTRIES = frozenset({"package.json", "package-lock.json", "node_modules"})


def _refuse_target(cache: Path, how: str) -> None:
    """Refuse to replace a path this module did not make (the root, a user's folder, a file, a
    link): a folder is ours when it is empty, or holds only what an install leaves and says so."""
    if cache == Path(cache.anchor):
        raise GruOnnxUsageError(f"the web cache cannot be the root folder {cache}; {how}")
    try:
        if cache.is_symlink():
            raise GruOnnxUsageError(f"the web cache {cache} is a symbolic link; {how}")
        if not cache.exists():
            return
        if not cache.is_dir():
            raise GruOnnxUsageError(f"the web cache {cache} is not a folder; {how}")
        entries = sorted(p.name for p in cache.iterdir())
    except OSError as exc:  # a name too long, a folder above it unreadable
        raise GruOnnxUsageError(f"cannot read the web cache {cache}: {exc.strerror or exc}; {how}") from None
    marker, broken = _read_json(cache / "package.json")
    if broken is not None:
        raise GruOnnxUsageError(f"the web cache's package.json is not gru-onnx's: {broken}; remove it, or {how}")
    ours = isinstance(marker, dict) and marker.get("name") == CACHE_MARK
    foreign = [name for name in entries if name not in CACHE_ENTRIES]
    if entries and (not ours or foreign):
        what = repr(foreign[0]) if foreign else "files"
        raise GruOnnxUsageError(f"{cache} holds {what}, which gru-onnx did not put there; {how}")


def _npm_install(folder: Path, npm: Path) -> None:
    (folder / "package.json").write_text(_package_json())
    command = [str(npm), "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise GruOnnxError(f"npm install did not finish in 30 minutes (in {folder})") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "ERR!" in ln and "code" in ln), lines[-1] if lines else "no output")
        raise GruOnnxError(f"npm install {' '.join(f'{k}@{v}' for k, v in PINS.items())} failed: {detail}")


def setup_web(cache: str | os.PathLike[str] | None = None, *, force: bool = False) -> SetupResult:
    """Install the pinned onnxruntime-web and onnxruntime-node into the cache (see :func:`cache_dir`).

    Nothing is downloaded when the cache holds the pinned versions already (``force`` reinstalls).
    The install happens in a folder beside the cache, renamed into place once complete, so a
    failed install leaves the previous cache as it was. Needs Node.js and npm; Chromium and
    Playwright are looked for and reported in ``missing`` (they are not installed here).
    """
    started = time.perf_counter()
    target = Path(os.path.abspath(cache_dir(cache)))  # ".": a folder name to put temporaries beside
    how = _how_to_choose(cache is not None)
    if problem := _node_missing():
        raise GruOnnxUsageError(problem)
    npm = shutil.which("npm")
    if npm is None:
        raise GruOnnxUsageError(f"npm not found on PATH: `{NODE_COMMAND}`")
    _refuse_target(target, how)
    installed = force or not _has_pins(target)
    if installed:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(target)
            work = temp_name(target)
            work.mkdir(mode=0o755)
        except OSError as exc:
            raise GruOnnxUsageError(f"cannot write the web cache {target}: {exc.strerror or exc}; {how}") from None
        try:
            _npm_install(work, Path(npm))
            if not _has_pins(work):
                found = {p: installed_version(p, work) for p in PINS}
                raise GruOnnxError(f"npm install finished but the cache holds {found}, not {PINS}")
            old = temp_name(target)
            if target.exists():
                target.rename(old)
            work.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise GruOnnxUsageError(f"cannot write the web cache {target}: {exc.strerror or exc}; {how}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    missing = [p for p in (chromium_problem(), playwright_problem()) if p]
    return SetupResult(
        cache=target,
        versions={p: installed_version(p, target) or "?" for p in PINS},
        node=node_version(),
        chromium=find_chromium(),
        installed=installed,
        seconds=time.perf_counter() - started,
        missing=tuple(missing),
    )
