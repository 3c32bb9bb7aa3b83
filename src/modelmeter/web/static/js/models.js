// The Models page: one card per deployment with its last 24 hours, and the deploy form.

import { banner, firingByDeployment } from "./alerts.js";
import { api } from "./api.js";
import { DeployForm } from "./deploy.js";
import { append, button, clear, h, pill, skeleton } from "./dom.js";
import * as fmt from "./format.js";
import { modelPath } from "./router.js";

export class ModelsPage {
  constructor(root) {
    this.root = root;
    this.alive = true;
    document.title = "Models · modelmeter";
    this.grid = h("div", { class: "model-grid", "aria-busy": "true" },
      [1, 2, 3].map(() => skeletonCard()));
    this.form = new DeployForm((dep) => this.added(dep));
    const deployBtn = button("Deploy a model", { class: "btn-primary", id: "deploy-open",
      onclick: () => this.form.toggle() }, "plus");
    // dom.append skips a null child (no "removed" note); Element.append would write "null"
    append(clear(root), [
      h("div", { class: "page-head" },
        h("div", {},
          h("h1", {}, "Models"),
          h("p", { class: "subtle" }, "Deployments served by this gateway at ",
            h("code", {}, `${window.location.origin}/v1`), ". Open one to see its usage.")),
        deployBtn),
      removedNote(),
      this.form.el,
      this.grid,
    ]);
    this.load();
  }

  destroy() {
    this.alive = false;
  }

  async load() {
    try {
      const [{ data }, firing] = await Promise.all([api.deployments(), firingByDeployment()]);
      if (!this.alive) return;
      this.grid.removeAttribute("aria-busy");
      clear(this.grid);
      if (!data.length) {
        this.grid.append(h("div", { class: "empty-panel" },
          h("h3", {}, "No deployments yet"),
          h("p", { class: "subtle" }, "Deploy a model to get an OpenAI-compatible endpoint that records usage.")));
        return;
      }
      for (const dep of data) this.grid.append(card(dep, firing.get(dep.name)));
    } catch (err) {
      if (!this.alive) return;
      clear(this.grid).append(h("div", { class: "callout callout-error", role: "alert" },
        `Could not load the deployments: ${err.message}`));
    }
  }

  added(dep) {
    const empty = this.grid.querySelector(".empty-panel");
    if (empty) empty.remove();
    const el = card({ ...dep, reachable: null, last_24h: { requests: 0, failed: 0, error_rate: null, spend: 0 } });
    el.classList.add("flash");
    this.grid.append(el);
  }
}

/** After "Remove" on a model card, which comes back here: say what was done. */
function removedNote() {
  const name = history.state && history.state.removed;
  if (!name) return null;
  return h("div", { class: "callout callout-info", role: "status", dataset: { role: "removed" } },
    "Removed ", h("code", {}, String(name)), ". Its recorded requests stay in the database.");
}

function reachability(reachable) {
  if (reachable == null) return h("span", { class: "reach reach-unknown" }, h("span", { class: "dot" }), "Checking…");
  return reachable
    ? h("span", { class: "reach reach-ok", title: "The upstream answered GET /models" }, h("span", { class: "dot" }), "Reachable")
    : h("span", { class: "reach reach-down", title: "The upstream did not answer GET /models" }, h("span", { class: "dot" }), "Unreachable");
}

function card(dep, firing = null) {
  const day = dep.last_24h || {};
  const errorRate = day.error_rate;
  return h("article", { class: `model-card${firing ? " has-alert" : ""}`, dataset: { name: dep.name } },
    firing ? banner(firing) : null,
    h("div", { class: "model-card-head" },
      h("a", { class: "model-name stretched", href: modelPath(dep.name), "data-link": true }, dep.name),
      reachability(dep.reachable)),
    h("div", { class: "model-card-meta" },
      pill(dep.provider || "openai", "neutral"),
      dep.local ? pill("embedded", "accent") : null,
      h("span", { class: "meta-model", title: "Upstream model" }, dep.model)),
    h("div", { class: "model-card-base mono", title: dep.api_base || "" }, dep.api_base || "embedded model"),
    dep.upstream_health ? upstreamHealth(dep.upstream_health) : null,
    h("dl", { class: "model-card-stats" },
      stat("Requests · 24h", fmt.int(day.requests || 0), "requests"),
      stat("Error rate", fmt.pct(errorRate), "error-rate", errorRate > 0.05 ? "bad" : ""),
      stat("Spend · 24h", fmt.usd(day.spend || 0), "spend")));
}

/** A routed deployment's upstreams: state (healthy, cooling down until …, out), calls in flight, last error. */
function upstreamHealth(list) {
  const said = (u) => {
    if (u.state === "cooling") return `cooling down until ${fmt.wallClock(new Date(u.until * 1000).toISOString())}`;
    if (u.state === "probing") return "cooled down: next call probes it";
    if (u.state === "out") return "out until reset";
    return "healthy";
  };
  return h("ul", { class: "upstream-health", "aria-label": "Upstreams" }, list.map((u) =>
    h("li", { class: `upstream upstream-${u.state}`, dataset: { upstream: u.name, state: u.state } },
      h("span", { class: "dot", "aria-hidden": "true" }),
      h("span", { class: "upstream-name mono", title: u.name }, u.name),
      h("span", { class: "upstream-state small" }, said(u)),
      h("span", { class: "upstream-flight small subtle num", title: "Calls in flight" }, `${fmt.int(u.in_flight)} in flight`),
      u.last_error && u.state !== "healthy"
        ? h("span", { class: "upstream-error small", dataset: { role: "upstream-error" } }, `last error: ${u.last_error}`) : null)));
}

function stat(label, value, key, tone = "") {
  return h("div", { class: `stat ${tone}`, dataset: { stat: key } },
    h("dt", {}, label), h("dd", { class: "num" }, value));
}

function skeletonCard() {
  return h("article", { class: "model-card is-loading" },
    skeleton("w-40 h-5"), skeleton("w-60"), skeleton("w-80"),
    h("div", { class: "model-card-stats" }, skeleton("w-70 h-8"), skeleton("w-70 h-8"), skeleton("w-70 h-8")));
}
