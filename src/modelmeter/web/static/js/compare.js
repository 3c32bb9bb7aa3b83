// The compare view (/compare?a=<name>&b=<name>[&a_period=…][&b_period=…][&window=…]): two models'
// four cards and their requests and latency charts side by side, for the same window; or either
// side over another period: the window just before, the same window 1 or 4 weeks earlier, or a
// chosen range (compare_period.js: one control, made once per side). Each side's charts keep their
// own time axis, labelled with their period.

import { api } from "./api.js";
import { Cards } from "./cards.js";
import { Charts, preloadPlotly } from "./charts.js";
import { PeriodControl, periodParams, periodPill, rangeProblem, readPeriod, writePeriod } from "./compare_period.js";
import { clear, h, pill, replace } from "./dom.js";
import { periodLabel } from "./fleet_strip.js";
import * as fmt from "./format.js";
import { modelPath, navigate, setQuery } from "./router.js";
import { readWindow, WindowControl, windowParams, writeWindow } from "./window_control.js";

const SIDES = ["a", "b"];

function readState(params) {
  return { ...readWindow(params), a: params.get("a") || "", b: params.get("b") || "",
    periods: { a: readPeriod(params, "a"), b: readPeriod(params, "b") } };
}

/** One side of the comparison: a model and a period, its cards and charts. */
class Side {
  constructor(which) {
    this.which = which;
    this.seq = 0;
    this.series = null;
    this.name = "";
    this.period = null; // {start, end} of what is shown, for "view these requests"
    this.title = h("h2", { class: "compare-name mono-title" });
    this.when = h("p", { class: "compare-period subtle small" });
    this.error = h("div", { class: "callout callout-error", role: "alert", hidden: true });
    this.cards = new Cards((key, filters) => this.openLog(filters));
    this.charts = new Charts(Promise.resolve(), ["requests", "latency"]);
    this.el = h("section", { class: "compare-side", dataset: { side: which }, "aria-labelledby": `side-${which}` },
      h("div", { class: "compare-side-head", id: `side-${which}` }, this.title, this.when),
      this.error, this.cards.el, this.charts.el);
  }

  /** Load `name` for the window `params`, or for another period of it (compare_period.js). */
  async load(name, params, period) {
    const seq = ++this.seq;
    this.name = name;
    this.series = null;
    this.charts.floor = {};
    this.error.hidden = true;
    this.cards.el.hidden = false;
    this.charts.el.hidden = false;
    this.when.replaceChildren(); // no period of before while this one loads (and tests wait for it)
    this.cards.loading();
    this.charts.loading();
    this.head(name, period);
    try {
      const custom = period.kind === "custom";
      let p = custom ? periodParams(period, null, params.tz) : params;
      let summary = await api.usage(name, p);
      const other = custom ? null : periodParams(period, summary, params.tz);
      if (other) { // the window's exact bounds (the API's) moved to the other period
        p = other;
        summary = await api.usage(name, p);
      }
      if (seq !== this.seq) return;
      this.period = { start: summary.start, end: summary.end };
      this.when.replaceChildren(periodLabel(summary.start, summary.end));
      this.cards.render(summary);
      const series = await api.timeseries(name, p);
      if (seq !== this.seq) return;
      this.series = series;
      this.cards.spark(series);
      this.charts.render(series);
    } catch (err) {
      if (seq !== this.seq) return;
      this.error.textContent = `Could not load ${name}: ${err.message}`;
      this.error.hidden = false;
    }
  }

  /** Show why this side (model `name`, over `period`) has nothing to show: no figures of before. */
  fail(name, period, message) {
    this.seq += 1;
    this.name = name;
    this.period = null;
    this.series = null;
    this.head(name, period);
    this.when.replaceChildren();
    this.cards.el.hidden = true;
    this.charts.el.hidden = true;
    this.error.textContent = message;
    this.error.hidden = false;
  }

  /** The side's heading: the model's name (a link to it) and, for another period, which. */
  head(name, period) {
    const label = periodPill(period.kind);
    replace(this.title, h("a", { href: modelPath(name), "data-link": true }, name),
      label ? pill(label, "neutral") : null); // dom.replace skips the null
  }

  /** The highest request count and latency of a bucket (for one scale on both sides). */
  tops() {
    const b = this.series ? this.series.buckets : [];
    const max = (f) => Math.max(0, ...b.map(f).filter((v) => v != null));
    return { requests: max((x) => x.requests), latency: max((x) => Math.max(x.avg_latency_ms ?? 0, x.p95_latency_ms ?? 0)) };
  }

  /** Draw again with these least axis tops. */
  scale(floor) {
    this.charts.floor = floor;
    if (this.series) this.charts.render(this.series);
  }

  /** A card was clicked: the model's log for this period, with the card's filter. */
  openLog(filters) {
    if (!this.period) return;
    const q = new URLSearchParams({ start: this.period.start, end: this.period.end });
    if (filters.status) q.set("status", filters.status);
    navigate(`${modelPath(this.name)}?${q}`);
  }

  destroy() {
    this.seq += 1;
    this.charts.destroy();
  }
}

export class ComparePage {
  constructor(root, route) {
    this.root = root;
    this.alive = true;
    this.names = [];
    this.seq = 0;
    document.title = "Compare · modelmeter";
    preloadPlotly();
    this.state = readState(route.params);
    const select = (id, label) => h("select", { class: "select", id, "aria-label": label, onchange: () => this.picked() });
    this.aSel = select("compare-a", "First model");
    this.bSel = select("compare-b", "Second model");
    this.periodCtls = Object.fromEntries(SIDES.map((side) => [side, new PeriodControl(side,
      (period) => this.go({ periods: { ...this.state.periods, [side]: period } }), (message) => this.showError(message))]));
    this.windowCtl = new WindowControl((w) => this.go(w), (message) => this.showError(message));
    this.error = h("div", { class: "callout callout-error", role: "alert", hidden: true });
    this.sides = { a: new Side("a"), b: new Side("b") };
    clear(root).append(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "/", "data-link": true }, "Models"), h("span", { "aria-hidden": "true" }, "/"), h("span", {}, "Compare")),
      h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Compare"),
        h("p", { class: "subtle" }, "Two models side by side, or one model's window beside another period of it. ",
          `Times in your time zone (${fmt.timeZone()}).`))),
      h("div", { class: "toolbar compare-toolbar" },
        h("div", { class: "toolbar-left" }, this.pick("a", this.aSel), this.pick("b", this.bSel, "with")),
        h("div", { class: "toolbar-right" }, this.windowCtl.els)),
      this.error,
      h("div", { class: "compare-grid" }, this.sides.a.el, this.sides.b.el));
    this.start();
  }

  async start() {
    try {
      const { data } = await api.deployments();
      if (!this.alive) return;
      this.names = data.map((d) => d.name);
    } catch (err) {
      this.showError(`Could not load the deployments: ${err.message}`);
      return;
    }
    for (const sel of [this.aSel, this.bSel]) {
      sel.replaceChildren(...this.names.map((n) => h("option", { value: n }, n)));
    }
    this.update({ params: new URLSearchParams(window.location.search) });
  }

  /** The URL changed (back/forward, or our own choices). */
  update(route) {
    this.state = readState(route.params);
    const s = this.state;
    if (!this.names.length) return;
    s.a = s.a || this.names[0];
    const { a: pa, b: pb } = s.periods;
    s.b = s.b || (pb.kind === "previous" ? s.a : this.names[1] || s.a);
    // one model and no second name or periods: its window beside the one before, not twice the same
    if (s.a === s.b && pa.kind === "current" && pb.kind === "current" && !route.params.get("b")) {
      s.periods.b = { ...pb, kind: "previous" };
    }
    for (const [sel, name] of [[this.aSel, s.a], [this.bSel, s.b]]) {
      if (!this.names.includes(name)) sel.append(h("option", { value: name }, name)); // an unknown one says so below
      sel.value = name;
    }
    for (const side of SIDES) this.periodCtls[side].sync(s.periods[side]);
    this.windowCtl.sync(s);
    this.error.hidden = true;
    const params = windowParams(s);
    const seq = ++this.seq;
    // a side whose chosen range is not one says why; the other side is still shown
    const problems = SIDES.map((side) => rangeProblem(side, s.periods[side]));
    if (problems.some(Boolean)) this.showError(problems.filter(Boolean).join(" "));
    Promise.all(SIDES.map((side, i) => (problems[i]
      ? this.sides[side].fail(s[side], s.periods[side], problems[i])
      : this.sides[side].load(s[side], params, s.periods[side]))))
      .then(() => { // both sides' charts on one scale, so that taller means more
        if (seq !== this.seq || !this.alive) return;
        const [a, b] = [this.sides.a.tops(), this.sides.b.tops()];
        const floor = { requests: Math.max(a.requests, b.requests), latency: Math.max(a.latency, b.latency) };
        this.sides.a.scale(floor);
        this.sides.b.scale(floor);
      });
  }

  /** A side's choices, kept together when the toolbar wraps: ["with"] its model "over" its period. */
  pick(side, select, lead = null) {
    const word = (text) => h("span", { class: "subtle" }, text);
    return h("div", { class: "compare-pick", dataset: { side } },
      lead && word(lead), select, word("over"), this.periodCtls[side].els);
  }

  picked() {
    this.go({ a: this.aSel.value, b: this.bSel.value });
  }

  go(changes) {
    Object.assign(this.state, changes);
    const s = this.state;
    const q = new URLSearchParams({ a: s.a, b: s.b });
    for (const side of SIDES) writePeriod(q, side, s.periods[side]);
    writeWindow(q, s);
    setQuery(q);
    this.update({ params: q });
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  destroy() {
    this.alive = false;
    this.sides.a.destroy();
    this.sides.b.destroy();
  }
}
