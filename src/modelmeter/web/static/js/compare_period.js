// The period of one side of the compare view: the page's window, the window just before it, the
// same window 1 or 4 weeks earlier, or a chosen range. Both sides have one, the same control made
// twice: in the URL as a_period / b_period (and, for a chosen range, a_start / a_end or b_start /
// b_end: instants with their zone, so a shared link shows the same range to a viewer in another
// time zone). Every choice but a chosen range is relative to the page's window (the toolbar's
// window control), the same for both sides, so "a: 1 week earlier, b: same window" is this week
// against the last.

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
const ORDINAL = { a: "first", b: "second" };

/** Side `side`'s period ({kind, start, end}) from the URL. */
export function readPeriod(params, side) {
  const p = params.get(`${side}_period`);
  return { kind: PERIODS.some(([v]) => v === p) ? p : "current",
    start: params.get(`${side}_start`) || "", end: params.get(`${side}_end`) || "" };
}

/** Write it into URL parameters (the default, "current", is left out). */
export function writePeriod(q, side, period) {
  if (period.kind === "current") return;
  q.set(`${side}_period`, period.kind);
  if (period.kind === "custom") {
    q.set(`${side}_start`, period.start);
    q.set(`${side}_end`, period.end);
  }
}

/** What is wrong with side `side`'s chosen range, or null. */
export function rangeProblem(side, period) {
  if (period.kind !== "custom") return null;
  const [a, b] = [Date.parse(period.start), Date.parse(period.end)];
  if (Number.isNaN(a) || Number.isNaN(b)) return `The ${ORDINAL[side]} period needs a start and an end.`;
  if (b <= a) return `The ${ORDINAL[side]} period must end after it starts.`;
  return null;
}

/** The pill beside a side's name: which period it shows (none for the page's window). */
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

/** A side's usage parameters for `period`, given the page window's summary (its exact start, end
 *  and previous window; unused for a chosen range); null: the window's own parameters. */
export function periodParams(period, summary, tz) {
  const kind = period.kind;
  if (kind === "previous") return { tz, start: summary.previous.start, end: summary.previous.end };
  if (WEEKS[kind]) return { tz, start: weeksEarlier(summary.start, WEEKS[kind]), end: weeksEarlier(summary.end, WEEKS[kind]) };
  if (kind === "custom") return { tz, start: period.start, end: period.end };
  return null;
}

/** One side's select and, for a chosen range, its two inputs (ids compare-<side>-period, -range,
 *  -start, -end). `onChange(period)`; `onError(message)`: a range that is not one. */
export class PeriodControl {
  constructor(side, onChange, onError) {
    this.side = side;
    this.onChange = onChange;
    this.onError = onError;
    const which = ORDINAL[side];
    const zone = fmt.timeZone();
    this.select = h("select", { class: "select", id: `compare-${side}-period`, "aria-label": `Period of the ${which} model`,
      onchange: () => this.picked() }, PERIODS.map(([v, label]) => h("option", { value: v }, label)));
    this.startIn = h("input", { type: "datetime-local", class: "input", id: `compare-${side}-start`,
      "aria-label": `${cap(which)} period from (${zone})` });
    this.endIn = h("input", { type: "datetime-local", class: "input", id: `compare-${side}-end`,
      "aria-label": `${cap(which)} period to (${zone})` });
    this.range = h("form", { class: "range", id: `compare-${side}-range`, hidden: true, onsubmit: (e) => this.apply(e) },
      this.startIn, h("span", { class: "subtle", "aria-hidden": "true" }, "→"), this.endIn,
      h("span", { class: "subtle small" }, zone), button("Apply", { type: "submit", class: "btn-sm" }));
    this.els = [this.select, this.range];
  }

  sync(period) {
    this.select.value = period.kind;
    this.range.hidden = period.kind !== "custom";
    if (period.kind === "custom") {
      for (const [input, value] of [[this.startIn, period.start], [this.endIn, period.end]]) {
        const t = Date.parse(value);
        input.value = Number.isNaN(t) ? "" : fmt.localInput(new Date(t));
      }
    }
  }

  picked() {
    if (this.select.value !== "custom") {
      this.onChange({ kind: this.select.value, start: "", end: "" });
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
    const period = { kind: "custom", start: a ? a.toISOString() : "", end: b ? b.toISOString() : "" };
    const problem = rangeProblem(this.side, period);
    if (problem) {
      this.onError(problem);
      return;
    }
    this.onChange(period);
  }
}

function cap(word) {
  return word[0].toUpperCase() + word.slice(1);
}
