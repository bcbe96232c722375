"""Shared fixtures: seeds, the command line in a fresh folder, and files exported once per session.

A session file is only read by the tests that take it; a test that changes a file takes the
function-scoped copy (``exported``, ``pair``) or copies it into its own ``tmp_path`` first.
Helpers that are not fixtures live in ``helpers.py``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from gru_onnx import CustomGRU

import flat
from helpers import FeatureTagger, TokenTagger, export_pair


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _registries():
    """What a test registers (activations, strategies, runners) is gone after it, so tests sharing
    a worker process cannot see each other's names."""
    from gru_onnx import activations, registry, runners
    from gru_onnx.exporters import base

    tables = [activations._REGISTRY, activations._ALIASES, registry._STRATEGIES, registry._RUNNERS,
              base.STRATEGIES, runners.RUNNERS, runners._PROBLEMS]  # fmt: skip
    saved = [dict(t) for t in tables]
    yield
    for table, before in zip(tables, saved, strict=True):
        table.clear()
        table.update(before)


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Invoke the CLI in a fresh working directory; never a traceback in its output."""
    from click.testing import CliRunner

    from gru_onnx.cli import cli

    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    return invoke


#: Python's warning filters in a fresh process (``python -W`` and PYTHONWARNINGS aside), last first.
_PROCESS_WARNING_FILTERS = (
    ("ignore", ResourceWarning, None), ("ignore", ImportWarning, None),
    ("ignore", PendingDeprecationWarning, None), ("ignore", DeprecationWarning, None),
    ("default", DeprecationWarning, "__main__"),
)  # fmt: skip


@pytest.fixture
def run_main(tmp_path, monkeypatch, capfd):
    """The console script's entry point (``gru_onnx.cli:main``, what ``gru-onnx ...`` runs) in this
    process, as a process of its own would run it: a fresh working directory, Python's default
    warning filters instead of pytest's, no logging handler but Python's last resort (stderr), and
    ``sys.exit("message")`` printed. Returns the exit code and what reached the stdout and stderr
    file descriptors (ONNX Runtime's C++ log included). A new interpreter costs two seconds of
    imports; tests that need one (the installed script, import-time behaviour) start it."""
    from gru_onnx.cli import main

    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["gru-onnx", *args])
        monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # the CLI installs its own
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        capfd.readouterr()
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in _PROCESS_WARNING_FILTERS:
                warnings.filterwarnings(action, category=category, module=module or "")
            root.handlers[:] = []  # pytest's capturing handlers out: warnings go to stderr as in a process
            root.setLevel(logging.WARNING)
            try:
                main()
                code = 0
            except SystemExit as exc:
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                root.handlers[:] = handlers
                root.setLevel(level)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["gru-onnx", *args], code, out, err)

    return invoke


# ---------------------------------------------------------------------------------- a checked unrolled file


@pytest.fixture(scope="session")
def unrolled_relu_file(tmp_path_factory):
    """A 2-layer bidirectional relu GRU, unrolled and checked, its source checkpoint beside it."""
    torch.manual_seed(1)
    gru = CustomGRU(4, 6, num_layers=2, bidirectional=True, activation="relu", recurrent_activation="hard_sigmoid")
    folder = tmp_path_factory.mktemp("unrolled_relu")
    torch.save(gru.state_dict(), folder / "source.pt")
    x = torch.randn(12, 2, 4)
    result = flat.export(gru, (x,), folder / "gru.onnx", strategy="unrolled")
    assert result.passed
    return gru, x, result.path


@pytest.fixture
def exported(unrolled_relu_file, tmp_path):
    """The unrolled relu file (``gru.onnx``) and its checkpoint (``source.pt``) in the test's
    own folder: ``(gru, x, path)``."""
    gru, x, path = unrolled_relu_file
    shutil.copy(path, tmp_path / "gru.onnx")
    shutil.copy(path.parent / "source.pt", tmp_path / "source.pt")
    return gru, x, tmp_path / "gru.onnx"


# ---------------------------------------------------------------------------------- a streaming file


@pytest.fixture(scope="session")
def streaming_file(tmp_path_factory):
    """A 2-layer batch-first relu GRU (reset before), a loop streaming file: ``(gru, path)``."""
    torch.manual_seed(1)
    gru = CustomGRU(3, 4, num_layers=2, batch_first=True, activation="relu", reset_after=False)
    path = tmp_path_factory.mktemp("streaming") / "relu.onnx"
    flat.export(gru, (torch.randn(2, 5, 3),), path, strategy="loop", streaming=True, check=False)
    return gru, path


# ---------------------------------------------------------------------------------- an external data pair


@pytest.fixture(scope="session")
def tagger() -> TokenTagger:
    torch.manual_seed(0)
    return TokenTagger().eval()


@pytest.fixture(scope="session")
def pair_source(tmp_path_factory, tagger):
    """The token tagger exported once as a model + external data pair."""
    return export_pair(tagger, tmp_path_factory.mktemp("pair") / "out" / "tagger.onnx").path


@pytest.fixture
def pair(tmp_path, pair_source):
    """A fresh copy of the pair in ``tmp_path/out`` (tests delete, truncate and move its data)."""
    out = tmp_path / "out"
    out.mkdir()
    for file in pair_source.parent.iterdir():
        shutil.copy(file, out / file.name)
    return out / pair_source.name


@pytest.fixture
def no_reads(monkeypatch):
    """Fail the test if ONNX Runtime or ONNX's loader opens a model's external data."""
    import onnx
    import onnxruntime as ort

    def refuse(*args, **kwargs):
        raise AssertionError("external data was read although it should have been refused first")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_tensor", refuse)
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_model", refuse)


# ---------------------------------------------------------------------------------- a Triton-ready file


@pytest.fixture(scope="session")
def tagger_file(tmp_path_factory):
    """A batch-first tagger with dict outputs, loop with a dynamic length (read by the package tests)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("triton") / "tagger.onnx"
    flat.export(FeatureTagger(), (torch.randn(2, 5, 4),), path, dynamic_seq=True, strategy="loop", check=False)
    return path


# ---------------------------------------------------------------------------------- a --model factory


@pytest.fixture
def factory_module(tmp_path):
    """``opts_models``, a factory module in ``tmp_path`` whose factories return export options."""
    import sys
    import textwrap

    from helpers import OPTIONS_FACTORY

    (tmp_path / "opts_models.py").write_text(textwrap.dedent(OPTIONS_FACTORY))
    sys.modules.pop("opts_models", None)
    yield "opts_models"
    sys.modules.pop("opts_models", None)


# ---------------------------------------------------------------------------------- whole models, exported and checked


@pytest.fixture(scope="session")
def whole_models(tmp_path_factory):
    """Three whole models exported once with the default options and checked, by the structure
    they return: ``{id: (model, x, result)}`` (a NamedTuple, a nested dict, a plain tuple)."""
    from helpers import Denoiser, Nested, Plain

    folder = tmp_path_factory.mktemp("whole_models")
    torch.manual_seed(0)
    made = {}
    models = (("namedtuple", Denoiser(), 6), ("nested-dict", Nested(), 3), ("plain-tuple", Plain(), 3))
    for key, model, features in models:
        x = torch.randn(2, 6, features)
        made[key] = (model, x, flat.export(model, (x,), folder / f"{key}.onnx"))
    return made


@pytest.fixture
def loop_file(tmp_path):
    """A relu GRU written as a loop with a dynamic length, at the graph level: ``(gru, path)``."""
    from helpers import graph_export

    torch.manual_seed(0)
    gru = CustomGRU(3, 4, activation="relu")
    result = graph_export(gru, (torch.randn(5, 2, 3),), tmp_path / "m.onnx", strategy="loop", dynamic_seq=True,
                          check=False)  # fmt: skip
    return gru, result.path
