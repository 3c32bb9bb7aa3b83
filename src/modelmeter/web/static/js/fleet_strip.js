// The Models page's totals across every deployment for the window (GET /api/fleet/usage): requests,
// tokens, spend and error rate, each with its change against the previous window of the same length,
// and the window itself in the viewer's time zone.

import { h, skeleton } from "./dom.js";
import * as fmt from "./format.js";

const ITEMS = [
  // key, title, figure, formatter, tone of "up" (traffic up is good, errors up are bad)
  ["requests", "Requests", "requests", fmt.int, 1],
  ["tokens", "Tokens", "total_tokens", fmt.tokens, 0],
  ["spend", "Spend", "spend", fmt.usd, 0],
  ["error-rate", "Error rate", "error_rate", fmt.pct, -1],
];

export class FleetStrip {
  constructor() {
    this.parts = {};
    this.range = h("p", { class: "fleet-range subtle small", dataset: { role: "range" } });
    this.el = h("section", { class: "fleet", "aria-label": "Totals across all models" },
      h("div", { class: "fleet-head" }, h("h2", { class: "fleet-title" }, "All models"), this.range),
      h("dl", { class: "fleet-totals" }, ITEMS.map(([key, title]) => {
        const value = h("dd", { class: "fleet-value num", dataset: { role: "value" } }, skeleton("w-50 h-7"));
        const delta = h("dd", { class: "card-delta", dataset: { role: "delta" } });
        this.parts[key] = { value, delta };
        return h("div", { class: "fleet-item", dataset: { total: key } }, h("dt", { class: "card-title" }, title), value, delta);
      })));
  }

  /** Show the fleet answer's totals, previous window and window. */
  render(f) {
    for (const [key, , figure, format, tone] of ITEMS) {
      const { value, delta } = this.parts[key];
      const raw = f.totals[figure];
      value.textContent = format(raw);
      value.dataset.value = raw == null ? "" : String(raw);
      value.title = key === "tokens" && raw != null ? `${fmt.int(raw)} tokens` : "";
      const change = f.change[figure];
      delta.className = "card-delta";
      delta.dataset.value = change == null ? "" : String(change);
      if (change == null) {
        delta.textContent = f.previous.requests ? "—" : "";
        delta.title = f.previous.requests ? "" : "No requests in the previous window";
        continue;
      }
      const up = change > 0;
      if (change !== 0 && tone) delta.classList.add(tone * (up ? 1 : -1) > 0 ? "tone-good" : "tone-bad");
      delta.textContent = `${change === 0 ? "" : up ? "▲ " : "▼ "}${fmt.pct(Math.abs(change))}`;
      delta.title = `${up ? "Up" : change < 0 ? "Down" : "No change"} against the previous ${fmt.duration(
        Math.round((Date.parse(f.previous.end) - Date.parse(f.previous.start)) / 1000))}`;
    }
    this.range.replaceChildren(periodLabel(f.start, f.end));
  }

  error(message) {
    for (const { value, delta } of Object.values(this.parts)) {
      value.textContent = fmt.DASH;
      value.dataset.value = "";
      delta.textContent = "";
    }
    this.range.textContent = message;
  }
}

/** "Mar 4, 17:04:00 – Mar 11, 17:04:00 (Europe/Paris)": a period in the viewer's time zone, labelled. */
export function periodLabel(start, end) {
  return h("span", { dataset: { role: "period" } },
    h("time", { datetime: start }, fmt.time(start)), " – ", h("time", { datetime: end }, fmt.time(end)),
    ` (${fmt.timeZone()})`);
}
