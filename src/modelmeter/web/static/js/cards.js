// The four summary cards: Requests, Tokens, Spend, Avg Latency (the usage API's numbers).

import { h, replace, skeleton } from "./dom.js";
import * as fmt from "./format.js";

const CARDS = [
  { key: "requests", title: "Requests" },
  { key: "tokens", title: "Tokens" },
  { key: "spend", title: "Spend" },
  { key: "latency", title: "Avg Latency" },
];

export class Cards {
  constructor() {
    this.summary = null;
    this.parts = {};
    this.el = h("section", { class: "cards", "aria-label": "Summary" }, CARDS.map(({ key, title }) => {
      const value = h("div", { class: "card-value num", dataset: { role: "value" } });
      const sub = h("div", { class: "card-sub", dataset: { role: "sub" } });
      this.parts[key] = { value, sub };
      return h("div", { class: "card metric", dataset: { card: key } },
        h("div", { class: "card-title" }, title), value, sub);
    }));
    this.loading();
  }

  loading() {
    for (const { value, sub } of Object.values(this.parts)) {
      value.replaceChildren(skeleton("w-50 h-7"));
      sub.replaceChildren(skeleton("w-70"));
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
      s.failed ? h("span", { class: "muted" }, ` · ${fmt.int(s.failed)} failed`) : null,
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
