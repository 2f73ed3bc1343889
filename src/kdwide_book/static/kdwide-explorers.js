/* The book's explorers for every reader (kdwide_book.explorers serves this file to the pages with an explorer).
 *
 * An explorer's stored HTML is a plotly figure with plotly's own SVG sliders and legend, which work with a mouse
 * (and in a notebook, where this file is absent). In the book this script replaces them, once the plot is drawn, by
 * HTML controls that every reader can use:
 * - each slider becomes a native <input type="range"> with a <label> and an <output>: Tab reaches it, arrow keys,
 *   Home/End and PageUp/PageDown move it, a screen reader announces "ρ = 0.5" (aria-valuetext);
 * - the legend becomes a group of toggle buttons (aria-pressed) with the curves' colour and dash;
 * - the plot title (which some explorers change with the state) moves above the plot as text that wraps on phones;
 * - a live region (aria-live="polite") describes the current state: the slider values, the title, the range of
 *   every curve shown;
 * - the figure follows the theme's colour mode (light/dark) and switches when the reader toggles it.
 * A slider moves the data through the explorer's own handler: this script emits the event plotly's slider emits
 * ("plotly_sliderchange" with the slider's name and the step's index), so stored outputs need no change.
 */
(function () {
  "use strict";

  var DARK = {font: "#e6e6e6", axis: "#c8c8c8", grid: "#4a4a4a", ink: "#f2f2f2"};
  var BLACK = /^(black|#000|#000000|rgb\(0, ?0, ?0\))$/i;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function plainText(markup) {
    var holder = document.createElement("div");
    holder.innerHTML = String(markup || "").replace(/<br\s*\/?>/gi, " ");
    return holder.textContent.replace(/\s+/g, " ").trim();
  }

  function isDark() { return document.documentElement.getAttribute("data-theme") === "dark"; }

  function rounded(value) { return Number(Number(value).toPrecision(3)).toString(); }

  function numbers(values) {
    var flat = [];
    (function walk(v) {
      if (v === null || v === undefined) { return; }
      if (typeof v === "object" && "length" in v) { for (var i = 0; i < v.length; i++) { walk(v[i]); } }
      else if (typeof v === "number" && isFinite(v)) { flat.push(v); }
    })(values);
    return flat;
  }

  function traceSummary(trace, plot) {
    var name = plainText(trace.name) || trace.type;
    var axis = plot._fullLayout["yaxis" + String(trace.yaxis || "y").slice(1)];
    var axisTitle = axis && axis.title && plainText(axis.title.text);
    if (axisTitle && plot._fullLayout.yaxis2) { name = axisTitle + ", " + name; }  // several panels: say which
    var values = numbers(trace.type === "heatmap" ? trace.z : trace.y);
    if (!values.length) { return ""; }
    var xs = numbers(trace.x);
    if (values.length === 1 && xs.length === 1) { return name + " at (" + rounded(xs[0]) + ", " + rounded(values[0]) + ")"; }
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
    return name + " from " + rounded(low) + " to " + rounded(high);
  }

  function describe(explorer) {
    var plot = explorer.plot, parts = [];
    var values = explorer.sliders.map(function (s) { return s.name + " = " + s.output.textContent; });
    parts.push("Showing " + values.join(", ") + ".");
    var title = plainText(plot.layout.title && (plot.layout.title.text !== undefined ? plot.layout.title.text : plot.layout.title));
    explorer.title.textContent = title;
    explorer.title.hidden = !title;
    if (title) { parts.push(title + "."); }
    (plot.layout.annotations || []).forEach(function (note) { if (plainText(note.text)) { parts.push(plainText(note.text) + "."); } });
    var shown = (plot.data || []).filter(function (t) { return t.visible !== "legendonly" && t.visible !== false; });
    var summaries = shown.map(function (trace) { return traceSummary(trace, plot); }).filter(Boolean).slice(0, 6);
    if (summaries.length) { parts.push(summaries.join("; ") + "."); }
    explorer.status.textContent = parts.join(" ");
  }

  function sliderControl(explorer, slider, index) {
    var id = explorer.plot.id + "-slider-" + index;
    var row = element("div", "kdwide-control");
    var label = element("label", "kdwide-control-label", slider.name);
    label.setAttribute("for", id);
    var input = element("input", "kdwide-range");
    input.type = "range"; input.id = id; input.min = "0"; input.max = String(slider.steps.length - 1); input.step = "1";
    input.value = String(slider.active || 0);
    var output = element("output", "kdwide-control-value");
    output.setAttribute("for", id);
    output.setAttribute("aria-hidden", "true");  // the range's aria-valuetext announces the value
    var ends = element("span", "kdwide-control-ends",
                       slider.steps[0].label + " … " + slider.steps[slider.steps.length - 1].label);
    ends.setAttribute("aria-hidden", "true");
    var control = {name: slider.name, input: input, output: output};
    function sync() {
      output.textContent = slider.steps[Number(input.value)].label;
      input.setAttribute("aria-valuetext", slider.name + " = " + output.textContent);
    }
    input.addEventListener("input", function () {
      sync();
      var step = slider.steps[Number(input.value)];
      explorer.plot.emit("plotly_sliderchange", {slider: {name: slider.name}, step: {_index: Number(input.value), label: step.label},
                                                 interaction: true});
      describe(explorer);
    });
    sync();
    var track = element("div", "kdwide-control-track");
    track.append(input, ends);
    row.append(label, track, output);
    return {row: row, control: control};
  }

  function legendGroups(plot) {
    var groups = [], byKey = {};
    plot._fullData.forEach(function (trace, index) {
      var key = trace.legendgroup || ("trace-" + index);
      if (!byKey[key]) {
        if (!trace.showlegend || !plainText(trace.name)) { return; }
        var input = plot.data[trace.index] || {};  // plotly leaves mode unset in _fullData for an empty trace
        byKey[key] = {name: plainText(trace.name), indices: [], line: trace.line || input.line || {},
                      marker: input.marker || trace.marker || {},
                      lines: trace.type !== "scatter" || String(input.mode || trace.mode || "lines").indexOf("lines") >= 0};
        groups.push(byKey[key]);
      }
      byKey[key].indices.push(trace.index);
    });
    return groups;
  }

  function legendControls(explorer) {
    var plot = explorer.plot, groups = legendGroups(plot);
    if (!plot._fullLayout.showlegend || !groups.length) { return null; }
    var box = element("div", "kdwide-legend");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Curves (press to hide or show)");
    groups.forEach(function (group) {
      var button = element("button", "kdwide-legend-item");
      button.type = "button";
      button.setAttribute("aria-pressed", plot.data[group.indices[0]].visible === "legendonly" ? "false" : "true");
      var swatch = element("span", "kdwide-swatch");
      swatch.setAttribute("aria-hidden", "true");
      var colour = group.lines && typeof group.line.color === "string" ? group.line.color : group.marker.color;
      if (!group.lines) {  // a marker-only trace (e.g. a flip point): a dot of its colour, not a line
        swatch.classList.add("kdwide-swatch-marker");
        if (typeof colour === "string") { swatch.style.backgroundColor = colour; }
      } else {
        if (typeof colour === "string") { swatch.style.borderTopColor = colour; }
        var dash = group.line.dash || "solid";
        swatch.style.borderTopStyle = dash === "dot" ? "dotted" : (dash === "solid" ? "solid" : "dashed");
      }
      button.append(swatch, element("span", "", group.name));
      button.addEventListener("click", function () {
        var visible = button.getAttribute("aria-pressed") !== "true";
        button.setAttribute("aria-pressed", String(visible));
        Plotly.restyle(plot, {visible: visible ? true : "legendonly"}, group.indices);
        describe(explorer);
      });
      box.append(button);
    });
    return box;
  }

  function axisNames(plot) {
    return Object.keys(plot._fullLayout).filter(function (key) { return /^[xy]axis\d*$/.test(key); });
  }

  function themeLayout(explorer) {
    var plot = explorer.plot, dark = isDark(), light = explorer.light, update = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", "font.color": dark ? DARK.font : light.font};
    axisNames(plot).forEach(function (axis) {
      ["linecolor", "tickcolor", "zerolinecolor", "gridcolor"].forEach(function (property) {
        update[axis + "." + property] = dark ? (property === "gridcolor" ? DARK.grid : DARK.axis) : light[axis + "." + property];
      });
    });
    return update;
  }

  function applyTheme(explorer) {
    var plot = explorer.plot, dark = isDark();
    Plotly.relayout(plot, themeLayout(explorer));
    explorer.inked.forEach(function (ink) {
      var update = {};
      update[ink.property] = dark ? DARK.ink : ink.colour;
      Plotly.restyle(plot, update, [ink.index]);
    });
  }

  function rememberLight(plot) {
    var light = {font: plot._fullLayout.font.color};
    axisNames(plot).forEach(function (axis) {
      ["linecolor", "tickcolor", "zerolinecolor", "gridcolor"].forEach(function (property) {
        light[axis + "." + property] = plot._fullLayout[axis][property];
      });
    });
    var inked = [];
    (plot.data || []).forEach(function (trace, index) {
      [["line", "line.color"], ["marker", "marker.color"]].forEach(function (pair) {
        var colour = trace[pair[0]] && trace[pair[0]].color;
        if (typeof colour === "string" && BLACK.test(colour)) { inked.push({index: index, property: pair[1], colour: colour}); }
      });
    });
    return {light: light, inked: inked};
  }

  function compactLayout(plot, sliderCount) {
    // plotly's sliders, legend and title leave the SVG: give their room back to the plot
    var layout = plot._fullLayout, update = {sliders: [], showlegend: false, "margin.t": 24};
    var freed = Math.max(0, layout.margin.t - 24) + Math.max(0, layout.margin.b - 60);
    update["margin.b"] = Math.min(layout.margin.b, 60);
    if (plot.layout.height) { update.height = Math.max(280, plot.layout.height - freed); }
    return update;
  }

  function fitWidth(explorer) {
    var narrow = explorer.plot.clientWidth < 560;
    if (narrow === explorer.narrow) { return; }
    explorer.narrow = narrow;
    var update = {"margin.l": narrow ? 52 : explorer.margin.l, "margin.r": narrow ? 12 : explorer.margin.r,
                  "font.size": narrow ? 11 : explorer.fontSize};
    axisNames(explorer.plot).forEach(function (axis) { update[axis + ".nticks"] = narrow ? 5 : 0; });
    Plotly.relayout(explorer.plot, update);
  }

  function upgrade(figure) {
    var plot = figure.querySelector(".plotly-graph-div");
    if (!plot || figure.classList.contains("kdwide-ready")) { return true; }
    if (!plot._fullLayout || !plot._fullData || typeof plot.emit !== "function") { return false; }
    figure.classList.add("kdwide-ready");
    var remembered = rememberLight(plot);
    var explorer = {plot: plot, sliders: [], light: remembered.light, inked: remembered.inked, narrow: null,
                    margin: {l: plot._fullLayout.margin.l, r: plot._fullLayout.margin.r},
                    fontSize: plot._fullLayout.font.size,
                    title: element("p", "kdwide-explorer-title"), status: element("p", "kdwide-explorer-status")};
    explorer.status.setAttribute("aria-live", "polite");
    explorer.status.id = plot.id + "-status";
    var controls = element("div", "kdwide-controls");
    controls.setAttribute("role", "group");
    controls.setAttribute("aria-label", "Sliders of the interactive figure");
    (plot.layout.sliders || []).forEach(function (slider, index) {
      var made = sliderControl(explorer, slider, index);
      explorer.sliders.push(made.control);
      made.control.input.setAttribute("aria-describedby", explorer.status.id);
      controls.append(made.row);
    });
    var legend = legendControls(explorer);
    plot.before(explorer.title);
    plot.after(controls);
    if (legend) { plot.after(legend); }
    controls.after(explorer.status);
    var compact = compactLayout(plot, explorer.sliders.length);
    if (compact.height) { plot.style.height = compact.height + "px"; }  // the stored div has the old height inline
    Plotly.relayout(plot, compact);
    applyTheme(explorer);
    fitWidth(explorer);
    describe(explorer);
    new MutationObserver(function () { applyTheme(explorer); })
      .observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { fitWidth(explorer); }, 150);
    });
    return true;
  }

  function upgradeAll(attempt) {
    var waiting = Array.prototype.filter.call(document.querySelectorAll("figure.kdwide-explorer"),
                                              function (figure) { return !upgrade(figure); });
    if (waiting.length && attempt < 200) { setTimeout(function () { upgradeAll(attempt + 1); }, 50); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { upgradeAll(0); });
  } else {
    upgradeAll(0);
  }
})();
