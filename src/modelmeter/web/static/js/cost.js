// The drawer's Cost Breakdown. Amounts are shown exactly (costs are whole picodollars: at most 12
// decimals), all at one number of decimals, so the components shown add up to the total shown,
// and a sum line says so. Rounding each to three significant digits did not add up.

import { h } from "./dom.js";
import * as fmt from "./format.js";

const MAX_DECIMALS = 12; // the ledger's unit is the picodollar

/** The fewest decimals (2 to 12) at which every amount is exact. */
export function decimalsFor(amounts) {
  for (let d = 2; d < MAX_DECIMALS; d += 1) {
    const scale = 10 ** d;
    if (amounts.every((a) => Math.abs(Math.round(a * scale) - a * scale) < 1e-6)) return d;
  }
  return MAX_DECIMALS;
}

/** "$0.002985" at `decimals` decimals. */
export function usdAt(v, decimals) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency: "USD",
    minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(v);
}

/** A record's total as the breakdown shows it (the Metrics section uses it too). */
export function exactSpend(rec) {
  return usdAt(rec.spend, decimalsFor([rec.spend, ...(rec.cost_breakdown || []).map((l) => l.cost)]));
}

function priceSource(source) {
  const parts = String(source || "unknown").split("+").map((p) => {
    if (p === "override") return "the deployment's price override";
    if (p === "local") return "the embedded model (free)";
    if (p === "unknown") return "no known price for this model";
    return p; // "genai-prices 0.2.3": the price catalog and its version
  });
  return parts.join(" and ");
}

export function costTable(rec) {
  const lines = rec.cost_breakdown || [];
  const priced = rec.priced_model ? h("p", { class: "subtle small", dataset: { role: "priced-model" } },
    "Priced as ", h("code", {}, rec.priced_model), ".") : null;
  if (!lines.length) return h("div", {}, h("p", { class: "subtle" }, `No cost: ${priceSource(rec.price_source)}.`), priced);
  const d = decimalsFor([rec.spend, ...lines.map((l) => l.cost)]);
  const scale = 10 ** d;
  const units = (v) => Math.round(v * scale); // integers: the sum is exact
  const sum = lines.reduce((acc, l) => acc + units(l.cost), 0);
  const adds = sum === units(rec.spend);
  return h("div", {},
    h("table", { class: "mini-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Component"), h("th", { class: "num" }, "Tokens"),
        h("th", { class: "num" }, "Price"), h("th", { class: "num" }, "Cost"))),
      h("tbody", {}, lines.map((l) => h("tr", {},
        h("td", {}, l.component.replaceAll("_", " ")), h("td", { class: "num" }, fmt.int(l.tokens)),
        h("td", { class: "num" }, fmt.rate(l.usd_per_million)),
        h("td", { class: "num", dataset: { role: "cost" } }, usdAt(l.cost, d))))),
      h("tfoot", {}, h("tr", {}, h("td", { colspan: "3" }, "Total"),
        h("td", { class: "num", dataset: { role: "total" } }, usdAt(rec.spend, d))))),
    h("p", { class: `cost-sum num ${adds ? "" : "tone-bad"}`, dataset: { role: "sum" } },
      lines.map((l) => usdAt(l.cost, d)).join(" + "), adds ? " = " : " ≠ ", usdAt(rec.spend, d),
      adds ? "" : " (the components do not add up to the recorded total)"),
    priced,
    h("p", { class: "subtle small" }, `Prices from ${priceSource(rec.price_source)}, in USD per million tokens.`));
}
