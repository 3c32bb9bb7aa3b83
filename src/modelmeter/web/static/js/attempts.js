// A routed call's attempts (issue 15) as a small timeline: one row per upstream tried, in order,
// its bar as long as its share of the call's time; the answer the client got is marked "served".
// Every value is text (h() makes text nodes): an upstream's error message is never markup.

import { h, pill } from "./dom.js";
import * as fmt from "./format.js";
import { usdAt, decimalsFor } from "./cost.js";

function sized(el, width) {
  el.style.width = width; // CSSOM, not a style attribute: fine under a strict CSP
  return el;
}

function outcome(a) {
  if (a.served) return pill(a.status ? `HTTP ${a.status} · served` : "served", a.status && a.status >= 400 ? "error" : "success");
  return pill(a.status ? `HTTP ${a.status}` : "no answer", "error");
}

export function attemptsTimeline(rec) {
  const attempts = rec.attempts || [];
  const longest = Math.max(...attempts.map((a) => a.latency_ms || 0), 1);
  const d = decimalsFor([rec.spend, ...attempts.map((a) => a.cost || 0)]);
  const rows = attempts.map((a, i) => h("li", { class: `attempt${a.served ? " attempt-served" : ""}`, dataset: { role: "attempt", upstream: a.upstream } },
    h("div", { class: "attempt-head" },
      h("span", { class: "attempt-n num subtle" }, `${i + 1}`),
      h("span", { class: "attempt-upstream mono", title: a.upstream }, a.upstream),
      outcome(a),
      h("span", { class: "attempt-ms num subtle" }, fmt.ms(a.latency_ms))),
    h("div", { class: "attempt-bar", "aria-hidden": "true" },
      sized(h("span", { class: a.served ? "attempt-fill-ok" : "attempt-fill-bad" }), `${Math.max((a.latency_ms || 0) / longest * 100, 2)}%`)),
    a.error && !a.served ? h("div", { class: "attempt-error small", dataset: { role: "attempt-error" } }, a.error) : null,
    a.tokens != null ? h("div", { class: "attempt-cost small subtle num" },
      `${fmt.int(a.tokens)} tokens · ${usdAt(a.cost || 0, d)}`) : null));
  return h("div", { class: "attempts" },
    h("p", { class: "subtle small" }, attempts.length > 1
      ? `${attempts.length} attempts; served by ${rec.served_by || "none (no upstream answered)"}.`
      : `Served by ${rec.served_by || "none"} on the first attempt.`),
    h("ol", { class: "attempt-list", "aria-label": "Attempts" }, rows));
}
