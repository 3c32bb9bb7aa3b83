// The window's breakdown by call type (GET …/usage/breakdown): requests, error rate,
// tokens and spend per value, with their total; a row opens the log filtered to it; CSV download.

import { api } from "./api.js";
import { h, icon, replace } from "./dom.js";
import * as fmt from "./format.js";

const DIMS = [["call_type", "Call type", "type"]]; // by, label, log filter (one dimension so far)

export class Breakdown {
  /** `onOpen(filters)`: a row was chosen (e.g. { key: "team-a" }). */
  constructor(name, onOpen) {
    this.name = name;
    this.onOpen = onOpen;
    this.by = "call_type";
    this.seq = 0;
    this.seg = h("div", { class: "seg", role: "tablist", "aria-label": "Break down by" }, DIMS.map(([by, label]) =>
      h("button", { type: "button", role: "tab", class: "seg-btn", dataset: { by },
        onclick: () => { this.by = by; this.sync(); this.load(this.params); } }, label)));
    this.csv = h("a", { class: "btn btn-sm btn-ghost", download: true, dataset: { export: "breakdown" } },
      icon("download"), "CSV");
    this.note = h("p", { class: "subtle", hidden: true }, "Breakdowns cover the whole window: clear the tag filter to see them.");
    this.table = h("table", { class: "numbers breakdown" });
    this.el = h("section", { class: "card chart insight insight-wide", dataset: { panel: "breakdown" } },
      h("div", { class: "chart-head" }, h("h3", {}, h("span", { class: "card-title" }, "By call type")),
        h("div", { class: "filters" }, this.seg, this.csv)),
      this.note, h("div", { class: "numbers-scroll" }, this.table));
    this.sync();
  }

  sync() {
    for (const b of this.seg.children) b.setAttribute("aria-selected", String(b.dataset.by === this.by));
  }

  async load(params) {
    this.params = params;
    const seq = ++this.seq;
    const tagged = Boolean(params.tag);
    this.note.hidden = !tagged;
    this.table.hidden = tagged;
    const p = { ...params, tag: "", by: this.by };
    this.csv.href = api.breakdownCsv(this.name, p);
    if (tagged) return;
    const res = await api.breakdown(this.name, p);
    if (seq === this.seq) this.render(res);
  }

  render(res) {
    const [, label, filter] = DIMS.find(([by]) => by === res.by);
    const cells = (r) => [
      h("td", { class: "num" }, fmt.int(r.requests)),
      h("td", { class: "num" }, r.error_rate == null ? fmt.DASH : fmt.pct(r.error_rate)),
      h("td", { class: "num" }, fmt.int(r.total_tokens)),
      h("td", { class: "num" }, fmt.usd(r.spend)),
    ];
    replace(this.table, h("caption", { class: "sr-only" }, `Requests by ${label.toLowerCase()}`),
      h("thead", {}, h("tr", {}, [label, "Requests", "Error rate", "Tokens", "Spend"].map((c, i) =>
        h("th", { scope: "col", class: i ? "num" : null }, c)))),
      h("tbody", {}, res.rows.map((r) => h("tr", { dataset: { value: r.value, requests: r.requests } },
        h("th", { scope: "row" }, r.value
          ? h("button", { type: "button", class: "link-filter linkish", title: "View these requests",
            onclick: () => this.onOpen({ key: "", type: "", [filter]: r.value }) }, r.value)
          : h("span", { class: "subtle" }, res.by === "key" ? "(no key)" : "(none)")),
        cells(r)))),
      h("tfoot", {}, h("tr", { dataset: { role: "total" } }, h("th", { scope: "row" }, "Total"), cells(res.total))));
  }
}
