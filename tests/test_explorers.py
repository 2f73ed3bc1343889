"""Interactive figures: stable HTML, every state embedded, the right data per state, served plotly.js."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kdwide import effective_logit
from kdwide.experiments.discontinuity import flip_teacher_logit
from kdwide_book import chapter_explorers as chapters
from kdwide_book.explorers import (EXPLORERS_JS, PLOTLY_JS, Slider, compact, explorer, explorers_javascript,
                                  plotly_javascript, setup)
from kdwide_book.sphinx_extension import external_references

pytest.importorskip("plotly", reason="plotly draws the interactive figures (core dependency)")


def spec_of(html: str) -> dict:
    """The states the explorer's script swaps between, parsed back from its HTML."""
    match = re.search(r"var spec = (\{.*?\});\n", html, re.S)
    assert match, "no state table in the explorer's script"
    return json.loads(match.group(1))


def line(a: float) -> list[dict]:
    return [{"y": [a, 2 * a, np.nan]}]


def simple(**overrides):
    arguments = dict(element_id="test-explorer", sliders=[Slider("a", [1.0, 2.0, 3.0], 1), Slider("b", ["u", "v"])],
                     state=lambda a, b: line(a if b == "u" else -a), traces=[dict(type="scatter", x=[0, 1, 2])],
                     caption="A test figure.")
    arguments.update(overrides)
    return explorer(**arguments)


def test_every_state_is_embedded_in_slider_order_and_the_first_picture_is_the_active_state() -> None:
    figure = simple()
    spec = spec_of(figure.html)
    assert figure.n_states == 6 and spec["sizes"] == [3, 2] and spec["active"] == [1, 0]
    # flat index = a_index * 2 + b_index; NaN is sent as null (a gap in the line)
    assert [s["traces"][0]["y"] for s in spec["states"]] == [
        [1.0, 2.0, None], [-1.0, -2.0, None], [2.0, 4.0, None], [-2.0, -4.0, None], [3.0, 6.0, None], [-3.0, -6.0, None]]
    assert 'id="test-explorer"' in figure.html and "Plotly.newPlot" in figure.html
    assert "<script src" not in figure.html  # plotly.js is served by the site, never embedded or fetched
    assert external_references(figure.html) == []
    assert "A test figure." in figure.html and 'aria-label="A test figure."' in figure.html
    assert "6 states" in repr(figure)


def test_the_html_is_identical_on_every_run() -> None:
    assert simple().html == simple().html


def test_bad_explorers_are_refused_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="element_id"):
        simple(element_id="Has Spaces")
    with pytest.raises(ValueError, match="sliders"):
        simple(sliders=[])
    with pytest.raises(ValueError, match="traces"):
        simple(traces=[dict(type="scatter"), dict(type="scatter")])
    with pytest.raises(ValueError, match="active"):
        Slider("a", [1, 2], active=2)
    with pytest.raises(ValueError, match="values"):
        Slider("a", [])


def test_compact_rounds_to_four_digits_and_drops_non_finite_values() -> None:
    assert compact(np.array([[1 / 3, np.inf], [-np.nan, 2.0]])) == [[0.3333, None], [None, 2.0]]
    assert compact({"a": np.float64(123456.0), "b": "text", "c": np.int64(3)}) == {"a": 123500.0, "b": "text", "c": 3}


def test_the_site_serves_plotly_once_and_only_pages_with_an_explorer_load_it(tmp_path: Path) -> None:
    calls: dict[str, list] = {"connect": [], "js": []}
    app = SimpleNamespace(doctreedir=str(tmp_path / "doctrees"), config=SimpleNamespace(html_static_path=["x"]),
                          connect=lambda event, handler, priority=500: calls["connect"].append((event, handler)),
                          add_js_file=lambda name, **kw: calls["js"].append(name))
    setup(app)
    handlers = dict(calls["connect"])
    handlers["builder-inited"](app)
    served = Path(app.config.html_static_path[-1]) / PLOTLY_JS
    assert app.config.html_static_path[0] == "x" and served.read_bytes() == plotly_javascript().read_bytes()
    assert served.stat().st_size > 1_000_000  # the real library, not a stub
    script = Path(app.config.html_static_path[-1]) / EXPLORERS_JS
    assert script.read_bytes() == explorers_javascript().read_bytes() and b"plotly_sliderchange" in script.read_bytes()
    handlers["html-page-context"](app, "book/intro", "page.html", {"body": "<p>no figure</p>"}, None)
    assert calls["js"] == []
    handlers["html-page-context"](app, "book/01", "page.html", {"body": simple().html}, None)
    assert calls["js"] == [PLOTLY_JS, EXPLORERS_JS]


def test_external_references_finds_loaded_resources_not_links() -> None:
    body = ('<a href="https://example.org">a link</a><img src="_images/a.png">'
            '<script src="https://cdn.plot.ly/plotly.min.js"></script><link rel="stylesheet" href="//fonts.example/x.css">')
    assert external_references(body) == ["https://cdn.plot.ly/plotly.min.js", "//fonts.example/x.css"]


def test_the_effective_logit_explorer_shows_the_effective_logit_and_its_flip_point() -> None:
    figure = chapters.effective_logit_explorer(rho_values=[0.5, 0.9, 1.0], temperature_values=[1.0, 2.0],
                                               rho=0.9, temperature=1.0, n_points=41)
    spec = spec_of(figure.html)
    assert spec["sizes"] == [3, 2, 2] and spec["active"] == [1, 0, 0]
    z = np.linspace(-8, 8, 41)
    state = spec["states"][(1 * 2 + 0) * 2 + 0]  # rho 0.9, T 1, label 0
    expected = np.asarray(effective_logit(z, np.zeros(41, int), rho=0.9, temperature=1.0))
    assert np.allclose(state["traces"][1]["y"], expected, rtol=1e-3, atol=1e-3)
    flip = float(flip_teacher_logit(rho=0.9, temperature=1.0))
    assert state["traces"][2]["x"] == [pytest.approx(flip, rel=1e-3)] and state["traces"][2]["y"] == [0.0]
    no_flip = spec["states"][0]  # rho 0.5 <= T/(T+1) at T = 1: the label always wins, nothing to mark
    assert no_flip["traces"][2]["x"] == [] and "no flip" in no_flip["layout"]["title.text"]


def test_the_slice_explorer_breaks_the_curve_at_the_label_change() -> None:
    x = np.linspace(-1, 1, 9)
    z_teacher = 4 * np.sin(np.pi * x)
    y = (z_teacher > 0).astype(int)
    spec = spec_of(chapters.slice_explorer(x, z_teacher, y, rho_values=[0.5, 1.0], temperature_values=[1.0],
                                           rho=0.5, temperature=1.0).html)
    half, soft = spec["states"][0], spec["states"][1]
    assert None in half["traces"][1]["y"]  # the gap where the label changes
    assert "jump" in half["layout"]["title.text"]
    assert np.allclose([v for v in soft["traces"][1]["y"] if v is not None], z_teacher, atol=1e-3)  # rho = 1: teacher


def test_the_risk_explorer_shows_seed_means_and_single_seeds() -> None:
    rows = [dict(rho=r, n_train=n, seed=0, repetition=s, transfer_risk=0.1 * s + r / n, alpha_n=0.5 + s)
            for r in (0.0, 1.0) for n in (16, 32) for s in (0, 1)]
    spec = spec_of(chapters.risk_explorer(pd.DataFrame(rows), n_test=100).html)
    assert spec["sizes"] == [3]  # mean, repetition 0, repetition 1
    mean, seed_one = spec["states"][0]["traces"], spec["states"][2]["traces"]
    # traces: (rho = 1 risk, rho = 1 angle, rho = 0 risk, rho = 0 angle); rho = 0 risk at seed 0 is 0: floor 0.005
    assert mean[0]["y"] == [pytest.approx(0.05 + 1 / 16), pytest.approx(0.05 + 1 / 32)]
    assert seed_one[1]["y"] == [1.5, 1.5] and mean[3]["y"] == [1.0, 1.0]


def test_the_inefficiency_explorer_moves_with_rho_and_temperature() -> None:
    rows = [dict(rho=r, temperature=t, n_train=n, seed=s, data_inefficiency=r + t + n / 100 + s / 10)
            for r in (0.0, 1.0) for t in (1.0, 2.0) for n in (16, 32) for s in (0, 1)]
    spec = spec_of(chapters.inefficiency_explorer(pd.DataFrame(rows), rho=1.0, temperature=1.0).html)
    assert spec["active"] == [1, 0]
    assert spec["states"][3]["traces"][0]["y"] == [pytest.approx(3.21), pytest.approx(3.37)]  # rho 1, T 2


def test_the_soft_ratio_explorer_marks_each_curves_best_rho() -> None:
    rows = [dict(temperature=t, teacher_quality=q, rho=r, seed=s, student_error=(r - q) ** 2 + t / 100)
            for t in (1.0, 2.0) for q in (0.0, 0.5) for r in (0.0, 0.5, 1.0) for s in (0, 1)]
    spec = spec_of(chapters.soft_ratio_error_explorer(pd.DataFrame(rows), quality_name="q {:g}").html)
    assert spec["states"][0]["traces"][2] == {"x": [0.0, 0.5], "y": [0.01, 0.01]}


def test_the_landscape_explorer_marks_the_best_rho_of_every_temperature() -> None:
    rho_axis, temperature_axis = [0.0, 0.5, 1.0], [1.0, 2.0]
    maps = {"first": np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 1.0]]), "second": np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]])}
    spec = spec_of(chapters.landscape_explorer(rho_axis, temperature_axis, maps).html)
    first, second = spec["states"]
    assert first["traces"][1] == {"x": ["1", "2"], "y": ["0.5", "1"]}  # tie at T = 2 goes to the largest rho
    assert second["traces"][1]["y"] == ["0", "1"] and "lowest 0 at ρ = 0, T = 1" in second["layout"]["title.text"]


def test_the_multiclass_explorer_lifts_the_label_as_rho_falls() -> None:
    teacher, label = [0.5, -1.0, 2.5, 0.0], 0
    figure = chapters.multiclass_logits_explorer(teacher, label, rho_values=[1e-3, 0.5, 1.0], temperature_values=[1.0, 2.0],
                                                 rho=0.5, temperature=2.0)
    spec = spec_of(figure.html)
    assert figure.n_states == 6 and spec["active"] == [1, 1]
    bars = {(r, t): spec["states"][2 * i + j]["traces"][1]["y"] for i, r in enumerate([1e-3, 0.5, 1.0])
            for j, t in enumerate([1.0, 2.0])}
    assert np.allclose(bars[(1.0, 1.0)], np.asarray(teacher) - np.mean(teacher))  # rho = 1: the centred teacher
    margin = lambda z: z[label] - max(np.delete(z, label))  # noqa: E731
    assert margin(bars[(1e-3, 1.0)]) > margin(bars[(0.5, 1.0)]) > margin(bars[(1.0, 1.0)])
    with pytest.raises(ValueError, match="rho_values"):
        chapters.multiclass_logits_explorer(teacher, label, rho_values=[0.0, 1.0], temperature_values=[1.0], rho=1.0,
                                            temperature=1.0)
