"""``setup_web``: where the cache is, what it installs (with a stand-in npm: no network), that a
failed or foreign install leaves things as they were, and the one-line reasons."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gru_onnx.errors import GruOnnxError, GruOnnxUsageError
from gru_onnx.web.setup import (
    CACHE_ENV,
    CHROMIUM_ENV,
    PINS,
    cache_dir,
    find_chromium,
    find_node,
    installed_version,
    node_version,
    package_problem,
    setup_web,
)

#: A stand-in for npm: installs each dependency of ./package.json as a bare package.json.
FAKE_NPM = """#!/bin/sh
echo "$@" >> "$NPM_LOG"
python3 - <<'EOF'
import json, pathlib
for name, version in json.load(open("package.json"))["dependencies"].items():
    folder = pathlib.Path("node_modules") / name
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version}))
EOF
"""
FAILING_NPM = """#!/bin/sh
echo "npm ERR! code E404" >&2
echo "npm ERR! 404 Not Found - GET https://registry.npmjs.org/onnxruntime-web" >&2
exit 1
"""


@pytest.fixture
def with_npm(tmp_path, monkeypatch):
    """Put a stand-in npm (``FAKE_NPM`` or another script) first on PATH, Node.js kept."""
    node = find_node()
    if node is None or node_version(node) is None:
        pytest.skip("Node.js not found: `apt-get install nodejs npm`")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("NPM_LOG", str(tmp_path / "npm.log"))

    def install(script: str) -> Path:
        npm = bin_dir / "npm"
        npm.write_text(script)
        npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
        return tmp_path / "npm.log"

    return install


def test_cache_folder_argument_then_variable_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_dir() == tmp_path / "xdg" / "gru-onnx" / "web"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_chromium_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "my-chromium"))
    assert find_chromium() == tmp_path / "my-chromium"


def test_install_is_atomic_and_skipped_when_the_pins_are_there(with_npm, tmp_path, monkeypatch):
    log = with_npm(FAKE_NPM)
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    cache = tmp_path / "cache"
    first = setup_web(cache)
    assert first.installed and first.cache == cache and first.versions == PINS
    assert json.loads((cache / "package.json").read_text())["dependencies"] == PINS
    assert log.read_text().split() == ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    assert first.missing == (
        f"{CHROMIUM_ENV}={tmp_path / 'no-chromium'} is not an executable file: `apt-get install chromium` or fix the "
        "variable",
    )
    assert "missing: GRU_ONNX_CHROMIUM=" in first.summary()[-1]
    second = setup_web(cache)
    assert not second.installed and len(log.read_text().splitlines()) == 1  # npm not run again
    assert "already in" in second.summary()[0]
    third = setup_web(cache, force=True)
    assert third.installed and len(log.read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "cache", "npm.log"]  # no temporary folders left


def test_failed_install_keeps_the_previous_cache(with_npm, tmp_path):
    with_npm(FAKE_NPM)
    cache = tmp_path / "cache"
    setup_web(cache)
    (cache / "node_modules" / "onnxruntime-web" / "package.json").write_text('{"version": "1.0.0"}')  # an old pin
    with_npm(FAILING_NPM)
    with pytest.raises(GruOnnxError, match=r"^npm install onnxruntime-web@1\.30\.0 onnxruntime-node@1\.30\.0 failed: "
                                           r"npm ERR! code E404$"):  # fmt: skip
        setup_web(cache)
    assert installed_version("onnxruntime-web", cache) == "1.0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "cache", "npm.log"]


def test_a_folder_it_did_not_make_is_refused(with_npm, tmp_path):
    with_npm(FAKE_NPM)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    with pytest.raises(GruOnnxUsageError, match=r"mine holds 'thesis.tex', which gru-onnx did not put there"):
        setup_web(mine)
    (tmp_path / "file").write_text("")
    with pytest.raises(GruOnnxUsageError, match=r"the web cache .*file is not a folder; choose another with --cache"):
        setup_web(tmp_path / "file")
    assert (mine / "thesis.tex").read_text() == "keep"


# Guards: a cache folder without gru-onnx's marker (its package.json removed, or a user's folder named
#   as the cache) was reported as "run `gru-onnx setup web`", which then refused the folder (left alone
#   in the 2026-11-29 note); the runners now say why setup would refuse it
def test_a_cache_setup_would_refuse_is_reported_with_the_refusal_not_with_setup(with_npm, tmp_path):
    with_npm(FAKE_NPM)
    cache = tmp_path / "cache"
    setup_web(cache)
    (cache / "package.json").unlink()  # damaged: node_modules without the marker
    (cache / "node_modules" / "onnxruntime-web" / "package.json").unlink()
    problem = package_problem("onnxruntime-web", cache)
    assert problem is not None and "\n" not in problem
    assert problem.startswith(f"onnxruntime-web is not installed in {cache}: `gru-onnx setup web` would refuse it: ")
    assert problem.endswith("which gru-onnx did not put there; choose another with --cache")  # an argument: --cache
    with pytest.raises(GruOnnxUsageError, match="which gru-onnx did not put there"):
        setup_web(cache)  # what the message foretold
    fresh = tmp_path / "fresh"
    assert package_problem("onnxruntime-web", fresh).endswith(": run `gru-onnx setup web`")  # absent: setup makes it


@pytest.mark.parametrize("where", ["long", "root", "file"])
def test_a_cache_probe_never_raises_and_says_what_setup_would(where, with_npm, tmp_path, monkeypatch):
    """Guards: a cache path that cannot even be looked at (a name too long) made the runtime probe
    raise (exit 3); the refusal named in the probe is the one ``setup_web`` gives for that path,
    with --cache for an argument and the variable too for the environment's cache."""
    with_npm(FAKE_NPM)
    cache = {"long": tmp_path / ("a" * 300), "root": Path("/"), "file": tmp_path / "file"}[where]
    (tmp_path / "file").write_text("")
    with pytest.raises(GruOnnxUsageError) as refused:
        setup_web(cache)
    problem = package_problem("onnxruntime-node", cache)
    assert problem.endswith(f"`gru-onnx setup web` would refuse it: {refused.value}") and "\n" not in problem
    assert str(refused.value).endswith("; choose another with --cache")
    monkeypatch.setenv(CACHE_ENV, str(cache))
    from_env = package_problem("onnxruntime-node")
    assert from_env.endswith(f"; choose another with {CACHE_ENV} or --cache")
    with pytest.raises(GruOnnxUsageError, match=f"; choose another with {CACHE_ENV} or --cache$"):
        setup_web()


@pytest.mark.parametrize("force", [False, True])
def test_the_caches_marker_alone_does_not_make_a_folder_ours(with_npm, tmp_path, force):
    """Guards: a folder whose package.json carried the cache's name was reinstalled over, a
    user's files beside it deleted, with or without --force (attack review)."""
    with_npm(FAKE_NPM)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "package.json").write_text(json.dumps({"name": "gru-onnx-web-cache"}))
    (mine / "thesis.tex").write_text("keep")
    with pytest.raises(GruOnnxUsageError, match=r"holds 'thesis.tex'"):
        setup_web(mine, force=force)
    assert (mine / "thesis.tex").read_text() == "keep"


def test_a_link_the_root_and_unwritable_places_are_one_line_refusals(with_npm, tmp_path):
    with_npm(FAKE_NPM)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(GruOnnxUsageError, match=r"is a symbolic link"):
        setup_web(tmp_path / "link")
    with pytest.raises(GruOnnxUsageError, match=r"cannot be the root folder"):
        setup_web("/")
    (tmp_path / "afile").write_text("")
    with pytest.raises(GruOnnxUsageError, match=r"cannot write the web cache .*afile/sub"):
        setup_web(tmp_path / "afile" / "sub")


def test_without_npm_the_package_is_named(tmp_path, monkeypatch):
    node = find_node()
    if node is None:
        pytest.skip("Node.js not found: `apt-get install nodejs npm`")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "node").symlink_to(node.resolve())
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("GRU_ONNX_NODE", raising=False)
    with pytest.raises(GruOnnxUsageError, match=r"^npm not found on PATH: `apt-get install nodejs npm`$"):
        setup_web(tmp_path / "cache")


def test_the_real_cache_holds_the_pins(node_ready, ort_web_ready):
    result = setup_web()
    assert not result.installed and result.versions == PINS


def hostile(path: Path, kind: str) -> None:
    """``path`` made a FIFO (reading it blocks), a link to /dev/zero (it never ends) or a huge file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    else:
        with path.open("wb") as f:
            f.truncate(2**21)


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge"])
def test_a_hostile_package_json_in_the_cache_is_named_not_read(kind, with_npm, tmp_path, run_cli, monkeypatch):
    """Guards: a FIFO at node_modules/onnxruntime-web/package.json hung package --web and bench
    --provider web, a link to /dev/zero gave "lower --batch or --seq-len"; now the file is named
    with the command that repairs it, and that command does."""
    with_npm(FAKE_NPM)
    cache = tmp_path / "cache"
    setup_web(cache)
    hostile(cache / "node_modules" / "onnxruntime-web" / "package.json", kind)
    assert installed_version("onnxruntime-web", cache) is None
    problem = package_problem("onnxruntime-web", cache)
    assert problem is not None and "node_modules/onnxruntime-web/package.json" in problem
    assert problem.endswith("run `gru-onnx setup web` to repair it") and "\n" not in problem
    monkeypatch.setenv(CACHE_ENV, str(cache))
    (tmp_path / "a.onnx").write_bytes(b"")  # refused for the cache before the file is read
    for args in (["package", "a.onnx", "--web", "out"], ["bench", "a.onnx", "--provider", "web"]):
        result = run_cli(*args)
        assert result.exit_code == 2 and "run `gru-onnx setup web` to repair it" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert setup_web(cache).installed and installed_version("onnxruntime-web", cache) == PINS["onnxruntime-web"]


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge"])
def test_a_hostile_package_json_at_the_caches_top_is_refused_not_read(kind, with_npm, tmp_path):
    """Guards: a FIFO at the cache's own package.json hung `gru-onnx setup web`."""
    log = with_npm(FAKE_NPM)
    cache = tmp_path / "cache"
    hostile(cache / "package.json", kind)
    with pytest.raises(GruOnnxUsageError, match=r"the web cache's package.json is not gru-onnx's: .*package.json"):
        setup_web(cache)
    assert not log.exists() and sorted(p.name for p in cache.iterdir()) == ["package.json"]
