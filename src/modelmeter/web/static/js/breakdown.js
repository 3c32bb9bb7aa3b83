// The window's breakdown (GET …/usage/breakdown?by=): by call type, API key, end user, tag or
// session — requests, error rate, tokens, spend and p95 per value, "others", and their total; a
// row opens the log filtered to it; sortable; CSV download. Keys, users, tags and sessions come
// from hourly top-N rollups: they cover the window's whole hours (the panel says which).

import { api } from "./api.js";
import { h, icon, replace } from "./dom.js";
import * as fmt from "./format.js";

// by, label, the log filter a row sets (the Usage tab's URL names)
const DIMS = [["call_type", "Call type", "type"], ["key", "API key", "key"], ["user", "End user", "user"],
  ["tag", "Tag", "tag"], ["session", "Session", "session"]];
const SORTS = [["spend", "Spend"], ["requests", "Requests"], ["tokens", "Tokens"], ["error_rate", "Error rate"],
  ["p95", "p95 latency"]];
const NONE = { call_type: "(none)", key: "(no key)", user: "(no user)", tag: "(no tag)", session: "(no session)" };

export class Breakdown {
  /** `onOpen(filters)`: a row was chosen (e.g. { key: "team-a" }). */
  constructor(name, onOpen) {
    this.name = name;
    this.onOpen = onOpen;
    this.by = "call_type";
    this.sort = "spend";
    this.seq = 0;
    this.seg = h("div", { class: "seg", role: "tablist", "aria-label": "Break down by" }, DIMS.map(([by, label]) =>
      h("button", { type: "button", role: "tab", class: "seg-btn", dataset: { by },
        onclick: () => { this.by = by; this.sync(); this.load(this.params); } }, label)));
    this.sortSel = h("select", { class: "select select-sm", name: "breakdown_sort", "aria-label": "Sort breakdown by",
      onchange: () => { this.sort = this.sortSel.value; this.load(this.params); } },
    SORTS.map(([v, label]) => h("option", { value: v }, `By ${label.toLowerCase()}`)));
    this.csv = h("a", { class: "btn btn-sm btn-ghost", download: true, dataset: { export: "breakdown" } },
      icon("download"), "CSV");
    this.title = h("span", { class: "card-title" }, "By call type");
    this.note = h("p", { class: "subtle", hidden: true }, "Breakdowns cover the whole window: clear the tag filter to see them.");
    this.span = h("p", { class: "subtle", dataset: { role: "span" }, hidden: true });
    this.table = h("table", { class: "numbers breakdown" });
    this.el = h("section", { class: "card chart insight insight-wide", dataset: { panel: "breakdown" } },
      h("div", { class: "chart-head" }, h("h3", {}, this.title),
        h("div", { class: "filters" }, this.seg, this.sortSel, this.csv)),
      this.note, this.span, h("div", { class: "numbers-scroll" }, this.table));
    this.sync();
  }

  sync() {
    for (const b of this.seg.children) b.setAttribute("aria-selected", String(b.dataset.by === this.by));
    // Call types are few and exact: by spend, all of them. The others sort on the server.
    this.sortSel.hidden = this.by === "call_type";
    this.sortSel.value = this.sort;
    this.title.textContent = `By ${DIMS.find(([by]) => by === this.by)[1].toLowerCase()}`;
  }

  async load(params) {
    this.params = params;
    const seq = ++this.seq;
    const tagged = Boolean(params.tag);
    this.note.hidden = !tagged;
    this.table.hidden = tagged;
    const p = { ...params, tag: "", by: this.by };
    if (this.by !== "call_type") p.sort = this.sort;
    this.csv.href = api.breakdownCsv(this.name, p);
    if (tagged) {
      this.span.hidden = true;
      return;
    }
    const res = await api.breakdown(this.name, p);
    if (seq === this.seq) this.render(res);
  }

  render(res) {
    const [, label, filter] = DIMS.find(([by]) => by === res.by);
    const top = res.by !== "call_type";
    // Top-N breakdowns read whole hours: say which, in the viewer's zone.
    this.span.hidden = !top;
    this.span.textContent = top ? `Whole hours ${fmt.dateTime(res.start)} – ${fmt.dateTime(res.end)} (${fmt.timeZone()}); `
      + "each hour keeps its 50 busiest and 50 costliest values, the rest are in “Others”." : "";
    const cells = (r) => [
      h("td", { class: "num" }, fmt.int(r.requests)),
      h("td", { class: "num" }, r.error_rate == null ? fmt.DASH : fmt.pct(r.error_rate)),
      h("td", { class: "num" }, fmt.int(r.total_tokens)),
      h("td", { class: "num" }, fmt.usd(r.spend)),
      ...(top ? [h("td", { class: "num" }, r.p95_ms == null ? fmt.DASH : fmt.ms(r.p95_ms))] : []),
    ];
    const open = (value) => this.onOpen({ key: "", type: "", user: "", session: "", [filter]: value });
    const heads = [label, "Requests", "Error rate", "Tokens", "Spend", ...(top ? ["p95"] : [])];
    const rows = res.rows.map((r) => h("tr", { dataset: { value: r.value, requests: r.requests } },
      h("th", { scope: "row" }, r.value
        ? h("button", { type: "button", class: "link-filter linkish", title: "View these requests",
          onclick: () => open(r.value) }, r.value)
        : h("span", { class: "subtle" }, NONE[res.by])),
      cells(r)));
    if (res.others) {
      rows.push(h("tr", { dataset: { role: "others", requests: res.others.requests } },
        h("th", { scope: "row" }, h("span", { class: "subtle",
          title: "Values past these rows, and each hour's values outside its 50 busiest and 50 costliest" }, "Others")),
        cells(res.others)));
    }
    replace(this.table, h("caption", { class: "sr-only" }, `Requests by ${label.toLowerCase()}`),
      h("thead", {}, h("tr", {}, heads.map((c, i) => h("th", { scope: "col", class: i ? "num" : null }, c)))),
      h("tbody", {}, rows),
      h("tfoot", {}, h("tr", { dataset: { role: "total" } }, h("th", { scope: "row" }, "Total"), cells(res.total))));
  }
}
