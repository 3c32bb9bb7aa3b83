// A run's latency distributions (TTFT and end-to-end), as histograms from the bins its report
// stores: the shape of the tail, which p50 and p99 alone hide.

import { loadPlotly } from "./charts.js";
import { h } from "./dom.js";

const SERIES = [["ttft", "TTFT"], ["e2e", "End-to-end latency"]];

export function histograms(report) {
  const hist = report.histograms_ms;
  if (!hist) return null;
  const shown = SERIES.filter(([key]) => hist[key] && hist[key].counts.length);
  if (!shown.length) return null;
  const plots = shown.map(([key, title]) => {
    const plot = h("div", { class: "plot", dataset: { hist: key } });
    return { key, title, plot, el: h("div", { class: "card chart" }, h("div", { class: "chart-head" },
      h("strong", {}, title), h("span", { class: "chart-sub" }, "requests per bin, ms")), plot) };
  });
  const el = h("section", { class: "charts run-charts", "aria-label": "Latency distributions" }, plots.map((p) => p.el));
  loadPlotly().then((Plotly) => {
    const css = getComputedStyle(document.documentElement);
    for (const { key, plot } of plots) {
      const { edges, counts } = hist[key];
      const mids = counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
      Plotly.newPlot(plot, [{ type: "bar", x: mids, y: counts, width: edges[1] - edges[0] || 1,
        marker: { color: css.getPropertyValue("--chart-1").trim() || "#6366f1" },
        hovertemplate: "%{x:.1f} ms: %{y} requests<extra></extra>" }],
      { margin: { l: 36, r: 8, t: 8, b: 32 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        bargap: 0.05, xaxis: { ticksuffix: " ms", gridcolor: css.getPropertyValue("--chart-grid").trim() },
        yaxis: { rangemode: "tozero", gridcolor: css.getPropertyValue("--chart-grid").trim() },
        font: { size: 11 } }, { displayModeBar: false, responsive: true });
    }
  }).catch((err) => {
    for (const { plot } of plots) plot.replaceChildren(h("div", { class: "plot-error" }, err.message));
  });
  return el;
}
