// The four summary cards: Requests, Tokens, Spend, Avg Latency (the usage API's numbers), each
// with its change against the previous window of the same length and a sparkline of the window.
// Clicking a card shows "these requests": the log, scrolled to, with the card's filter.

import { h, replace, skeleton } from "./dom.js";
import * as fmt from "./format.js";
import { sparkline } from "./sparkline.js";

const CARDS = [
  { key: "requests", title: "Requests", figure: "requests", series: (b) => b.requests },
  { key: "tokens", title: "Tokens", figure: "total_tokens", series: (b) => b.total_tokens },
  { key: "spend", title: "Spend", figure: "spend", series: (b) => b.spend },
  { key: "latency", title: "Avg Latency", figure: "avg_latency_ms", series: (b) => b.avg_latency_ms },
];
// Up is good for traffic; for latency, up is bad. Spend and tokens are neutral (shown, not judged).
const TONE = { requests: 1, tokens: 0, spend: 0, latency: -1 };

export class Cards {
  /** `onOpen(key, filters)`: a card was clicked (or a filter in it, e.g. "failed"). */
  constructor(onOpen = () => {}) {
    this.summary = null;
    this.parts = {};
    this.el = h("section", { class: "cards", "aria-label": "Summary" }, CARDS.map(({ key, title }) => {
      const value = h("div", { class: "card-value num", dataset: { role: "value" } });
      const sub = h("div", { class: "card-sub", dataset: { role: "sub" } });
      const delta = h("span", { class: "card-delta", dataset: { role: "delta" } });
      const spark = h("div", { class: "card-spark", dataset: { role: "spark" }, "aria-hidden": "true" });
      this.parts[key] = { value, sub, delta, spark };
      const open = (event) => { // the whole card, or a filter in it (e.g. "3 failed")
        const filter = event.target.closest("[data-filter]");
        onOpen(key, { status: filter ? filter.dataset.filter : "" });
      };
      return h("div", { class: "card metric", dataset: { card: key }, role: "button", tabindex: "0",
        title: "View these requests",
        onclick: open, onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(e); } } },
      h("div", { class: "card-head" }, h("div", { class: "card-title" }, title), delta), value, sub, spark);
    }));
    this.loading();
  }

  loading() {
    for (const { value, sub, delta, spark } of Object.values(this.parts)) {
      value.replaceChildren(skeleton("w-50 h-7"));
      sub.replaceChildren(skeleton("w-70"));
      delta.replaceChildren();
      spark.replaceChildren();
    }
  }

  /** The sparkline of each card, from the timeseries (GET …/usage/timeseries). */
  spark(ts) {
    for (const { key, series } of CARDS) {
      this.parts[key].spark.replaceChildren(sparkline(ts.buckets.map(series)));
    }
  }

  /** ▲/▼ with the relative change against the previous window (the usage API's `change`). */
  deltas(s) {
    for (const { key, figure } of CARDS) {
      const el = this.parts[key].delta;
      const change = s.change ? s.change[figure] : null;
      const before = s.previous ? s.previous[figure] : null;
      el.dataset.value = change == null ? "" : String(change);
      el.className = "card-delta";
      if (change == null) {
        el.textContent = before == null || !s.previous.requests ? "" : "—";
        el.title = s.previous && !s.previous.requests ? "No requests in the previous window" : "";
        continue;
      }
      const up = change > 0;
      const tone = TONE[key] * (up ? 1 : -1);
      if (change !== 0) el.classList.add(tone > 0 ? "tone-good" : tone < 0 ? "tone-bad" : "tone-neutral");
      el.textContent = `${change === 0 ? "" : up ? "▲ " : "▼ "}${fmt.pct(Math.abs(change))}`;
      el.title = `${up ? "Up" : change < 0 ? "Down" : "No change"} against the previous ${fmt.duration(
        Math.round((Date.parse(s.previous.end) - Date.parse(s.previous.start)) / 1000))}`;
    }
  }

  /** Show a usage summary (GET …/usage). */
  render(s) {
    this.summary = { ...s };
    const set = (key, raw, text, subParts) => {
      const { value, sub } = this.parts[key];
      value.textContent = text;
      value.dataset.value = raw == null ? "" : String(raw);
      value.title = key === "tokens" ? `${fmt.int(raw)} tokens` : text;
      replace(sub, subParts);
    };
    const rate = s.success_rate;
    set("requests", s.requests, fmt.int(s.requests), [
      h("span", { class: rate == null ? "muted" : rate < 0.95 ? "tone-bad" : "tone-good", dataset: { value: rate ?? "" } },
        rate == null ? "No requests" : `${fmt.pct(rate)} success`),
      s.failed ? h("a", { class: "muted link-filter", href: "#requests-log", dataset: { filter: "error" },
        title: "View the failed requests", onclick: (e) => e.preventDefault() }, ` · ${fmt.int(s.failed)} failed`) : null,
    ]);
    set("tokens", s.total_tokens, fmt.tokens(s.total_tokens), [
      h("span", { dataset: { value: s.prompt_tokens }, title: `${fmt.int(s.prompt_tokens)} input tokens` },
        `${fmt.tokens(s.prompt_tokens)} in`),
      h("span", { class: "sep" }, " / "),
      h("span", { dataset: { value: s.completion_tokens }, title: `${fmt.int(s.completion_tokens)} output tokens` },
        `${fmt.tokens(s.completion_tokens)} out`),
    ]);
    const perReq = s.requests ? s.spend / s.requests : null;
    set("spend", s.spend, fmt.usd(s.spend), [
      h("span", {}, perReq == null ? "No cost yet" : `${fmt.usd(perReq)} per request`),
    ]);
    set("latency", s.avg_latency_ms, fmt.ms(s.avg_latency_ms), [
      h("span", { dataset: { value: s.p95_latency_ms ?? "" } }, `p95 ${fmt.ms(s.p95_latency_ms)}`),
    ]);
    if ("change" in s) this.deltas(s);
  }

  /** A request that just finished (Live): add it to the totals; p95 waits for the next refresh. */
  add(row) {
    const s = this.summary;
    if (!s) return;
    const ok = row.status === "success";
    const n = s.requests + 1;
    const avg = s.avg_latency_ms == null ? row.latency_ms : (s.avg_latency_ms * s.requests + row.latency_ms) / n;
    this.render({
      ...s,
      requests: n,
      succeeded: s.succeeded + (ok ? 1 : 0),
      failed: s.failed + (ok ? 0 : 1),
      success_rate: (s.succeeded + (ok ? 1 : 0)) / n,
      prompt_tokens: s.prompt_tokens + row.prompt_tokens,
      completion_tokens: s.completion_tokens + row.completion_tokens,
      total_tokens: s.total_tokens + row.total_tokens,
      spend: s.spend + row.spend,
      avg_latency_ms: Math.round(avg * 1000) / 1000,
      p95_latency_ms: s.p95_latency_ms ?? row.latency_ms,
    });
  }
}
