// The Alerts page: each rule with its state, value and last firing, and on demand its history
// (state changes with every webhook delivery attempt). Webhooks show as their host only (the API
// never sends the URL). Deleted rules keep their history, listed below the rules. Refreshed every
// 10 s while open.

import { api } from "./api.js";
import { button, clear, h, pill } from "./dom.js";
import * as fmt from "./format.js";
import { modelPath } from "./router.js";

const STATE_PILL = { firing: "error", pending: "accent", ok: "success" };

export function figure(value, unit) {
  if (value == null) return "—";
  if (unit === "usd") return fmt.usd(value);
  if (unit === "percent") return `${Number(value).toLocaleString("en-US", { maximumFractionDigits: 2 })}%`;
  if (unit === "ms") return fmt.ms(value);
  return `${fmt.int(value)} ${unit}`;
}

function where(rule) {
  if (rule.scope === "deployment") return h("a", { href: modelPath(rule.deployment), "data-link": true }, rule.deployment);
  if (rule.scope === "key") return h("span", {}, "key ", h("code", {}, rule.key));
  return h("span", {}, "all deployments");
}

export class AlertsPage {
  constructor(root) {
    this.root = root;
    this.alive = true;
    this.open = new Set(); // rules whose history is shown
    document.title = "Alerts · modelmeter";
    this.list = h("div", { class: "alert-list", "aria-busy": "true" });
    this.note = h("p", { class: "subtle" }, "Rules from the config and the API, evaluated from the rollups.");
    clear(root).append(h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Alerts"), this.note)), this.list);
    this.load();
    this.timer = setInterval(() => this.load(), 10_000);
  }

  destroy() {
    this.alive = false;
    clearInterval(this.timer);
  }

  async load() {
    try {
      const { data, deleted = [], interval_seconds: every } = await api.alerts();
      if (!this.alive) return;
      this.list.removeAttribute("aria-busy");
      this.note.textContent = `Rules from the config and the API, evaluated every ${every} s from the rollups.`;
      clear(this.list);
      if (!data.length) {
        this.list.append(h("div", { class: "empty-panel" }, h("h3", {}, "No alert rules"),
          h("p", { class: "subtle" }, "Add [[alerts]] tables to the config, or POST /api/alerts.")));
      }
      for (const rule of data) this.list.append(this.item(rule));
      if (deleted.length) {
        this.list.append(h("h2", { class: "alert-section" }, "Deleted rules"));
        for (const gone of deleted) this.list.append(this.deletedItem(gone));
      }
    } catch (err) {
      if (!this.alive) return;
      clear(this.list).append(h("div", { class: "callout callout-error", role: "alert" },
        `Could not load the alerts: ${err.message}`));
    }
  }

  item(rule) {
    const history = h("div", { class: "alert-history" });
    const toggle = button("History", { "aria-expanded": "false", onclick: () => this.toggle(rule.name, toggle, history) });
    if (this.open.has(rule.name)) this.toggle(rule.name, toggle, history, true);
    return h("article", { class: `alert-item state-${rule.state}`, dataset: { name: rule.name, state: rule.state } },
      h("div", { class: "alert-head" },
        h("strong", { class: "alert-name" }, rule.name),
        pill(rule.state, STATE_PILL[rule.state] || "neutral")),
      h("div", { class: "alert-meta subtle" },
        h("span", {}, rule.kind.replaceAll("_", " "), " on "), where(rule),
        h("span", {}, ` · threshold ${figure(rule.threshold, rule.unit)} · window ${fmt.duration(rule.window)}`),
        rule.for ? h("span", {}, ` · for ${fmt.duration(rule.for)}`) : null),
      h("dl", { class: "alert-stats" },
        h("div", {}, h("dt", {}, "Value"), h("dd", { dataset: { stat: "value" } }, figure(rule.value, rule.unit))),
        h("div", {}, h("dt", {}, "Last fired"),
          h("dd", { dataset: { stat: "last-fired" } }, rule.last_fired ? fmt.dateTime(rule.last_fired) : "never")),
        h("div", {}, h("dt", {}, "Webhook"), h("dd", {}, rule.webhook || "none"))),
      h("div", { class: "alert-actions" }, toggle),
      history);
  }

  /** A rule no longer defined whose history is kept: its name, last change, and the history. */
  deletedItem(gone) {
    const history = h("div", { class: "alert-history" });
    const toggle = button("History", { "aria-expanded": "false", onclick: () => this.toggle(gone.name, toggle, history) });
    if (this.open.has(gone.name)) this.toggle(gone.name, toggle, history, true);
    const changes = `${fmt.int(gone.changes)} state change${gone.changes === 1 ? "" : "s"}`;
    return h("article", { class: "alert-item state-deleted", dataset: { name: gone.name, state: "deleted" } },
      h("div", { class: "alert-head" },
        h("strong", { class: "alert-name" }, gone.name),
        pill("deleted rule", "neutral")),
      h("div", { class: "alert-meta subtle" }, `${changes} · last ${fmt.dateTime(gone.last_change)}`),
      h("div", { class: "alert-actions" }, toggle),
      history);
  }

  async toggle(name, btn, box, keep = false) {
    if (!keep && this.open.has(name)) {
      this.open.delete(name);
      btn.setAttribute("aria-expanded", "false");
      clear(box);
      return;
    }
    this.open.add(name);
    btn.setAttribute("aria-expanded", "true");
    try {
      const { data } = await api.alertHistory(name);
      clear(box).append(data.length
        ? h("ol", { class: "alert-events" }, data.map(event))
        : h("p", { class: "subtle" }, "No state changes yet."));
    } catch (err) {
      clear(box).append(h("div", { class: "callout callout-error", role: "alert" }, err.message));
    }
  }
}

function event(e) {
  const tries = e.deliveries.map((d) => `#${d.attempt} ${d.ok ? "ok" : (d.error || "failed")}`).join(", ");
  return h("li", { dataset: { status: e.status } },
    h("span", { class: "mono" }, fmt.dateTime(e.at)), " ",
    pill(e.status, e.status === "firing" ? "error" : e.status === "resolved" ? "success" : "neutral"),
    h("span", {}, ` value ${e.value == null ? "—" : e.value}`),
    tries ? h("span", { class: "subtle" }, ` · webhook: ${tries}`) : null);
}

/** Firing rules by deployment name, for the banners on model cards (empty if alerts cannot load). */
export async function firingByDeployment() {
  const out = new Map();
  try {
    const { data } = await api.alerts();
    for (const rule of data) {
      if (rule.state === "firing" && rule.scope === "deployment") {
        if (!out.has(rule.deployment)) out.set(rule.deployment, []);
        out.get(rule.deployment).push(rule);
      }
    }
  } catch {
    // The cards are still worth showing without their banners.
  }
  return out;
}

export function banner(rules) {
  return h("div", { class: "alert-banner", role: "alert", dataset: { role: "alert-banner" } },
    h("strong", {}, "Alert firing: "),
    rules.map((r) => `${r.name}: ${figure(r.value, r.unit)} (threshold ${figure(r.threshold, r.unit)})`).join("; "));
}
