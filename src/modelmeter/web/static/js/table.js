// The request log: newest first, one page at a time, a click on a row opens its drawer.

import { button, h, pill, skeleton } from "./dom.js";
import * as fmt from "./format.js";

export const PAGE_SIZES = [10, 25, 50, 100];
const COLUMNS = [
  ["time", () => `Time (${fmt.timeZone()})`],
  ["status", () => "Status"],
  ["prompt", () => "Prompt", "num"],
  ["completion", () => "Completion", "num"],
  ["total", () => "Total", "num"],
  ["latency", () => "Latency (ms)", "num"],
  ["spend", () => "Spend", "num"],
  ["request", () => "Request"],
];

export class RequestTable {
  constructor({ onOpen, onPrev, onNext, onSize, onNewest }) {
    this.onOpen = onOpen;
    this.ids = new Set();
    this.tbody = h("tbody");
    this.table = h("table", { class: "log", "aria-label": "Requests" },
      h("colgroup", {}, COLUMNS.map(([key]) => h("col", { class: `col-${key}` }))),
      h("thead", {}, h("tr", {}, COLUMNS.map(([key, label, cls]) =>
        h("th", { scope: "col", class: cls || null, dataset: { col: key } }, label())))),
      this.tbody);
    this.size = h("select", { class: "select select-sm", "aria-label": "Rows per page",
      onchange: () => onSize(Number(this.size.value)) },
    PAGE_SIZES.map((n) => h("option", { value: n }, String(n))));
    this.pageLabel = h("span", { class: "page-label num" });
    this.prev = button(null, { class: "btn-icon", "aria-label": "Previous page", title: "Newer", onclick: onPrev }, "left");
    this.next = button(null, { class: "btn-icon", "aria-label": "Next page", title: "Older", onclick: onNext }, "right");
    this.newer = button("", { class: "btn-chip", hidden: true, onclick: onNewest });
    this.el = h("div", { class: "log-wrap" },
      h("div", { class: "table-scroll" }, this.table),
      h("div", { class: "log-foot" },
        h("label", { class: "inline-field" }, h("span", { class: "subtle" }, "Rows per page"), this.size),
        this.newer,
        h("div", { class: "pager" }, this.pageLabel, this.prev, this.next)));
    this.pendingNew = 0;
  }

  setSize(n) {
    this.size.value = String(n);
  }

  loading(n = 8) {
    this.ids.clear();
    this.table.setAttribute("aria-busy", "true");
    this.tbody.replaceChildren(...Array.from({ length: n }, () =>
      h("tr", { class: "row-skeleton" }, COLUMNS.map(() => h("td", {}, skeleton("w-70"))))));
  }

  /** One page of rows; `message` is shown instead when there are none. */
  render(rows, { pageIndex, hasNext, size, message }) {
    this.table.removeAttribute("aria-busy");
    this.ids.clear();
    this.pendingNew = 0;
    this.newer.hidden = true;
    this.tbody.replaceChildren(...rows.map((r) => this.row(r)));
    if (!rows.length) {
      this.tbody.append(h("tr", { class: "row-empty" },
        h("td", { colspan: COLUMNS.length }, message || "No requests in this window.")));
    }
    this.pageLabel.textContent = rows.length
      ? `Page ${pageIndex + 1} · ${fmt.int(pageIndex * size + 1)}–${fmt.int(pageIndex * size + rows.length)}`
      : `Page ${pageIndex + 1}`;
    this.prev.disabled = pageIndex === 0;
    this.next.disabled = !hasNext;
  }

  has(id) {
    return this.ids.has(id);
  }

  get count() {
    return this.ids.size;
  }

  /** Rows newer than those shown (newest first), added at the top; returns how many were new. */
  prepend(rows) {
    const fresh = rows.filter((r) => !this.ids.has(r.id));
    if (!fresh.length) return 0;
    const empty = this.tbody.querySelector(".row-empty");
    if (empty) empty.remove();
    const els = fresh.map((r) => {
      const tr = this.row(r);
      tr.classList.add("row-new");
      return tr;
    });
    // Keep newest first even if rows arrive out of order (SSE batch vs. a Live fetch).
    for (const tr of els.reverse()) {
      let before = this.tbody.firstElementChild;
      while (before && before.dataset.start && before.dataset.start > tr.dataset.start) {
        before = before.nextElementSibling;
      }
      this.tbody.insertBefore(tr, before);
    }
    return fresh.length;
  }

  /** Requests that arrived while an older page is shown. */
  noteNew(n) {
    this.pendingNew += n;
    this.newer.hidden = false;
    this.newer.querySelector(".label").textContent =
      `${fmt.int(this.pendingNew)} new request${this.pendingNew === 1 ? "" : "s"} · back to newest`;
  }

  row(r) {
    const tr = this.cells(r);
    // Each cell names its column: on a phone the rows are stacked and show these labels.
    this.labels ||= COLUMNS.map(([, label]) => label());
    [...tr.children].forEach((td, i) => { td.dataset.label = this.labels[i]; });
    return tr;
  }

  cells(r) {
    this.ids.add(r.id);
    const rid = r.request_id || r.id;
    const open = () => this.onOpen(r.id);
    return h("tr", {
      class: `row row-${r.status}`, tabindex: "0", dataset: { id: r.id, start: r.start_time },
      onclick: (e) => {
        if (!window.getSelection().toString()) open();
        e.stopPropagation();
      },
      onkeydown: (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          open();
        } else if (rowKeyTarget(e)) {
          e.preventDefault();
          rowKeyTarget(e).focus();
        }
      },
    },
    h("td", { class: "cell-time" }, h("time", { datetime: r.start_time, title: fmt.dateTime(r.start_time) }, fmt.time(r.start_time))),
    h("td", { class: "cell-status", title: r.status === "success" ? null : `HTTP ${r.http_status}: ${r.error || "error"}` },
      pill(r.status, r.status === "success" ? "success" : "error")),
    h("td", { class: "num" }, fmt.int(r.prompt_tokens)),
    h("td", { class: "num" }, fmt.int(r.completion_tokens)),
    h("td", { class: "num" }, fmt.int(r.total_tokens)),
    h("td", { class: "num" }, fmt.msNumber(r.latency_ms)),
    h("td", { class: "num" }, fmt.usdCell(r.spend)),
    h("td", { class: "cell-rid mono", title: rid }, rid));
  }
}

/** The log row a key moves the focus to (arrows: the next or previous row; Home / End: the first or
 * last of the page), or null when the key is not one of these. */
function rowKeyTarget(e) {
  const tr = e.currentTarget;
  const rows = () => [...tr.parentElement.querySelectorAll(":scope > tr.row")];
  const step = (dir) => {
    let next = dir > 0 ? tr.nextElementSibling : tr.previousElementSibling;
    while (next && !next.classList.contains("row")) next = dir > 0 ? next.nextElementSibling : next.previousElementSibling;
    return next;
  };
  switch (e.key) {
    case "ArrowDown": return step(1);
    case "ArrowUp": return step(-1);
    case "Home": return rows()[0] || null;
    case "End": return rows().at(-1) || null;
    default: return null;
  }
}
