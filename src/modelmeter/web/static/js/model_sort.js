// Sorting the Models page's cards: by name, requests, spend or error rate, each way. A group of
// buttons (keyboard: Tab to one, Enter or Space); the active one again reverses the order.

import { h } from "./dom.js";

export const SORTS = [
  // key, label, the first direction (names A→Z, figures highest first)
  ["name", "Name", "asc"],
  ["requests", "Requests", "desc"],
  ["spend", "Spend", "desc"],
  ["error_rate", "Error rate", "desc"],
];
const WORDS = { asc: { name: "A to Z", other: "lowest first" }, desc: { name: "Z to A", other: "highest first" } };

/** {sort, dir} from the URL (name, ascending, by default). */
export function readSort(params) {
  const sort = SORTS.some(([k]) => k === params.get("sort")) ? params.get("sort") : "name";
  const first = SORTS.find(([k]) => k === sort)[2];
  const dir = ["asc", "desc"].includes(params.get("dir")) ? params.get("dir") : first;
  return { sort, dir };
}

/** Order `items` ({deployment, requests, spend, error_rate}): a deployment without requests has
 *  no error rate and goes last either way; ties by name. */
export function sorted(items, { sort, dir }) {
  const sign = dir === "asc" ? 1 : -1;
  const byName = (a, b) => a.deployment.localeCompare(b.deployment);
  return [...items].sort((a, b) => {
    if (sort === "name") return sign * byName(a, b);
    const x = a[sort];
    const y = b[sort];
    if (x == null || y == null) return (x == null) - (y == null) || byName(a, b);
    return sign * (x - y) || byName(a, b);
  });
}

export class SortControl {
  /** `onChange({sort, dir})`. */
  constructor(state, onChange) {
    this.state = { ...state };
    this.onChange = onChange;
    this.buttons = SORTS.map(([key, label, first]) => h("button", { type: "button", class: "seg-btn sort-btn",
      dataset: { sort: key }, onclick: () => this.pick(key, first) },
    label, h("span", { class: "sort-arrow", "aria-hidden": "true" })));
    this.said = h("span", { class: "sr-only", role: "status" });
    this.el = h("div", { class: "sort" },
      h("span", { class: "subtle small", id: "sort-label" }, "Sort by"),
      h("div", { class: "seg", role: "group", "aria-labelledby": "sort-label" }, this.buttons), this.said);
    this.sync(this.state);
  }

  pick(key, first) {
    const dir = key === this.state.sort ? (this.state.dir === "asc" ? "desc" : "asc") : first;
    this.state = { sort: key, dir };
    this.sync(this.state, true);
    this.onChange(this.state);
  }

  sync(state, announce = false) {
    this.state = { ...state };
    for (const b of this.buttons) {
      const on = b.dataset.sort === state.sort;
      b.setAttribute("aria-pressed", String(on));
      b.querySelector(".sort-arrow").textContent = on ? (state.dir === "asc" ? " ↑" : " ↓") : "";
    }
    const label = SORTS.find(([k]) => k === state.sort)[1];
    const words = WORDS[state.dir][state.sort === "name" ? "name" : "other"];
    this.el.dataset.sort = state.sort;
    this.el.dataset.dir = state.dir;
    for (const b of this.buttons) b.title = b.dataset.sort === state.sort ? `Sorted by ${label.toLowerCase()}, ${words}` : "";
    if (announce) this.said.textContent = `Sorted by ${label.toLowerCase()}, ${words}`;
  }
}
