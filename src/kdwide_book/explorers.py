"""Interactive figures ("explorers") that work in the static HTML book: no kernel, no network.

An explorer is a plotly figure with one or more sliders. Every combination of slider positions is a *state*;
the chapter computes all states in Python, the explorer embeds them (rounded to 4 significant digits, so pages
stay light and stored outputs stay bit-stable) and a few lines of JavaScript swap the plotted data when a slider
moves. The figure is written with ``include_plotlyjs=False`` and a fixed element id: plotly.js itself is served
once per site from ``_static/plotly.min.js`` by this module's Sphinx extension (listed in ``_config.yml``), which
adds the script only to pages that hold an explorer.

Why plotly (README, "Interactive figures"): its wheel ships ``plotly.min.js`` (4.8 MB, served once and cached),
a figure without the library is ~0.1 MB of deterministic HTML, and its sliders, hover and legend toggles need no
server. Bokeh (INLINE) embeds 1.3 MB per page and uses random document ids; Altair loads vega from a CDN.

Why our own slider wiring (a short ``post_script``): plotly's own slider steps can only set a fixed list of
properties per step, so two sliders (ρ and T) cannot combine; we index the precomputed states by both positions.

Example:
    >>> import numpy as np
    >>> x = np.linspace(0.0, 1.0, 3)
    >>> figure = explorer(
    ...     "doc-example", [Slider("a", [1.0, 2.0])],
    ...     lambda a: [{"x": x, "y": a * x}], traces=[{"type": "scatter", "name": "a x"}],
    ...     caption="Lines through the origin.", x_label="x", y_label="y")
    >>> figure.n_states
    2
    >>> "plotly-graph-div" in figure.html
    True
"""

from __future__ import annotations

import html as html_text
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdwide_book.results import atomic_write

__all__ = ["Slider", "Explorer", "explorer", "glue", "compact", "plotly_javascript", "explorers_javascript", "setup"]

#: significant digits kept in embedded data
SIGNIFICANT_DIGITS = 4
#: the file name plotly.js is served under (``_static/``)
PLOTLY_JS = "plotly.min.js"
#: the explorers' keyboard, screen-reader, dark-mode and phone script (``_static/``)
EXPLORERS_JS = "kdwide-explorers.js"
_ELEMENT_ID = re.compile(r"^[a-z][a-z0-9-]*$")
_EXPLORER_MARK = 'class="kdwide-explorer"'


@dataclass(frozen=True)
class Slider:
    """A slider over ``values`` (numbers or labels), starting at ``values[active]``; ``name`` is its label."""

    name: str
    values: Sequence[Any]
    active: int = 0

    def __post_init__(self) -> None:
        if len(self.values) == 0:
            raise ValueError(f"slider {self.name!r}: values is empty; give at least one value")
        if not 0 <= self.active < len(self.values):
            raise ValueError(f"slider {self.name!r}: active = {self.active} must be in [0, {len(self.values) - 1}]")

    def label(self, index: int) -> str:
        value = self.values[index]
        return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def compact(value: Any) -> Any:
    """``value`` as JSON-ready lists with floats rounded to 4 significant digits; NaN and ±inf become ``None``.

    Example:
        >>> compact(np.array([1 / 3, np.nan, 12345.678]))
        [0.3333, None, 12350.0]
    """
    if isinstance(value, Mapping):
        return {str(k): compact(v) for k, v in value.items()}
    if isinstance(value, (str, bool)) or value is None:
        return value
    array = np.asarray(value)
    if array.dtype.kind in "US":
        return array.tolist()
    if array.ndim == 0:
        number = array.item()
        if isinstance(number, float):
            return float(f"{number:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(number) else None
        return number
    return [compact(item) for item in array]


@dataclass(frozen=True)
class Explorer:
    """A rendered explorer: ``html`` (a ``<figure>`` with the plot and its caption) and a plain-text summary.

    Displaying it in a notebook stores both (``text/html`` for the book, ``text/plain`` for anything else).
    """

    element_id: str
    html: str
    summary: str
    n_states: int

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.summary


_SWAP_JS = """
(function () {
  var plot = document.getElementById("{plot_id}");
  var spec = %(spec)s;
  var active = spec.active.slice();
  function show() {
    var flat = 0;
    for (var k = 0; k < spec.sizes.length; k++) { flat = flat * spec.sizes[k] + active[k]; }
    var state = spec.states[flat];
    for (var i = 0; i < state.traces.length; i++) {
      var update = {}, changed = false;
      for (var key in state.traces[i]) { update[key] = [state.traces[i][key]]; changed = true; }
      if (changed) { Plotly.restyle(plot, update, [i]); }
    }
    if (state.layout) { Plotly.relayout(plot, state.layout); }
    plot.setAttribute("data-state", active.join(","));
  }
  plot.on("plotly_sliderchange", function (event) {
    var index = spec.names.indexOf(event.slider.name);
    if (index < 0 || event.step._index === undefined) { return; }
    active[index] = event.step._index;
    show();
  });
  plot.setAttribute("data-state", active.join(","));
})();
"""


def _states(sliders, state, state_layout, *, n_traces: int) -> list[dict[str, Any]]:
    """Every combination of slider positions, in row-major order: each state's compacted traces (and layout)."""
    states = []
    for positions in itertools.product(*(range(len(s.values)) for s in sliders)):
        values = [s.values[p] for s, p in zip(sliders, positions)]
        data = list(state(*values))
        if len(data) != n_traces:
            raise ValueError(f"state{tuple(values)} gave {len(data)} traces; traces has {n_traces}")
        entry: dict[str, Any] = {"traces": [compact(d) for d in data]}
        if state_layout is not None:
            entry["layout"] = compact(state_layout(*values))
        states.append(entry)
    return states


def explorer(
    element_id: str,
    sliders: Sequence[Slider],
    state: Callable[..., Sequence[Mapping[str, Any]]],
    *,
    traces: Sequence[Mapping[str, Any]],
    caption: str,
    x_label: str = "",
    y_label: str = "",
    title: str = "",
    layout: Mapping[str, Any] | None = None,
    state_layout: Callable[..., Mapping[str, Any]] | None = None,
    height: int = 520,
) -> Explorer:
    """An interactive figure whose data follow ``sliders``.

    Args:
      element_id: the plot's HTML id, fixed so that stored outputs are stable (lower case, digits, dashes).
      sliders: one or more :class:`Slider`; states are all combinations of their positions.
      state: ``state(*values)`` (one value per slider, in order) returns one mapping per trace with the trace's
        data in that state (``x``, ``y``, ``z``, ``text``, ...; arrays of any shape plotly accepts).
      traces: one plotly trace per entry of ``state(...)`` (type, name, mode, style); its data are filled in.
      caption: the figure's caption (plain text), also its accessible label.
      x_label, y_label, title: axis titles and plot title.
      layout: extra plotly layout (merged over the defaults).
      state_layout: ``state_layout(*values)`` returns layout changes for a state (e.g. an annotation's text).
      height: plot height in CSS pixels.

    Returns:
      an :class:`Explorer`; the initial picture is the state at every slider's ``active`` position, so a printed
      page shows that state.

    Raises:
      ValueError: a bad ``element_id``, no sliders, or a state whose trace count differs from ``traces``.
    """
    import plotly.graph_objects as go  # only the figure builder needs plotly

    if not _ELEMENT_ID.match(element_id):
        raise ValueError(f"element_id = {element_id!r}: use lower-case letters, digits and dashes, starting with a letter")
    if not sliders:
        raise ValueError("sliders is empty; an explorer needs at least one slider")
    sizes = [len(s.values) for s in sliders]
    states = _states(sliders, state, state_layout, n_traces=len(traces))
    active = [s.active for s in sliders]
    flat = 0
    for size, position in zip(sizes, active):
        flat = flat * size + position
    initial = states[flat]
    figure = go.Figure([dict(trace, **data) for trace, data in zip(traces, initial["traces"])])
    slider_layout = []
    for index, slider in enumerate(sliders):
        slider_layout.append(dict(
            name=slider.name, active=slider.active, currentvalue=dict(prefix=f"{slider.name} = "),
            pad=dict(t=40, b=0), y=-0.1 - 0.3 * index, len=1.0, x=0.0,
            steps=[dict(label=slider.label(i), method="skip") for i in range(len(slider.values))]))
    figure.update_layout(
        template="simple_white", height=height + 100 * len(sliders), font=dict(size=13),
        title=dict(text=title, x=0.0, xanchor="left", xref="paper", y=1.0, yref="container", yanchor="top",
                   pad=dict(t=36), font=dict(size=15)),  # below plotly's toolbar
        xaxis_title=x_label, yaxis_title=y_label, sliders=slider_layout,
        margin=dict(l=60, r=20, t=120, b=60 + 100 * len(sliders)), hovermode="closest",
        legend=dict(orientation="h", x=0.0, xanchor="left", y=1.02, yanchor="bottom"))
    if layout:
        figure.update_layout(**layout)
    if initial.get("layout"):
        figure.plotly_relayout(initial["layout"])  # plotly.js paths ("annotations[0].text"), as the sliders apply them
    spec = {"names": [s.name for s in sliders], "sizes": sizes, "active": active, "states": states}
    script = _SWAP_JS % {"spec": json.dumps(spec, separators=(",", ":"), allow_nan=False)}
    plot = figure.to_html(include_plotlyjs=False, full_html=False, div_id=element_id, post_script=script,
                          config={"displaylogo": False, "responsive": True})
    label = html_text.escape(caption, quote=True)
    names = ", ".join(f"{s.name} ({len(s.values)} values)" for s in sliders)
    html = (f'<figure class="kdwide-explorer" id="{element_id}-figure" aria-label="{label}">{plot}'
            f'<figcaption><span class="caption-text"><strong>Interactive figure.</strong> {html_text.escape(caption)}'
            f' Sliders: {html_text.escape(names)}.</span></figcaption></figure>')
    summary = f"Interactive figure {element_id!r} ({len(states)} states; sliders: {names}): {caption}"
    return Explorer(element_id=element_id, html=html, summary=summary, n_states=len(states))


def glue(name: str, figure: Explorer) -> None:
    """Display ``figure`` in a notebook and store it under ``name`` for other pages (MyST-NB's glue).

    Another page shows it with ``:::{glue} NAME`` and ``:doc: CHAPTER.ipynb``. This writes the output that
    ``myst_nb.glue(name, figure)`` writes (the display data with ``{"scrapbook": {"name", "mime_prefix": ""}}``
    metadata), without importing myst_nb: the chapters also run where the book tooling is not installed (the
    current-JAX environment, a GPU machine).
    """
    from IPython.display import display

    display({"text/html": figure.html, "text/plain": figure.summary}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": ""}})


def plotly_javascript() -> Path:
    """The ``plotly.min.js`` inside the installed plotly package (found without importing plotly)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("plotly is not installed; it draws the chapters' interactive figures")
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the plotly package")
    return path


def explorers_javascript() -> Path:
    """The script that gives the book's explorers keyboard controls, a live description and dark mode
    (``static/kdwide-explorers.js`` in this package; its header says what it does)."""
    return Path(__file__).resolve().parent / "static" / EXPLORERS_JS


def _serve_plotly(app: Any) -> None:
    # A folder holding plotly.min.js and the explorers' script joins html_static_path: Sphinx copies them to
    # _static/ once per site.
    folder = Path(app.doctreedir) / "kdwide-plotly"
    folder.mkdir(parents=True, exist_ok=True)
    for source in (plotly_javascript(), explorers_javascript()):
        atomic_write(folder / source.name, source.read_bytes(), fsync=False)
    app.config.html_static_path = [*app.config.html_static_path, str(folder)]


def _page_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    # Only pages with an explorer load plotly.js, in <head> and not deferred: the explorers' inline scripts call
    # Plotly when the page is parsed. The explorers' script is deferred: it runs once the page is parsed and waits
    # for each plot to be drawn. (Sphinx restores the site-wide script list before each page.)
    if _EXPLORER_MARK in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=300)
        app.add_js_file(EXPLORERS_JS, priority=310, loading_method="defer")


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension: serve plotly.js and the explorers' script once from ``_static`` and load them on the pages
    that hold an explorer."""
    app.connect("builder-inited", _serve_plotly)
    # before kdwide_book.sphinx_extension handler (priority 500), which replaces the page's script list by a de-duplicated copy
    app.connect("html-page-context", _page_scripts, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
