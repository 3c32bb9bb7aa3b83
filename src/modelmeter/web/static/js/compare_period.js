// The compare view's second period: the same window as the first side, the window just before it,
// the same window 1 or 4 weeks earlier, or a chosen range. In the URL as b_period (and, for a
// chosen range, b_start / b_end: instants with their zone, so a shared link shows the same range
// to a viewer in another time zone).

import { button, h } from "./dom.js";
import * as fmt from "./format.js";

export const PERIODS = [
  ["current", "same window"],
  ["previous", "the window before"],
  ["week", "1 week earlier"],
  ["weeks4", "4 weeks earlier"],
  ["custom", "a chosen range"],
];
const WEEKS = { week: 1, weeks4: 4 };
const LABELS = { previous: "previous window", week: "1 week earlier", weeks4: "4 weeks earlier", custom: "chosen range" };

/** The period part of the compare view's state, from its URL. */
export function readPeriod(params) {
  const p = params.get("b_period");
  return { bPeriod: PERIODS.some(([v]) => v === p) ? p : "current",
    bStart: params.get("b_start") || "", bEnd: params.get("b_end") || "" };
}

/** Write it into URL parameters (the default, "current", is left out). */
export function writePeriod(q, s) {
  if (s.bPeriod === "current") return;
  q.set("b_period", s.bPeriod);
  if (s.bPeriod === "custom") {
    q.set("b_start", s.bStart);
    q.set("b_end", s.bEnd);
  }
}

/** What is wrong with a chosen range, or null. */
export function rangeProblem(s) {
  if (s.bPeriod !== "custom") return null;
  const [a, b] = [Date.parse(s.bStart), Date.parse(s.bEnd)];
  if (Number.isNaN(a) || Number.isNaN(b)) return "The second period needs a start and an end.";
  if (b <= a) return "The second period must end after it starts.";
  return null;
}

/** The pill beside side b's name: which period it shows (none for the same window). */
export function periodPill(kind) {
  return LABELS[kind] || null;
}

/** The same wall-clock times `weeks` weeks earlier in the viewer's zone (a week across a change
 *  to or from summer time is 7 days of the calendar, not 168 hours). */
function weeksEarlier(iso, weeks) {
  const d = new Date(iso);
  d.setDate(d.getDate() - 7 * weeks);
  return d.toISOString();
}

/** Side b's usage parameters, given side a's summary (its exact start and end) and the state. */
export function periodParams(kind, s, summaryA, tz) {
  if (kind === "previous") return { tz, start: summaryA.previous.start, end: summaryA.previous.end };
  if (WEEKS[kind]) return { tz, start: weeksEarlier(summaryA.start, WEEKS[kind]), end: weeksEarlier(summaryA.end, WEEKS[kind]) };
  if (kind === "custom") return { tz, start: s.bStart, end: s.bEnd };
  return null; // the same parameters as side a
}

/** The select and, for a chosen range, its two inputs. `onChange(changes)`; `onError(message)`. */
export class PeriodControl {
  constructor(onChange, onError) {
    this.onChange = onChange;
    this.onError = onError;
    this.select = h("select", { class: "select", id: "compare-period", "aria-label": "Period of the second",
      onchange: () => this.picked() }, PERIODS.map(([v, label]) => h("option", { value: v }, label)));
    this.startIn = h("input", { type: "datetime-local", class: "input", id: "compare-b-start",
      "aria-label": `Second period from (${fmt.timeZone()})` });
    this.endIn = h("input", { type: "datetime-local", class: "input", id: "compare-b-end",
      "aria-label": `Second period to (${fmt.timeZone()})` });
    this.range = h("form", { class: "range", id: "compare-b-range", hidden: true, onsubmit: (e) => this.apply(e) },
      this.startIn, h("span", { class: "subtle" }, "→"), this.endIn,
      h("span", { class: "subtle small" }, fmt.timeZone()), button("Apply", { type: "submit", class: "btn-sm" }));
  }

  sync(s) {
    this.select.value = s.bPeriod;
    this.range.hidden = s.bPeriod !== "custom";
    if (s.bPeriod === "custom") {
      for (const [input, value] of [[this.startIn, s.bStart], [this.endIn, s.bEnd]]) {
        const t = Date.parse(value);
        input.value = Number.isNaN(t) ? "" : fmt.localInput(new Date(t));
      }
    }
  }

  picked() {
    if (this.select.value !== "custom") {
      this.onChange({ bPeriod: this.select.value });
      return;
    }
    this.range.hidden = false;
    const now = Date.now();
    this.startIn.value ||= fmt.localInput(new Date(now - 8 * 86400_000));
    this.endIn.value ||= fmt.localInput(new Date(now - 7 * 86400_000));
    this.startIn.focus();
  }

  apply(event) {
    event.preventDefault();
    // datetime-local values are wall times in the viewer's zone: Date reads them so
    const [a, b] = [this.startIn.value, this.endIn.value].map((v) => (v ? new Date(v) : null));
    const s = { bPeriod: "custom", bStart: a ? a.toISOString() : "", bEnd: b ? b.toISOString() : "" };
    const problem = rangeProblem(s);
    if (problem) {
      this.onError(problem);
      return;
    }
    this.onChange(s);
  }
}
