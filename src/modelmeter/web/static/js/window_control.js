// The time window control of the Usage tab and the Models page: a named window (last hour … last
// 30 days) or a custom range picked in the viewer's time zone, kept in the URL (window=, start=, end=).

import { button, h } from "./dom.js";
import * as fmt from "./format.js";

export const WINDOWS = [["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"],
  ["30d", "Last 30 days"], ["custom", "Custom range…"]];
export const SECONDS = { "1h": 3600, "24h": 86400, "7d": 604800, "30d": 2592000 };

/** {window, start, end} from a URL's parameters; `fallback` when it names no window. */
export function readWindow(params, fallback = "7d") {
  const start = params.get("start") || "";
  const end = params.get("end") || "";
  const w = params.get("window");
  return { window: start || end ? "custom" : (SECONDS[w] ? w : fallback), start, end };
}

/** The window's parameters for the usage API (with the viewer's time zone). */
export function windowParams(s) {
  const p = { tz: fmt.timeZone() };
  if (s.window === "custom") Object.assign(p, { start: s.start, end: s.end });
  else p.window = s.window;
  return p;
}

/** Write the window into URL parameters (the default one is left out). */
export function writeWindow(q, s, fallback = "7d") {
  if (s.window === "custom") {
    if (s.start) q.set("start", s.start);
    if (s.end) q.set("end", s.end);
  } else if (s.window !== fallback) q.set("window", s.window);
}

/** "last 7 days" or "this time range": for sentences. */
export function windowWords(s) {
  if (s.window === "custom") return "this time range";
  return WINDOWS.find(([v]) => v === s.window)[1].toLowerCase();
}

/** A URL's start or end for <input type=datetime-local>: one with a zone (an alert's link says
 *  "…Z") in the viewer's time; a local one as it is. */
function asInput(value) {
  const zoned = /(z|[+-]\d\d:?\d\d)$/i.test(value) && !Number.isNaN(Date.parse(value));
  return zoned ? fmt.localInput(new Date(value)) : value.slice(0, 16);
}

export class WindowControl {
  /** `onChange({window, start, end})`: a named window was picked or a range applied;
   *  `onError(message)`: the range is not valid. */
  constructor(onChange, onError = () => {}) {
    this.onChange = onChange;
    this.onError = onError;
    this.select = h("select", { class: "select", id: "window", "aria-label": "Time window",
      onchange: () => this.picked() }, WINDOWS.map(([v, label]) => h("option", { value: v }, label)));
    this.startIn = h("input", { type: "datetime-local", class: "input", "aria-label": "From" });
    this.endIn = h("input", { type: "datetime-local", class: "input", "aria-label": "To" });
    this.range = h("form", { class: "range", hidden: true, onsubmit: (e) => this.apply(e) },
      this.startIn, h("span", { class: "subtle" }, "→"), this.endIn,
      button("Apply", { type: "submit", class: "btn-sm" }));
    this.els = [this.select, this.range];
  }

  /** Show a state (from the URL). */
  sync(s) {
    this.select.value = s.window;
    this.range.hidden = s.window !== "custom";
    if (s.window === "custom") {
      this.startIn.value = asInput(s.start);
      this.endIn.value = asInput(s.end);
    }
  }

  picked() {
    const v = this.select.value;
    if (v === "custom") {
      this.range.hidden = false;
      const now = new Date();
      this.startIn.value ||= fmt.localInput(new Date(now.getTime() - 86400_000));
      this.endIn.value ||= fmt.localInput(now);
      this.startIn.focus();
      return;
    }
    this.onChange({ window: v, start: "", end: "" });
  }

  apply(event) {
    event.preventDefault();
    const start = this.startIn.value;
    const end = this.endIn.value;
    if (!start || !end || end <= start) {
      this.onError("Pick a start and an end, the end after the start.");
      return;
    }
    this.onChange({ window: "custom", start, end });
  }
}
