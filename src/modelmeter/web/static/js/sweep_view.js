// A sweep (one bench run per concurrency or rate level): its progress while it runs, then the
// throughput-vs-latency curve — one point per level, x = requests/s or output tokens/s, y = p50
// and p95 end-to-end latency — drawn with Plotly, and the same figures as a table (the text
// alternative). Used by the Evaluate tab (a sweep just started) and the Runs page (/runs/<id>).

import { api } from "./api.js";
import { button, clear, h, pill } from "./dom.js";
import { colors, loadPlotly } from "./charts.js";
import * as fmt from "./format.js";
import { STATUS_PILL } from "./run_figures.js";

const POLL_MS = 700;
const two = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const X_AXES = {
  req: ["request_throughput", "Requests/s", "req/s"],
  tok: ["output_token_throughput", "Output tokens/s", "tok/s"],
};

/** "1, 2, 4" or "0.5 2" → [1, 2, 4]; null when any part is not a number above zero. */
export function parseLevels(text) {
  const parts = String(text).split(/[\s,;]+/).filter(Boolean);
  const values = parts.map(Number);
  return values.length && values.every((v) => Number.isFinite(v) && v > 0) ? values : null;
}

function levelName(by, level) {
  return by === "rate" ? `${two.format(level)} req/s` : `concurrency ${level}`;
}

export class SweepView {
  /** `onEnd`: called once when the sweep is seen to have ended. */
  constructor(id, onEnd = null) {
    this.id = id;
    this.onEnd = onEnd;
    this.alive = true;
    this.timer = null;
    this.run = null;
    this.xAxis = "req";
    this.status = h("span", {});
    this.stopBtn = button("Stop sweep", { class: "btn-sm", id: "sweep-stop", hidden: true, onclick: () => this.stop() });
    this.axisSeg = h("div", { class: "seg", role: "tablist", "aria-label": "Throughput axis" },
      Object.entries(X_AXES).map(([key, [, label]]) => h("button", { type: "button", role: "tab", class: "seg-btn",
        dataset: { axis: key }, "aria-selected": String(key === this.xAxis), onclick: () => this.setAxis(key) }, label)));
    this.plot = h("div", { class: "plot sweep-plot", dataset: { sweepChart: "" },
      role: "img", "aria-label": "Throughput against latency, one point per level (the table below has the figures)" });
    this.tbody = h("tbody", {});
    this.levelHead = h("th", {}, "Level");
    this.el = h("section", { class: "card run-section sweep-view", dataset: { sweep: id } },
      h("div", { class: "log-head" }, h("h2", {}, "Sweep ", h("a", { href: `/runs/${encodeURIComponent(id)}`,
        "data-link": true, class: "mono" }, id), " ", this.status), this.stopBtn),
      h("div", { class: "chart-head" }, h("span", { class: "chart-sub" }, "Latency (p50, p95) against throughput"),
        this.axisSeg),
      this.plot,
      h("div", { class: "sweep-scroll" }, h("table", { class: "runs-table sweep-table" },
        h("caption", { class: "subtle small" }, "One bench run per level"),
        h("thead", {}, h("tr", {}, this.levelHead, ["Status", "Run", "Done", "Requests/s", "Output tok/s",
          "Latency p50", "Latency p95"].map((t, i) => h("th", { class: i > 1 ? "num" : null }, t)))),
        this.tbody)));
  }

  /** Poll the sweep until it ends (or the view is destroyed). */
  async follow() {
    clearTimeout(this.timer);
    let run;
    try {
      run = await api.run(this.id);
    } catch (err) {
      if (!this.alive) return;
      this.status.replaceChildren(h("span", { class: "tone-bad" }, err.message));
      this.timer = setTimeout(() => this.follow(), POLL_MS * 3);
      return;
    }
    if (!this.alive) return;
    this.show(run);
    if (this.statusOf(run) === "running") this.timer = setTimeout(() => this.follow(), POLL_MS);
    else if (this.onEnd) {
      this.onEnd(run);
      this.onEnd = null;
    }
  }

  statusOf(run) {
    return (run.report && run.report.status) || "done";
  }

  show(run) {
    this.run = run;
    const r = run.report || {};
    const status = this.statusOf(run);
    this.el.dataset.status = status;
    this.status.replaceChildren(pill(status, STATUS_PILL[status] || "neutral"));
    this.stopBtn.hidden = status !== "running";
    const by = r.sweep_by || (run.params || {}).sweep_by || "concurrency";
    this.levelHead.textContent = by === "rate" ? "Rate (req/s)" : "Concurrency";
    clear(this.tbody).append(...(r.points || []).filter((p) => p.level != null).map((p) => this.row(p)));
    this.draw();
  }

  row(p) {
    const live = p.live || {};
    const running = p.status === "running";
    const done = running ? `${fmt.int(live.done || 0)}${live.total ? ` / ${fmt.int(live.total)}` : ""}` : p.completed;
    return h("tr", { dataset: { level: String(p.level), status: p.status } },
      h("td", { class: "num" }, two.format(p.level)),
      h("td", {}, pill(p.status, STATUS_PILL[p.status] || "neutral")),
      h("td", {}, p.run_id ? h("a", { href: `/runs/${encodeURIComponent(p.run_id)}`, "data-link": true, class: "mono" },
        p.run_id) : fmt.DASH),
      h("td", { class: "num" }, done == null ? fmt.DASH : String(done)),
      h("td", { class: "num" }, (running ? live.req_s : p.request_throughput) == null ? fmt.DASH
        : two.format(running ? live.req_s : p.request_throughput)),
      h("td", { class: "num" }, (running ? live.tokens_s : p.output_token_throughput) == null ? fmt.DASH
        : two.format(running ? live.tokens_s : p.output_token_throughput)),
      h("td", { class: "num" }, fmt.ms(p.e2e_p50_ms)), h("td", { class: "num" }, fmt.ms(p.e2e_p95_ms)));
  }

  setAxis(key) {
    this.xAxis = key;
    for (const b of this.axisSeg.children) b.setAttribute("aria-selected", String(b.dataset.axis === key));
    this.draw();
  }

  /** The measured points (levels that ended with figures), in level order. */
  points() {
    const pts = ((this.run && this.run.report && this.run.report.points) || []);
    return pts.filter((p) => p.level != null && p.request_throughput != null && p.e2e_p50_ms != null);
  }

  async draw() {
    if (!this.points().length && !window.Plotly) {
      // Nothing to draw yet: the chart library (a long first compile) waits for the first point,
      // so the progress of the first level shows without a pause.
      this.plot.replaceChildren(h("div", { class: "plot-error" }, "The curve appears when the first level ends."));
      return;
    }
    let Plotly;
    try {
      Plotly = await loadPlotly();
    } catch (err) {
      this.plot.replaceChildren(h("div", { class: "plot-error" }, `Chart unavailable: ${err.message}`));
      return;
    }
    if (!this.alive || !this.run) return;
    const c = colors();
    const [key, label, unit] = X_AXES[this.xAxis];
    const pts = this.points();
    const by = (this.run.report || {}).sweep_by || "concurrency";
    const x = pts.map((p) => p[key]);
    const names = pts.map((p) => levelName(by, p.level));
    const trace = (name, field, color, dash) => ({
      type: "scatter", mode: "lines+markers+text", name, x, y: pts.map((p) => p[field]),
      text: name === "p50" ? pts.map((p) => two.format(p.level)) : [], textposition: "top center",
      line: { color, width: 2, dash }, marker: { size: 8, color },
      customdata: names, hovertemplate: `%{customdata}: %{x:.2f} ${unit}, ${name} %{y:.1f} ms<extra></extra>`,
    });
    const layout = {
      height: 260, margin: { l: 56, r: 12, t: 18, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: c.font, size: 11, color: c.text }, showlegend: true, legend: { orientation: "h", y: 1.12 },
      xaxis: { title: { text: label }, gridcolor: c.grid, zeroline: false, rangemode: "tozero" },
      yaxis: { title: { text: "Latency (ms)" }, gridcolor: c.grid, zeroline: false, rangemode: "tozero" },
    };
    if (!this.plot.classList.contains("js-plotly-plot")) this.plot.replaceChildren();
    Plotly.react(this.plot, [trace("p50", "e2e_p50_ms", c.c1, "solid"), trace("p95", "e2e_p95_ms", c.c4, "dot")],
      layout, { displayModeBar: false, responsive: true });
  }

  async stop() {
    this.stopBtn.disabled = true;
    try {
      await api.stopRun(this.id);
    } catch (err) {
      this.status.append(" ", h("span", { class: "tone-bad" }, err.message));
    } finally {
      this.stopBtn.disabled = false;
    }
    this.follow();
  }

  destroy() {
    this.alive = false;
    clearTimeout(this.timer);
    if (window.Plotly) window.Plotly.purge(this.plot);
  }
}
