// The compared runs' latency over time on one chart: a line per run, x = seconds since the run's
// first request, y = p50 end-to-end latency of the requests sent in that second (the report's
// latency_timeline). Runs start at different times, so each is drawn from its own start. The
// numbers are in the table under the chart: its text alternative.

import { loadPlotly } from "./charts.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";

// Six runs at most are compared: six colours that stay apart (the theme's, then two more).
const PALETTE = [["--chart-1", "#6366f1"], ["--chart-4", "#f59e0b"], ["--chart-3", "#10b981"],
  ["--chart-bad", "#ef4444"], ["--chart-5", "#0ea5e9"], ["--chart-6", "#a855f7"]];

function timeline(run) {
  const tl = (run.report || {}).latency_timeline;
  return tl && Array.isArray(tl.t_s) && tl.t_s.length ? tl : null;
}

/** The section, or null when there are no runs; drawn when plotly has loaded. */
export function latencyOverlay(runs) {
  if (!runs.length) return null;
  const lines = runs.filter(timeline).map((run) => ({ run, tl: timeline(run) }));
  const without = runs.filter((run) => !timeline(run)).map((run) => run.id);
  const note = without.length ? h("p", { class: "subtle small", dataset: { role: "no-timeline" } },
    `Not drawn (no latency over time in the report, made before modelmeter stored it): ${without.join(", ")}`) : null;
  const head = h("div", { class: "chart-head" }, h("h2", {}, "Latency over time"),
    h("span", { class: "chart-sub" }, "p50 end-to-end latency per second, ms; x: seconds since each run's start"));
  if (!lines.length) return h("section", { class: "card run-section", dataset: { role: "latency-overlay" } }, head, note);
  const plot = h("div", { class: "plot overlay-plot", dataset: { overlay: "latency" }, "aria-hidden": "true" });
  const el = h("section", { class: "card run-section chart", dataset: { role: "latency-overlay" },
    "aria-label": "Latency over time of the compared runs" }, head, plot, note,
  h("details", { class: "numbers-toggle" }, h("summary", {}, "Numbers"),
    h("div", { class: "numbers-scroll" }, numbers(lines))));
  loadPlotly().then((Plotly) => draw(Plotly, plot, lines))
    .catch((err) => plot.replaceChildren(h("div", { class: "plot-error" }, err.message)));
  return el;
}

/** One row per second (of any run), one column per run: the chart's numbers. */
function numbers(lines) {
  const seconds = [...new Set(lines.flatMap(({ tl }) => tl.t_s))].sort((a, b) => a - b);
  const at = lines.map(({ tl }) => new Map(tl.t_s.map((t, i) => [t, [tl.p50_ms[i], tl.requests[i]]])));
  return h("table", { class: "numbers overlay-numbers" },
    h("caption", { class: "sr-only" }, "p50 end-to-end latency by second since each run's start"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Second"),
      lines.map(({ run }) => h("th", { scope: "col", class: "num", dataset: { run: run.id } }, `${run.id} p50`)))),
    h("tbody", {}, seconds.map((t) => h("tr", { dataset: { second: String(t) } }, h("th", { scope: "row" }, `${t} s`),
      at.map((m, i) => {
        const point = m.get(t);
        return h("td", { class: "num", dataset: { run: lines[i].run.id },
          title: point ? `${point[1]} request(s)` : null }, point ? fmt.ms(point[0]) : fmt.DASH);
      })))));
}

function draw(Plotly, plot, lines) {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const phone = plot.clientWidth < 500;
  const last = Math.max(...lines.map(({ tl }) => tl.t_s[tl.t_s.length - 1]));
  const pad = Math.max(last, 1) * 0.03; // a point at 0 s or at the end is not cut by the frame
  Plotly.newPlot(plot, lines.map(({ run, tl }, i) => ({
    type: "scatter", mode: tl.t_s.length > 1 ? "lines+markers" : "markers", name: run.id,
    x: tl.t_s, y: tl.p50_ms, customdata: tl.requests, line: { width: 2, color: v(...PALETTE[i % PALETTE.length]) },
    marker: { size: tl.t_s.length > 1 ? 4 : 8 }, cliponaxis: false, hovertemplate: `${run.id}<br>%{x} s: %{y:.1f} ms p50 (%{customdata} requests)<extra></extra>`,
  })), {
    margin: { l: 44, r: 8, t: 8, b: phone ? 80 : 36 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { size: 11, color: v("--muted", "#6b7280") },
    xaxis: { title: { text: "seconds since the run's start" }, ticksuffix: " s", range: [-pad, Math.max(last, 1) + pad],
      dtick: Math.max(1, Math.ceil(last / (phone ? 4 : 10))), // whole seconds: the points are per second
      gridcolor: v("--chart-grid", "#f0f0f2"), zeroline: false },
    yaxis: { ticksuffix: " ms", rangemode: "tozero", gridcolor: v("--chart-grid", "#f0f0f2") },
    showlegend: true, legend: phone ? { orientation: "h", x: 0, y: -0.3 } : { orientation: "v" },
  }, { displayModeBar: false, responsive: true });
}
