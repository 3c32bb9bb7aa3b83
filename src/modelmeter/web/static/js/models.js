// The Models page, a fleet overview: a window (as the Usage tab's), the totals of every deployment,
// one card per deployment with its figures, a sparkline and its share of the spend, sortable; a
// link to the compare view; the deploy form.

import { banner, firingByDeployment } from "./alerts.js";
import { api } from "./api.js";
import { warmPlotly } from "./charts.js";
import { DeployForm } from "./deploy.js";
import { append, button, clear, h, pill, skeleton } from "./dom.js";
import { FleetStrip } from "./fleet_strip.js";
import * as fmt from "./format.js";
import { readSort, SortControl, sorted } from "./model_sort.js";
import { modelPath, setQuery } from "./router.js";
import { sparkline } from "./sparkline.js";
import { readWindow, WindowControl, windowParams, writeWindow } from "./window_control.js";

const DEFAULT_WINDOW = "24h";
const SHORT = { "1h": "1h", "24h": "24h", "7d": "7d", "30d": "30d", custom: "range" };

export class ModelsPage {
  constructor(root, params = new URLSearchParams(window.location.search)) {
    this.root = root;
    this.alive = true;
    this.deps = null;
    this.firing = new Map();
    this.fleet = null;
    this.seq = 0;
    this.state = { ...readWindow(params, DEFAULT_WINDOW), ...readSort(params) };
    this.windowCtl = new WindowControl((w) => this.set(w, true), (message) => this.strip.error(message));
    this.windowCtl.sync(this.state);
    this.sort = new SortControl(this.state, (s) => this.set(s, false));
    this.strip = new FleetStrip();
    this.compare = h("a", { class: "btn btn-sm", href: "/compare", "data-link": true, id: "compare-open" }, "Compare models");
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
      h("div", { class: "toolbar fleet-toolbar" },
        h("div", { class: "toolbar-left" }, this.windowCtl.els),
        h("div", { class: "toolbar-right" }, this.sort.el, this.compare)),
      this.strip.el,
      this.grid,
    ]);
    this.load();
  }

  destroy() {
    this.alive = false;
    if (this.unwarm) this.unwarm();
  }

  /** A new window (everything reloads) or a new order (the cards move). */
  set(changes, reload) {
    Object.assign(this.state, changes);
    const q = new URLSearchParams();
    writeWindow(q, this.state, DEFAULT_WINDOW);
    if (this.state.sort !== "name" || this.state.dir !== "asc") {
      q.set("sort", this.state.sort);
      q.set("dir", this.state.dir);
    }
    setQuery(q);
    if (reload) this.load();
    else this.render();
  }

  async load() {
    const seq = ++this.seq;
    try {
      const [{ data }, firing, fleet] = await Promise.all([
        this.deps ? { data: this.deps } : api.deployments(),
        this.deps ? this.firing : firingByDeployment(),
        api.fleet(windowParams(this.state))]);
      if (!this.alive || seq !== this.seq) return;
      this.deps = data;
      this.firing = firing;
      this.fleet = fleet;
      this.strip.render(fleet);
      this.render();
      // The charts' library, run while the user reads this page: opening a model then skips it.
      if (!this.unwarm) this.unwarm = warmPlotly();
    } catch (err) {
      if (!this.alive || seq !== this.seq) return;
      this.strip.error("Totals unavailable.");
      this.grid.removeAttribute("aria-busy");
      clear(this.grid).append(h("div", { class: "callout callout-error", role: "alert" },
        `Could not load the deployments: ${err.message}`));
    }
  }

  /** The deployments with their figures for the window, in the chosen order. */
  ordered() {
    const figures = new Map((this.fleet ? this.fleet.deployments : []).map((d) => [d.deployment, d]));
    return sorted(this.deps.map((dep) => ({ deployment: dep.name, dep, ...(figures.get(dep.name) || {}) })), this.state);
  }

  render() {
    if (!this.deps || !this.fleet) return;
    this.grid.removeAttribute("aria-busy");
    clear(this.grid);
    if (!this.deps.length) {
      this.grid.append(h("div", { class: "empty-panel" },
        h("h3", {}, "No deployments yet"),
        h("p", { class: "subtle" }, "Deploy a model to get an OpenAI-compatible endpoint that records usage.")));
      return;
    }
    this.compare.href = comparePath(this.ordered(), this.state);
    const label = SHORT[this.state.window];
    for (const item of this.ordered()) this.grid.append(card(item.dep, this.firing.get(item.dep.name), item, label));
  }

  added(dep) {
    const empty = this.grid.querySelector(".empty-panel");
    if (empty) empty.remove();
    if (this.deps) this.deps.push({ ...dep, reachable: null });
    const el = card({ ...dep, reachable: null }, null, null, SHORT[this.state.window]);
    el.classList.add("flash");
    this.grid.append(el);
  }
}

/** The compare view of the first two models in this order (one model: its two periods). */
function comparePath(items, state) {
  const q = new URLSearchParams();
  if (items[0]) q.set("a", items[0].deployment);
  if (items[1]) q.set("b", items[1].deployment);
  else if (items[0]) q.set("b_period", "previous");
  writeWindow(q, state);
  return `/compare?${q}`;
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

/** A deployment's card; `f`: its figures for the window (the fleet answer's), null while unknown. */
function card(dep, firing, f, label) {
  const errorRate = f ? f.error_rate : null;
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
      stat(`Requests · ${label}`, fmt.int(f ? f.requests : 0), "requests", f ? f.requests : 0),
      stat("Error rate", fmt.pct(errorRate), "error-rate", errorRate, errorRate > 0.05 ? "bad" : ""),
      stat(`Spend · ${label}`, fmt.usd(f ? f.spend : 0), "spend", f ? f.spend : 0)),
    trend(f));
}

/** The requests' sparkline over the window, and the card's share of the fleet's spend. */
function trend(f) {
  const share = f ? f.spend_share : null;
  const bar = h("span", { class: "share-fill" });
  bar.style.width = `${Math.round((share || 0) * 1000) / 10}%`;
  const peak = f && f.series.requests.length ? Math.max(...f.series.requests) : 0;
  return h("div", { class: "model-card-trend" },
    h("div", { class: "model-card-spark", dataset: { role: "spark" }, title: `Requests over the window (peak ${fmt.int(peak)} per bucket)` },
      sparkline(f ? f.series.requests : [])),
    h("div", { class: "share", dataset: { stat: "share", value: share == null ? "" : String(share) } },
      h("span", { class: "share-label subtle" }, "Share of spend"),
      h("span", { class: "share-value num" }, share == null ? fmt.DASH : fmt.pct(share)),
      h("span", { class: "share-bar", "aria-hidden": "true" }, bar)));
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

function stat(label, value, key, raw, tone = "") {
  return h("div", { class: `stat ${tone}`, dataset: { stat: key, value: raw == null ? "" : String(raw) } },
    h("dt", {}, label), h("dd", { class: "num" }, value));
}

function skeletonCard() {
  return h("article", { class: "model-card is-loading" },
    skeleton("w-40 h-5"), skeleton("w-60"), skeleton("w-80"),
    h("div", { class: "model-card-stats" }, skeleton("w-70 h-8"), skeleton("w-70 h-8"), skeleton("w-70 h-8")));
}
