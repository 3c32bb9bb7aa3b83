// The Usage tab's split by upstream (routed deployments, issue 15): requests, success, average
// latency and spend per upstream that answered, and how many calls were rescued (answered after a
// failed attempt). Hidden for a deployment with one upstream (the summary has no "upstreams").

import { h } from "./dom.js";
import * as fmt from "./format.js";

export class UpstreamSplit {
  constructor() {
    this.body = h("tbody", {});
    this.note = h("p", { class: "subtle small", dataset: { role: "rescued" } });
    this.el = h("section", { class: "card upstream-split", "aria-label": "By upstream", hidden: true },
      h("div", { class: "card-title" }, "By upstream"), this.note,
      h("div", { class: "split-scroll" }, h("table", { class: "split-table" },
        h("thead", {}, h("tr", {}, ["Upstream", "Requests", "Share", "Succeeded", "Avg latency", "Spend"].map((t) => h("th", { scope: "col" }, t)))),
        this.body)));
  }

  render(summary) {
    const split = summary && summary.upstreams;
    this.el.hidden = !split;
    if (!split) return;
    const total = split.data.reduce((n, d) => n + d.requests, 0);
    this.note.textContent = `${fmt.int(split.rescued)} rescued (answered after a failed attempt) in this window.`;
    this.body.replaceChildren(...(split.data.length ? split.data.map((d) => h("tr", { dataset: { upstream: d.upstream ?? "" } },
      h("td", { class: "mono" }, d.upstream ?? "none answered"),
      h("td", { class: "num" }, fmt.int(d.requests)),
      h("td", { class: "num" }, fmt.pct(total ? d.requests / total : null)),
      h("td", { class: "num" }, fmt.int(d.succeeded)),
      h("td", { class: "num" }, fmt.ms(d.avg_latency_ms)),
      h("td", { class: "num" }, fmt.usd(d.spend)))) : [h("tr", {}, h("td", { colspan: "6", class: "subtle" }, "No calls in this window."))]));
  }
}
