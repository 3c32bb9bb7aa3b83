// The charts of a window: requests and errors, tokens, spend, latency (average and p95), with a
// vertical marker where an alert rule on this deployment (or a global one) fired or resolved.
// Plotly comes from the installed Python package, served by this server (works offline).

import { h, skeleton } from "./dom.js";
import * as fmt from "./format.js";
import { axisTicks } from "./ticks.js";

const PLOTLY = "/static/vendor/plotly.min.js";
let loading = null;

/** Start downloading plotly without running it (running it is a long task: see Charts). */
export function preloadPlotly() {
  if (window.Plotly || loading || document.querySelector(`link[href="${PLOTLY}"]`)) return;
  document.head.append(h("link", { rel: "preload", as: "script", href: PLOTLY }));
}

/** Run plotly ahead of need, from a page that links to the charts (the Models page): once that
 *  page has shown its data and stayed ``afterMs`` without the user leaving, in an idle moment.
 *  Plotly's first run is a long task (~0.6 s on a quiet 2-core machine, mostly compiling its
 *  functions); taken here, the first Usage tab a user opens from the list draws its plots without
 *  it. Returns a function that cancels it (the page was left first). */
export function warmPlotly(afterMs = 1500) {
  if (window.Plotly || loading) return () => {};
  const idle = "requestIdleCallback" in window;
  let pending = null;
  const timer = setTimeout(() => {
    const run = () => loadPlotly().catch(() => {}); // (a failure is shown where a chart is drawn)
    pending = idle ? requestIdleCallback(run, { timeout: 2000 }) : setTimeout(run, 0);
  }, afterMs);
  return () => {
    clearTimeout(timer);
    if (pending === null) return;
    if (idle) cancelIdleCallback(pending);
    else clearTimeout(pending);
  };
}

/** Load plotly once, on demand (4.8 MB: only the pages with charts need it). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        loading = null;
        reject(new Error("the chart library could not be loaded"));
      };
      document.head.append(script);
    });
  }
  return loading;
}

const CHARTS = [
  { key: "requests", title: "Requests", legend: [["c1", "Success"], ["bad", "Errors"]] },
  { key: "tokens", title: "Tokens", legend: [["c1", "Input"], ["c2", "Output"]] },
  { key: "spend", title: "Spend", legend: [["c3", "Spend"]] },
  { key: "latency", title: "Latency", legend: [["c1", "Average"], ["c4", "p95"]] },
];

/** The stacked bar traces that have a value in the window. One that is zero throughout (a class of
 *  error that did not happen, a cost component the model does not bill) would draw a zero-height bar
 *  per bucket, hundreds of invisible paths, and a "0" line in every hover: left out of the plot (the
 *  panel's table keeps its column). */
export function withValues(traces) {
  return traces.filter((t) => t.y.some((v) => v));
}

/** A date x axis's automargin: its labels may push the bottom margin only. Where the last tick
 *  lands depends on the hour (the window ends now), and a label closer to the plot's right end than
 *  half its width ("00:00" over "Dec 7, 2026") overhangs it: with automargin on every side, at some
 *  hours plotly grew the right margin and drew the whole plot a second time. */
export const DATE_AXIS_AUTOMARGIN = "height";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const rightRoom = new Map();

/** The margins of a 190 px plot with a date x axis. On the right, half the widest label line
 *  plotly's date axes print (the day under a tick, "Sep 30, 2026"), measured in the plot's 11 px
 *  font (any year: its digits are about as wide, 2 px to spare): a last tick at the very end of the
 *  range still has its label drawn whole (with less, plotly hides a label that would overflow the
 *  plot's div: the last one, at some hours of the day). Plotly pads each
 *  automargin push by min(12, the four margins): with this right margin the pad is 12, not 8, so
 *  the top y label's overhang needs t 18 and the two-line date labels b 44. `lines` 1: the
 *  charts' labels, one line in a set tickformat and no automargin on x, fit in b 28. The same right
 *  margin for all keeps the charts' and the panels' plot areas aligned in the tab's columns. */
export function dateMargin(font, lines = 2) {
  if (!rightRoom.has(font)) {
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = `11px ${font}`;
    const widest = Math.max(...MONTHS.map((m) => ctx.measureText(`${m} 30, 2026`).width));
    rightRoom.set(font, Math.max(12, Math.ceil(widest / 2) + 2));
  }
  return { l: 52, r: rightRoom.get(font), t: 18, b: lines === 2 ? 44 : 28 };
}

export function colors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { c1: v("--chart-1"), c2: v("--chart-2"), c3: v("--chart-3"), c4: v("--chart-4"),
    bad: v("--chart-bad"), ok: v("--good"), grid: v("--chart-grid"), text: v("--muted"), font: v("--font-sans"),
    line: v("--border"), hover: v("--surface"), fg: v("--fg") };
}

/** Alert changes as dotted vertical lines (red: fired, green: resolved), and a pin at the top of
 *  each line that carries the hover text (Plotly shapes have none). */
function alertMarks(events, s, c) {
  const t0 = Date.parse(s.start);
  const t1 = Date.parse(s.end);
  const shown = events.filter((e) => Date.parse(e.at) >= t0 && Date.parse(e.at) < t1);
  // To the millisecond (wallClock stops at the second); milliseconds are the same in every zone.
  const ms = (iso) => String(new Date(iso).getUTCMilliseconds()).padStart(3, "0");
  const x = shown.map((e) => `${fmt.wallClock(e.at)}.${ms(e.at)}`);
  const color = (e) => (e.status === "firing" ? c.bad : c.ok);
  const shapes = shown.map((e, i) => ({
    type: "line", xref: "x", yref: "paper", x0: x[i], x1: x[i], y0: 0, y1: 1, layer: "above",
    line: { color: color(e), width: 1.5, dash: "dot" }, name: `alert-${e.status}`,
  }));
  const text = shown.map((e) => `${e.status === "firing" ? "Alert fired" : "Alert resolved"}: ${e.rule}`
    + `${e.deleted ? " (deleted rule)" : ""} (${fmt.time(e.at)})`);
  const pins = (top) => ({
    type: "scatter", mode: "markers", name: "Alerts", x, y: x.map(() => top), cliponaxis: false,
    marker: { symbol: "triangle-down", size: 9, color: shown.map(color) },
    customdata: text, hovertemplate: "%{customdata}<extra></extra>", meta: "alerts",
  });
  return { events: shown, shapes, pins };
}

export class Charts {
  /**
   * `ready`: a promise of the first paint of the numbers and the log. Plotly's first run is a
   * long task (compiling 4.8 MB; the browser caches the compiled code for later visits), so it
   * waits until the rest of the tab is on screen and usable.
   */
  constructor(ready = Promise.resolve(), keys = null) {
    this.ready = ready;
    this.series = null;
    this.events = [];
    this.floor = {}; // the least top of a chart's axis (the compare view: both sides on one scale)
    this.plots = {};
    this.sub = {};
    this.timer = null;
    // `keys`: only these charts (e.g. the compare view's requests and latency); all four by default.
    const shown = CHARTS.filter((c) => !keys || keys.includes(c.key));
    this.el = h("section", { class: "charts", "aria-label": "Charts" }, shown.map(({ key, title, legend }) => {
      this.plots[key] = h("div", { class: "plot", dataset: { chart: key } }, skeleton("plot-skeleton"));
      this.sub[key] = h("span", { class: "chart-sub" });
      return h("div", { class: "card chart" },
        h("div", { class: "chart-head" },
          h("div", {}, h("span", { class: "card-title" }, title), this.sub[key]),
          h("div", { class: "legend" }, legend.map(([c, label]) =>
            h("span", { class: "legend-item" }, h("span", { class: `swatch swatch-${c}` }), label)))),
        this.plots[key]);
    }));
    preloadPlotly();
    this.scheme = window.matchMedia("(prefers-color-scheme: dark)");
    this.recolor = () => window.Plotly && this.series && this.draw(window.Plotly);
    this.scheme.addEventListener("change", this.recolor);
  }

  loading() {
    for (const plot of Object.values(this.plots)) {
      if (!plot.classList.contains("js-plotly-plot")) plot.replaceChildren(skeleton("plot-skeleton"));
    }
  }

  /** `events`: the window's alert changes ({rule, status, at, value, unit}), from /api/alerts/marks. */
  async render(series, events = []) {
    this.series = structuredClone(series);
    this.events = events;
    let Plotly;
    try {
      await this.ready;
      Plotly = await loadPlotly();
    } catch (err) {
      for (const plot of Object.values(this.plots)) {
        plot.replaceChildren(h("div", { class: "plot-error" }, `Charts unavailable: ${err.message}`));
      }
      return;
    }
    if (this.series !== null) this.draw(Plotly);
  }

  draw(Plotly) {
    const s = this.series;
    const c = colors();
    const x = s.buckets.map((b) => fmt.wallClock(b.start));
    const per = `per ${fmt.duration(s.bucket_seconds)}`;
    const spanDays = (Date.parse(s.end) - Date.parse(s.start)) / 86400_000;
    for (const key of Object.keys(this.sub)) this.sub[key].textContent = ` · ${per}`;
    const col = (f) => s.buckets.map(f);
    const bar = (name, y, color, text) => ({
      type: "bar", name, x, y, marker: { color }, customdata: text,
      hovertemplate: `%{customdata}<extra>${name}</extra>`,
    });
    const line = (name, y, color, dash) => ({
      type: "scatter", mode: "lines+markers", name, x, y,
      connectgaps: false, line: { color, width: 2, dash, shape: "linear" },
      marker: { size: y.filter((v) => v != null).length > 40 ? 3 : 6, color },
      customdata: y.map((v) => fmt.ms(v)), hovertemplate: `%{customdata}<extra>${name}</extra>`,
    });
    const ok = col((b) => b.requests - b.errors);
    const errs = col((b) => b.errors);
    const traces = {
      requests: [bar("Success", ok, c.c1, ok.map(fmt.int)), bar("Errors", errs, c.bad, errs.map(fmt.int))],
      tokens: [
        bar("Input", col((b) => b.prompt_tokens), c.c1, col((b) => fmt.int(b.prompt_tokens))),
        bar("Output", col((b) => b.completion_tokens), c.c2, col((b) => fmt.int(b.completion_tokens))),
      ],
      spend: [bar("Spend", col((b) => b.spend), c.c3, col((b) => fmt.usd(b.spend)))],
      latency: [
        line("Average", col((b) => b.avg_latency_ms), c.c1, "solid"),
        line("p95", col((b) => b.p95_latency_ms), c.c4, "dot"),
      ],
    };
    // The top of each chart: stacked bars add up; the latency lines do not.
    const top = (rows) => Math.max(0, ...rows.filter((v) => v != null));
    const stacked = (ts) => top(ts[0].y.map((v, i) => ts.reduce((sum, t) => sum + (t.y[i] || 0), 0)));
    const axes = {
      requests: axisTicks(Math.max(stacked(traces.requests), this.floor.requests || 0), "count"),
      tokens: axisTicks(stacked(traces.tokens), "count"),
      spend: axisTicks(stacked(traces.spend), "usd"),
      latency: axisTicks(Math.max(top(traces.latency.flatMap((t) => t.y)), this.floor.latency || 0), "ms"),
    };
    const marks = alertMarks(this.events, s, c);
    for (const [key, plot] of Object.entries(this.plots)) {
      // The margins automargin settles on for the y axis (the top tick label's overhang): asked for
      // less, plotly draws each plot a second time with the grown margins. The right one leaves
      // the last date label room at any hour (dateMargin).
      const layout = {
        height: 190, margin: dateMargin(c.font, 1), barmode: "stack", bargap: 0.2,
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", showlegend: false,
        font: { family: c.font, size: 11, color: c.text }, hovermode: "x unified",
        hoverlabel: { bgcolor: c.hover, bordercolor: c.line, font: { color: c.fg, family: c.font, size: 12 } },
        xaxis: { type: "date", range: [fmt.wallClock(s.start), fmt.wallClock(s.end)], showgrid: false,
          linecolor: c.line, ticks: "", fixedrange: true, hoverformat: "%b %-d, %H:%M",
          nticks: Math.max(3, Math.min(8, Math.floor((plot.clientWidth || 600) / 90))),
          tickformat: s.bucket_seconds < 3600 || spanDays <= 1 ? "%H:%M" : "%b %-d" },
        yaxis: { gridcolor: c.grid, zeroline: false, fixedrange: true, automargin: true, tickmode: "array",
          autorange: false, ...axes[key] },
        shapes: marks.shapes,
      };
      if (!plot.classList.contains("js-plotly-plot")) plot.replaceChildren();
      const pins = marks.events.length ? [marks.pins(axes[key].range[1])] : [];
      Plotly.react(plot, [...traces[key], ...pins], layout, { displayModeBar: false, responsive: true });
    }
  }

  /** A request that just finished (Live): count it in its bucket; redraw at most once a second. */
  add(row) {
    const s = this.series;
    if (!s || !s.buckets.length) return;
    const t = Date.parse(row.start_time);
    const i = Math.floor((t - Date.parse(s.buckets[0].start)) / (s.bucket_seconds * 1000));
    const b = s.buckets[i];
    if (!b) return;
    const n = b.requests + 1;
    b.avg_latency_ms = b.avg_latency_ms == null ? row.latency_ms : (b.avg_latency_ms * b.requests + row.latency_ms) / n;
    if (b.p95_latency_ms == null) b.p95_latency_ms = row.latency_ms; // the rest waits for a refresh
    b.requests = n;
    b.errors += row.status === "success" ? 0 : 1;
    b.prompt_tokens += row.prompt_tokens;
    b.completion_tokens += row.completion_tokens;
    b.total_tokens += row.total_tokens;
    b.spend += row.spend;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (window.Plotly) this.draw(window.Plotly);
    }, 1000);
  }

  destroy() {
    clearTimeout(this.timer);
    this.scheme.removeEventListener("change", this.recolor);
    if (window.Plotly) for (const plot of Object.values(this.plots)) window.Plotly.purge(plot);
  }
}
