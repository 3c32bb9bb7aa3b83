// "More insights" under the charts: the latency and time-to-first-token distributions, output
// speed and errors by type over time (GET …/usage/distribution, …/throughput, …/errors, from
// rollups), the cost, cache, retries and reasoning panels (panels.js) and the breakdown by call
// type. Closed, it costs nothing (a refresh makes no more API calls); open (?insights=1), each
// refresh adds its eight.

import { api } from "./api.js";
import { Breakdown } from "./breakdown.js";
import { colors, DATE_AXIS_AUTOMARGIN, dateMargin, loadPlotly, withValues } from "./charts.js";
import { h, replace, skeleton } from "./dom.js";
import * as fmt from "./format.js";
import { CostPanels } from "./panels.js";
import { axisTicks } from "./ticks.js";

const PANELS = [
  { key: "latency", title: "Latency distribution", source: "distribution" },
  { key: "ttft", title: "Time to first token", source: "distribution" },
  { key: "speed", title: "Output speed", source: "throughput" },
  { key: "errors", title: "Errors by type", source: "errors" },
];
const ERROR_LABELS = { client: "Client 4xx", rate_limited: "Rate-limited 429", hangup: "Client hang-up",
  timeout: "Timeout", upstream: "Upstream 5xx", other: "Other" };

export class InsightPanels {
  /** `onToggle(open)`: the disclosure was opened or closed (the tab keeps it in the URL);
   * `onOpen(filters)`: a breakdown row was chosen (the log, filtered to it); `ready`: the cards and
   * log have painted (plotly's first run is a long task: it must not hold them back, see Charts). */
  constructor(name, onToggle, onOpen, ready = Promise.resolve()) {
    this.breakdown = new Breakdown(name, onOpen);
    this.costs = new CostPanels(name, ready);
    this.ready = ready;
    this.name = name;
    this.seq = 0;
    this.data = {};
    this.parts = {};
    this.details = h("details", { class: "insights", ontoggle: () => onToggle(this.details.open) },
      h("summary", { class: "insights-summary" }, h("span", { class: "card-title" }, "More insights"),
        h("span", { class: "subtle" }, " · distributions, output speed, errors, cost, caching, retries, reasoning")),
      h("div", { class: "insight-grid" }, PANELS.map(({ key, title }) => {
        const stats = h("span", { class: "chart-sub", dataset: { role: "stats" } });
        const plot = h("div", { class: "plot", dataset: { insight: key }, "aria-hidden": "true" }, skeleton("plot-skeleton"));
        const table = h("table", { class: "numbers" });
        this.parts[key] = { stats, plot, table };
        return h("section", { class: "card chart insight", dataset: { panel: key } },
          h("div", { class: "chart-head" }, h("h3", {}, h("span", { class: "card-title" }, title), stats)),
          plot,
          h("details", { class: "numbers-toggle" }, h("summary", {}, "Numbers"),
            h("div", { class: "numbers-scroll" }, table)));
      }), this.costs.sections, this.breakdown.el));
    this.el = this.details;
    this.scheme = window.matchMedia("(prefers-color-scheme: dark)");
    this.recolor = () => window.Plotly && (this.draw(window.Plotly), this.costs.draw(window.Plotly));
    this.scheme.addEventListener("change", this.recolor);
  }

  get open() {
    return this.details.open;
  }

  setOpen(open) {
    this.details.open = open;
  }

  /** Load both endpoints for the tab's window (query params as the usage API takes them). */
  async load(params) {
    const seq = ++this.seq;
    const [dist, speed, errors] = await Promise.all([
      api.distribution(this.name, params), api.throughput(this.name, params), api.errors(this.name, params),
      this.breakdown.load(params), this.costs.load(params)]);
    if (seq !== this.seq) return;
    this.data = { dist, speed, errors };
    this.tables();
    await this.ready;
    const Plotly = await loadPlotly();
    if (seq === this.seq) this.draw(Plotly);
  }

  tables() {
    const { dist, speed } = this.data;
    for (const key of ["latency", "ttft"]) {
      const d = dist[key];
      const { stats, table } = this.parts[key];
      stats.textContent = d.count
        ? ` · p50 ${fmt.ms(d.p50_ms)} · p95 ${fmt.ms(d.p95_ms)} · p99 ${fmt.ms(d.p99_ms)}` : " · no requests";
      for (const q of ["p50", "p95", "p99"]) stats.dataset[q] = d[`${q}_ms`] ?? "";
      replace(table, h("caption", { class: "sr-only" }, `${key === "ttft" ? "Time to first token" : "Latency"}: requests per range`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "From"), h("th", { scope: "col" }, "To"),
          h("th", { scope: "col" }, "Requests"))),
        h("tbody", {}, d.bars.map((b) => h("tr", { dataset: { count: b.count } },
          h("td", { class: "num" }, fmt.ms(b.low_ms)), h("td", { class: "num" }, fmt.ms(b.high_ms)),
          h("td", { class: "num" }, fmt.int(b.count))))));
    }
    const { stats, table } = this.parts.speed;
    const total = speed.buckets.reduce((a, b) => ({ t: a.t + b.completion_tokens, s: a.s + b.request_seconds }), { t: 0, s: 0 });
    stats.textContent = total.s > 0 ? ` · ${fmt.int(Math.round(total.t / total.s))} tokens/s overall` : " · no requests";
    const rows = speed.buckets.filter((b) => b.requests);
    replace(table, h("caption", { class: "sr-only" }, "Output speed per time bucket"),
      h("thead", {}, h("tr", {}, ["Time", "Requests", "Output tokens", "Tokens/s", "ms/token"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((b) => h("tr", { dataset: { start: b.start } },
        h("td", {}, fmt.dateTime(b.start)), h("td", { class: "num" }, fmt.int(b.requests)),
        h("td", { class: "num" }, fmt.int(b.completion_tokens)),
        h("td", { class: "num" }, b.output_tokens_per_s == null ? fmt.DASH : b.output_tokens_per_s.toFixed(1)),
        h("td", { class: "num" }, b.ms_per_output_token == null ? fmt.DASH : b.ms_per_output_token.toFixed(1))))));
    this.errorTable();
  }

  errorTable() {
    const { errors } = this.data;
    const { stats, table } = this.parts.errors;
    const total = Object.values(errors.totals).reduce((a, b) => a + b, 0);
    stats.textContent = total ? ` · ${fmt.int(total)} failed` : " · no errors";
    const classes = errors.classes;
    const rows = errors.buckets.filter((b) => b.errors);
    replace(table, h("caption", { class: "sr-only" }, "Failed requests by type per time bucket"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"),
        classes.map((c) => h("th", { scope: "col", class: "num" }, ERROR_LABELS[c] || c)))),
      h("tbody", {}, rows.map((b) => h("tr", { dataset: { start: b.start } }, h("td", {}, fmt.dateTime(b.start)),
        classes.map((c) => h("td", { class: "num", dataset: { class: c } }, fmt.int(b[c])))))),
      h("tfoot", {}, h("tr", { dataset: { role: "totals" } }, h("th", { scope: "row" }, "Total"),
        classes.map((c) => h("td", { class: "num", dataset: { class: c } }, fmt.int(errors.totals[c]))))));
  }

  draw(Plotly) {
    const { dist, speed, errors } = this.data;
    if (!dist) return;
    const c = colors();
    // The margins automargin settles on for these axes (dateMargin: the top tick label's overhang,
    // the bucket and date labels): asked for less, plotly draws each plot a second time with the
    // grown margins. The same right margin as the charts' keeps the tab's plot areas aligned.
    const base = (plot) => ({
      height: 190, margin: dateMargin(c.font), bargap: 0.08, showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { family: c.font, size: 11, color: c.text },
      hoverlabel: { bgcolor: c.hover, bordercolor: c.line, font: { color: c.fg, family: c.font, size: 12 } },
      xaxis: { showgrid: false, linecolor: c.line, fixedrange: true, automargin: true,
        nticks: Math.max(3, Math.min(8, Math.floor((plot.clientWidth || 600) / 90))) },
    });
    for (const key of ["latency", "ttft"]) {
      const { plot } = this.parts[key];
      const bars = dist[key].bars;
      const x = bars.map((b) => fmt.ms(b.low_ms));
      const y = bars.map((b) => b.count);
      const layout = base(plot);
      layout.xaxis.type = "category";
      layout.yaxis = { gridcolor: c.grid, zeroline: false, fixedrange: true, automargin: true, tickmode: "array",
        autorange: false, ...axisTicks(Math.max(0, ...y), "count") };
      this.plot(Plotly, plot, [{ type: "bar", x, y, marker: { color: key === "ttft" ? c.c4 : c.c1 },
        customdata: bars.map((b) => `${fmt.ms(b.low_ms)} – ${fmt.ms(b.high_ms)}: ${fmt.int(b.count)}`),
        hovertemplate: "%{customdata}<extra></extra>" }], layout);
    }
    const { plot } = this.parts.speed;
    const x = speed.buckets.map((b) => fmt.wallClock(b.start));
    const y = speed.buckets.map((b) => b.output_tokens_per_s);
    const layout = base(plot);
    Object.assign(layout.xaxis, { type: "date", automargin: DATE_AXIS_AUTOMARGIN,
      range: [fmt.wallClock(speed.start), fmt.wallClock(speed.end)] });
    layout.yaxis = { gridcolor: c.grid, zeroline: false, fixedrange: true, automargin: true, tickmode: "array",
      autorange: false, ...axisTicks(Math.max(0, ...y.filter((v) => v != null)), "count") };
    this.plot(Plotly, plot, [{ type: "scatter", mode: "lines+markers", x, y, connectgaps: false,
      line: { color: c.c3, width: 2 }, marker: { size: 5, color: c.c3 },
      customdata: y.map((v) => (v == null ? fmt.DASH : `${v.toFixed(1)} tokens/s`)),
      hovertemplate: "%{customdata}<extra></extra>" }], layout);
    this.drawErrors(Plotly, errors, c, base);
  }

  drawErrors(Plotly, errors, c, base) {
    const { plot } = this.parts.errors;
    const x = errors.buckets.map((b) => fmt.wallClock(b.start));
    const palette = { client: c.c4, rate_limited: c.c2, hangup: c.text, timeout: c.c3, upstream: c.bad, other: c.c1 };
    const traces = errors.classes.map((cls) => ({
      type: "bar", name: ERROR_LABELS[cls] || cls, x, y: errors.buckets.map((b) => b[cls]),
      marker: { color: palette[cls] }, hovertemplate: `%{y}<extra>${ERROR_LABELS[cls] || cls}</extra>`,
    }));
    const layout = base(plot);
    Object.assign(layout, { barmode: "stack", hovermode: "x unified" });
    Object.assign(layout.xaxis, { type: "date", automargin: DATE_AXIS_AUTOMARGIN,
      range: [fmt.wallClock(errors.start), fmt.wallClock(errors.end)] });
    layout.yaxis = { gridcolor: c.grid, zeroline: false, fixedrange: true, automargin: true, tickmode: "array",
      autorange: false, ...axisTicks(Math.max(0, ...errors.buckets.map((b) => b.errors)), "count") };
    this.plot(Plotly, plot, withValues(traces), layout);
  }

  plot(Plotly, el, traces, layout) {
    if (!el.classList.contains("js-plotly-plot")) el.replaceChildren();
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  }

  destroy() {
    this.seq += 1;
    this.costs.destroy();
    this.scheme.removeEventListener("change", this.recolor);
    if (window.Plotly) for (const { plot } of Object.values(this.parts)) window.Plotly.purge(plot);
  }
}
