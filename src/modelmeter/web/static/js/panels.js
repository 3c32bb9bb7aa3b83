// The cost, cache, retries and reasoning panels of "More insights" (GET …/usage/costs, …/cache,
// …/retries, …/reasoning, from rollups): a chart each, and its numbers as a table (the text
// alternative: the chart is aria-hidden).

import { api } from "./api.js";
import { colors, DATE_AXIS_AUTOMARGIN, dateMargin, loadPlotly, withValues } from "./charts.js";
import { h, replace, skeleton } from "./dom.js";
import * as fmt from "./format.js";
import { axisTicks } from "./ticks.js";

// Legend swatches: the colours draw() gives each trace.
const PANELS = [
  { key: "costs", title: "Cost by component", legend: [["c1", "Input"], ["c2", "Cached input"], ["c4", "Cache writes"],
    ["c3", "Output"], ["muted", "Reasoning"]] },
  { key: "cache", title: "Caching", legend: [["c2", "Saved by provider cache"], ["c4", "Saved by response cache"]] },
  { key: "retries", title: "Retries", legend: [["ok", "Rescued"], ["bad", "Failed after retries"]] },
  { key: "reasoning", title: "Reasoning share of output", legend: [["c3", "Reasoning tokens / output tokens"]] },
];
const COMPONENT_LABELS = { input: "Input", cached_input: "Cached input", cache_write: "Cache writes",
  output: "Output", reasoning: "Reasoning" };

const th = (text) => h("th", { scope: "col", class: "num" }, text);
const td = (col, text) => h("td", { class: "num", dataset: { col } }, text);
const timeCell = (b) => h("td", {}, fmt.dateTime(b.start));

export class CostPanels {
  /** `ready`: the cards and log have painted (InsightPanels). */
  constructor(name, ready = Promise.resolve()) {
    this.name = name;
    this.ready = ready;
    this.seq = 0;
    this.data = null;
    this.parts = {};
    this.sections = PANELS.map(({ key, title, legend }) => {
      const stats = h("span", { class: "chart-sub", dataset: { role: "stats" } });
      const plot = h("div", { class: "plot", dataset: { insight: key }, "aria-hidden": "true" }, skeleton("plot-skeleton"));
      const table = h("table", { class: "numbers" });
      this.parts[key] = { stats, plot, table };
      return h("section", { class: "card chart insight", dataset: { panel: key } },
        h("div", { class: "chart-head" }, h("h3", {}, h("span", { class: "card-title" }, title), stats)),
        h("div", { class: "legend panel-legend" }, legend.map(([c, label]) =>
          h("span", { class: "legend-item" }, h("span", { class: `swatch swatch-${c}` }), label))),
        plot,
        h("details", { class: "numbers-toggle" }, h("summary", {}, "Numbers"),
          h("div", { class: "numbers-scroll" }, table)));
    });
  }

  async load(params) {
    const seq = ++this.seq;
    const [costs, cache, retries, reasoning] = await Promise.all([
      api.costs(this.name, params), api.cache(this.name, params), api.retries(this.name, params),
      api.reasoning(this.name, params)]);
    if (seq !== this.seq) return;
    this.data = { costs, cache, retries, reasoning };
    this.tables();
    await this.ready;
    const Plotly = await loadPlotly();
    if (seq === this.seq) this.draw(Plotly);
  }

  tables() {
    const { costs, cache, retries, reasoning } = this.data;
    const t = costs.totals;
    this.parts.costs.stats.textContent = t.requests ? ` · ${fmt.usd(t.spend)} in all` : " · no requests";
    const comps = costs.components;
    this.table("costs", "Spend by cost component per time bucket",
      ["Time", ...comps.map((c) => COMPONENT_LABELS[c] || c), "Total"], costs,
      (b) => [...comps.map((c) => td(c, fmt.usdCell(b[c]))), td("spend", fmt.usdCell(b.spend))]);

    const c = cache.totals;
    this.parts.cache.stats.textContent = c.requests
      ? ` · ${fmt.pct(c.cached_share)} of input cached · ${fmt.int(c.cache_hits)} cache hits · ${fmt.usd(c.saved)} saved`
      : " · no requests";
    this.table("cache", "Provider prompt caching and response-cache hits per time bucket",
      ["Time", "Input tokens", "Cached", "Cached share", "Cache writes", "Saved by provider cache",
        "Cache hits", "Hit share", "Saved by response cache"], cache,
      (b) => [td("prompt_tokens", fmt.int(b.prompt_tokens)), td("cached_tokens", fmt.int(b.cached_tokens)),
        td("cached_share", fmt.pct(b.cached_share)), td("cache_write_tokens", fmt.int(b.cache_write_tokens)),
        td("cached_saved", fmt.usdCell(b.cached_saved)), td("cache_hits", fmt.int(b.cache_hits)),
        td("cache_hit_share", fmt.pct(b.cache_hit_share)), td("cache_hit_saved", fmt.usdCell(b.cache_hit_saved))]);

    const r = retries.totals;
    this.parts.retries.stats.textContent = r.retried
      ? ` · ${fmt.int(r.retried)} retried · ${fmt.int(r.rescued)} rescued` : " · no retries";
    this.table("retries", "Retried requests and those retries rescued per time bucket",
      ["Time", "Requests", "Retried", "Rescued", "Failed after retries", "Retry attempts"], retries,
      (b) => [td("requests", fmt.int(b.requests)), td("retried", fmt.int(b.retried)), td("rescued", fmt.int(b.rescued)),
        td("failed_after_retries", fmt.int(b.failed_after_retries)), td("retry_attempts", fmt.int(b.retry_attempts))]);

    const s = reasoning.totals;
    this.parts.reasoning.stats.textContent = s.completion_tokens
      ? ` · ${fmt.pct(s.reasoning_share)} of output tokens` : " · no output";
    this.table("reasoning", "Reasoning tokens' share of output tokens per time bucket",
      ["Time", "Output tokens", "Reasoning tokens", "Reasoning share"], reasoning,
      (b) => [td("completion_tokens", fmt.int(b.completion_tokens)), td("reasoning_tokens", fmt.int(b.reasoning_tokens)),
        td("reasoning_share", fmt.pct(b.reasoning_share))]);
  }

  /** The buckets with requests as rows, and a "Total" row of the panel's totals. */
  table(key, caption, heads, data, cells) {
    replace(this.parts[key].table, h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, heads[0]), heads.slice(1).map(th))),
      h("tbody", {}, data.buckets.filter((b) => b.requests).map((b) => h("tr", { dataset: { start: b.start } },
        timeCell(b), cells(b)))),
      h("tfoot", {}, h("tr", { dataset: { role: "totals" } }, h("th", { scope: "row" }, "Total"), cells(data.totals))));
  }

  draw(Plotly) {
    if (!this.data) return;
    const { costs, cache, retries, reasoning } = this.data;
    const c = colors();
    const palette = { input: c.c1, cached_input: c.c2, cache_write: c.c4, output: c.c3, reasoning: c.text };
    const x = (d) => d.buckets.map((b) => fmt.wallClock(b.start));
    // Each bar spans its bucket (a date axis sizes bars in ms; one lone bucket would get 1 ms).
    const bars = (d, name, color, values, kind) => ({
      type: "bar", name, x: x(d), y: values, marker: { color }, offset: 0, width: d.bucket_seconds * 1000 * 0.92,
      customdata: values.map((v) => (kind === "usd" ? fmt.usd(v) : fmt.int(v))),
      hovertemplate: `%{customdata}<extra>${name}</extra>`,
    });
    const stacked = (key, d, traces, kind) => {
      const tops = d.buckets.map((_, i) => traces.reduce((a, t) => a + (t.y[i] || 0), 0));
      const layout = this.layout(c, key, d, Math.max(0, ...tops), kind);
      Object.assign(layout, { barmode: "stack", hovermode: "x unified" });
      this.plot(Plotly, this.parts[key].plot, withValues(traces), layout);
    };
    stacked("costs", costs, costs.components.map((k) =>
      bars(costs, COMPONENT_LABELS[k] || k, palette[k], costs.buckets.map((b) => b[k]), "usd")), "usd");
    stacked("cache", cache, [
      bars(cache, "Saved by provider cache", c.c2, cache.buckets.map((b) => b.cached_saved), "usd"),
      bars(cache, "Saved by response cache", c.c4, cache.buckets.map((b) => b.cache_hit_saved), "usd")], "usd");
    stacked("retries", retries, [
      bars(retries, "Rescued", c.ok, retries.buckets.map((b) => b.rescued), "count"),
      bars(retries, "Failed after retries", c.bad, retries.buckets.map((b) => b.failed_after_retries), "count")], "count");
    const shares = reasoning.buckets.map((b) => (b.reasoning_share == null ? null : b.reasoning_share * 100));
    const layout = this.layout(c, "reasoning", reasoning, Math.max(0, ...shares.filter((v) => v != null)), "count");
    layout.yaxis.ticktext = layout.yaxis.ticktext.map((t) => `${t}%`);
    this.plot(Plotly, this.parts.reasoning.plot, [{ type: "scatter", mode: "lines+markers", x: x(reasoning), y: shares,
      connectgaps: false, line: { color: c.c3, width: 2 }, marker: { size: 5, color: c.c3 },
      customdata: reasoning.buckets.map((b) => `${fmt.pct(b.reasoning_share)} of ${fmt.int(b.completion_tokens)} output tokens`),
      hovertemplate: "%{customdata}<extra></extra>" }], layout);
  }

  layout(c, key, d, max, kind) {
    const plot = this.parts[key].plot;
    // The margins automargin settles on for these axes (dateMargin): asked for less, plotly draws
    // each plot a second time with the grown margins.
    return {
      height: 190, margin: dateMargin(c.font), bargap: 0.08, showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { family: c.font, size: 11, color: c.text },
      hoverlabel: { bgcolor: c.hover, bordercolor: c.line, font: { color: c.fg, family: c.font, size: 12 } },
      xaxis: { showgrid: false, linecolor: c.line, fixedrange: true, automargin: DATE_AXIS_AUTOMARGIN, type: "date",
        range: [fmt.wallClock(d.start), fmt.wallClock(d.end)],
        nticks: Math.max(3, Math.min(8, Math.floor((plot.clientWidth || 600) / 90))) },
      yaxis: { gridcolor: c.grid, zeroline: false, fixedrange: true, automargin: true, tickmode: "array",
        autorange: false, ...axisTicks(max, kind) },
    };
  }

  plot(Plotly, el, traces, layout) {
    if (!el.classList.contains("js-plotly-plot")) el.replaceChildren();
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  }

  destroy() {
    this.seq += 1;
    if (window.Plotly) for (const { plot } of Object.values(this.parts)) window.Plotly.purge(plot);
  }
}
