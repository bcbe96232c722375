"""Reports (``gru_onnx.report``): the JSON against its schema, non-finite numbers as strings,
and plots that are real PNGs drawing exact zeros as markers on a stated floor."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from gru_onnx.report import schema, to_json

import flat
from helpers import perturb


def test_json_report_validates_against_the_schema(exported, run_cli, tmp_path):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev extra")
    _, _, path = exported
    perturb(path, tmp_path / "bad.onnx", "bias_ih_l0", 1e-2)
    for name, extra in (("gru.onnx", []), ("bad.onnx", ["--checkpoint", "source.pt"])):
        run_cli("check", name, "--provider", "all", "--report", "r.json", *extra)
        jsonschema.validate(json.loads((tmp_path / "r.json").read_text()), schema())
    # Non-finite numbers are strings in the JSON, which the schema allows.
    report = flat.check_parity(None, path)
    data = to_json(report)
    data["runtimes"][0]["outputs"][0]["max_abs"] = "nan"
    jsonschema.validate(data, schema())
    data["runtimes"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())


def test_plot_is_a_real_png(exported, run_cli, tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="matplotlib is the plot extra")
    _, _, path = exported
    assert run_cli("check", str(path), "--plot", "errors.png").exit_code == 0
    pixels = image.imread(tmp_path / "errors.png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0


def test_plot_draws_exact_zeros_as_markers_on_a_stated_floor(tmp_path, monkeypatch, whole_models):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from gru_onnx.report import plot

    _, _, result = whole_models["plain-tuple"]
    report = copy.deepcopy(result.parity)  # the session's export is only read
    first = report.results[0].outputs[0]
    values = (0.0, 2e-7, 0.0, 3e-6, 0.0, 0.0)
    object.__setattr__(first, "per_step_max_abs", values)
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    plot(report, tmp_path / "p.png")
    (ax,) = figures[0].axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    exact = [label for label in labels if label.startswith("exactly 0 (drawn at")]
    assert len(exact) == 1
    floor = float(exact[0].split("drawn at ")[1].rstrip(")"))
    assert floor < 2e-7
    for line in ax.get_lines():
        ys = np.asarray(line.get_ydata(), dtype=float)
        if line.get_label() == first_label(report):
            # The error curve holds the non-zero errors only; zeros are not drawn as tiny errors.
            assert np.count_nonzero(np.isfinite(ys)) == 2
            np.testing.assert_array_equal(ys[np.isfinite(ys)], [2e-7, 3e-6])


def first_label(report) -> str:
    r = report.results[0]
    return f"{r.runtime}: {r.outputs[0].name}"
