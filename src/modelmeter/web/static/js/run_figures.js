// The figures of a stored run (bench or eval report), shared by the run banner, the Runs page and
// the comparison: what each metric is called, how it is shown, and which way is better.

import * as fmt from "./format.js";

export const STATUS_PILL = { running: "accent", done: "success", stopped: "neutral", failed: "error", lost: "error" };

const two = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const dist = (key, q) => (r) => (r[key] || {})[q];

/** [key, label, get(report), format, better] — better: "up" (more is better) or "down". */
export const METRICS = [
  ["req_s", "Requests/s", (r) => r.request_throughput, (v) => two.format(v), "up"],
  ["tok_s", "Output tokens/s", (r) => r.output_token_throughput, (v) => two.format(v), "up"],
  ["ttft_p50", "TTFT p50", dist("ttft_ms", "p50"), fmt.ms, "down"],
  ["ttft_p99", "TTFT p99", dist("ttft_ms", "p99"), fmt.ms, "down"],
  ["itl_p50", "ITL p50", dist("itl_ms", "p50"), fmt.ms, "down"],
  ["itl_p99", "ITL p99", dist("itl_ms", "p99"), fmt.ms, "down"],
  ["tpot_p50", "TPOT p50", dist("tpot_ms", "p50"), fmt.ms, "down"],
  ["tpot_p99", "TPOT p99", dist("tpot_ms", "p99"), fmt.ms, "down"],
  ["e2e_p50", "E2E p50", dist("e2e_ms", "p50"), fmt.ms, "down"],
  ["e2e_p99", "E2E p99", dist("e2e_ms", "p99"), fmt.ms, "down"],
  ["success", "Success rate", successRate, fmt.pct, "up"],
  ["accuracy", "Accuracy", (r) => r.accuracy, fmt.pct, "up"],
  ["cost", "Cost (server)", cost, fmt.usd, "down"],
];

function successRate(r) {
  if (r.success_rate != null) return r.success_rate;
  if (r.items) return r.answered / r.items;
  return null;
}

/** The cost from the server's records: a bench's comparison, an eval's total. */
export function cost(r) {
  if (r.cost_total != null) return r.cost_total;
  return r.server_comparison ? r.server_comparison.spend : null;
}

export function value(run, metric) {
  const r = run.report || {};
  const v = metric[2](r);
  return v == null || Number.isNaN(v) ? null : v;
}

export function shown(run, metric) {
  const v = value(run, metric);
  return v == null ? fmt.DASH : metric[3](v);
}

/** "50 requests, concurrency 4" / "arithmetic, 50 items". */
export function shape(run) {
  const p = run.params || {};
  if (run.kind === "eval") return `${p.dataset || "eval"}${p.grader ? `, grader ${p.grader}` : ""}`;
  return [p.load, p.stream === false ? "not streamed" : null].filter(Boolean).join(", ") || fmt.DASH;
}

/** One line of figures for a list. */
export function headline(run) {
  const r = run.report || {};
  if (r.status === "running") return "running";
  if (r.status === "failed") return r.error || "failed";
  if (run.kind === "eval") return `accuracy ${fmt.pct(r.accuracy)} · ${r.items ?? 0} items`;
  if (run.kind === "sweep") return `${(r.points || []).filter((p) => p.status === "done").length} levels measured`;
  return `${two.format(r.request_throughput || 0)} req/s · TTFT p50 ${fmt.ms(dist("ttft_ms", "p50")(r))}`;
}

/** The delta of b against a, and whether it is better ("good"), worse ("bad") or equal. */
export function delta(a, b, metric) {
  const va = value(a, metric);
  const vb = value(b, metric);
  if (va == null || vb == null) return { text: fmt.DASH, tone: "" };
  const diff = vb - va;
  if (diff === 0) return { text: "=", tone: "" };
  const better = metric[4] === "up" ? diff > 0 : diff < 0;
  const rel = va !== 0 ? ` (${diff > 0 ? "+" : ""}${two.format((diff / Math.abs(va)) * 100)}%)` : "";
  const abs = metric[3](Math.abs(diff));
  return { text: `${diff > 0 ? "+" : "−"}${abs}${rel}`, tone: better ? "good" : "bad" };
}
