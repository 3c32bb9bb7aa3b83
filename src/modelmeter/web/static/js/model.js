// A model card: its header (provider, upstream, API base, reachability), the Usage, Connect and
// Evaluate tabs, and the drawer of one request.

import { api } from "./api.js";
import { preloadPlotly } from "./charts.js";
import { button, clear, h, pill, skeleton } from "./dom.js";
import { Drawer } from "./drawer.js";
import * as fmt from "./format.js";
import { definedIn, pricesText } from "./origin.js";
import { removeDialog } from "./remove.js";
import { modelPath, navigate } from "./router.js";
import { snippetBlock } from "./snippet.js";
import { EvaluateTab } from "./evaluate.js";
import { UsageTab } from "./usage.js";

export class ModelPage {
  constructor(root, route) {
    this.root = root;
    this.name = route.name;
    this.dep = null;
    this.usage = null;
    document.title = `${this.name} · modelmeter`;
    preloadPlotly(); // download the chart library now, in parallel with the data
    this.pills = h("div", { class: "pills" }, skeleton("w-20"));
    this.meta = h("div", { class: "model-meta" }, skeleton("w-60"));
    this.removeBtn = button("Remove", { class: "btn-sm btn-ghost", id: "remove-deployment", disabled: true,
      onclick: () => removeDialog(this.name, this.dep || {}, () => navigate("/", { state: { removed: this.name } })) });
    this.tabs = {
      usage: h("a", { class: "tab", href: modelPath(this.name), "data-link": true, role: "tab" }, "Usage"),
      connect: h("a", { class: "tab", href: modelPath(this.name, { tab: "connect" }), "data-link": true, role: "tab" }, "Connect"),
      evaluate: h("a", { class: "tab", href: modelPath(this.name, { tab: "evaluate" }), "data-link": true, role: "tab" }, "Evaluate"),
    };
    this.evaluate = null;
    this.evaluateEl = h("div", { class: "evaluate", hidden: true });
    this.body = h("div", { class: "tab-body" });
    this.connect = h("div", { class: "connect", hidden: true });
    this.drawer = new Drawer({ name: this.name, onClose: () => this.closeRequest() });
    clear(root).append(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "/", "data-link": true }, "Models"), h("span", { "aria-hidden": "true" }, "/"),
        h("span", {}, this.name)),
      h("div", { class: "model-head" },
        h("div", { class: "model-title" }, h("h1", { class: "mono-title" }, this.name), this.pills,
          h("div", { class: "head-actions" }, this.removeBtn)),
        this.meta),
      h("div", { class: "tabs", role: "tablist" }, Object.values(this.tabs)),
      this.body, this.connect, this.evaluateEl);
    this.loadDeployment();
    this.update(route);
  }

  update(route) {
    for (const [key, tab] of Object.entries(this.tabs)) tab.setAttribute("aria-selected", String(key === route.tab));
    if (route.tab === "usage") {
      if (!this.usage) {
        this.usage = new UsageTab(this, route.params);
        this.body.append(this.usage.el);
      } else {
        this.usage.syncFromUrl(route.params);
      }
    }
    this.body.hidden = route.tab !== "usage";
    this.connect.hidden = route.tab !== "connect";
    if (route.tab === "connect") this.renderConnect();
    this.evaluateEl.hidden = route.tab !== "evaluate";
    if (route.tab === "evaluate" && !this.evaluate) {
      this.evaluate = new EvaluateTab(this.name);
      this.evaluateEl.append(this.evaluate.el);
    }
    if (route.requestId) {
      this.drawer.open(route.requestId);
    } else if (this.drawer.isOpen) {
      this.drawer.close();
      if (this.opener && this.opener.isConnected) this.opener.focus({ preventScroll: true });
      this.opener = null;
    }
  }

  openRequest(id) {
    this.opener = document.activeElement; // focus goes back there when the drawer closes
    // The log's page cursors stay in the state: a reload of the drawer keeps the list's Back.
    navigate(modelPath(this.name, { requestId: id }) + window.location.search,
      { state: { ...(history.state || {}), fromList: true } });
  }

  closeRequest() {
    if (history.state && history.state.fromList) history.back();
    else navigate(modelPath(this.name) + window.location.search);
  }

  async loadDeployment() {
    try {
      this.dep = await api.deployment(this.name);
    } catch (err) {
      if (err.status === 404) return this.notFound();
      this.meta.replaceChildren(h("span", { class: "tone-bad" }, err.message));
      return null;
    }
    const d = this.dep;
    this.removeBtn.disabled = false;
    clear(this.pills).append(...[
      pill(d.provider, "neutral"),
      d.local ? pill("embedded", "accent") : null,
      d.reachable
        ? h("span", { class: "reach reach-ok" }, h("span", { class: "dot" }), "Reachable")
        : h("span", { class: "reach reach-down" }, h("span", { class: "dot" }), "Unreachable"),
    ].filter(Boolean));
    const item = (label, value, cls) => h("span", { class: "meta-item" }, h("span", { class: "subtle" }, label), " ",
      h("span", { class: cls || null, title: value }, value));
    // Element.replaceChildren writes a null child as the text "null": only the parts there are.
    this.meta.replaceChildren(...[
      item("Upstream model", d.model, "mono"),
      item("API base", d.api_base || "embedded", "mono"),
      item("Bodies", d.store_bodies ? "stored" : "not stored"),
      d.upstream_health ? this.upstreams(d.upstream_health) : null,
    ].filter(Boolean));
    if (this.usage && this.usage.isEmpty) this.usage.setEmpty(true); // the snippet may depend on the kind
    if (!this.connect.hidden) this.renderConnect();
    return d;
  }

  /** Each upstream's state; one that is out or cooling down can be put back (the admin API's reset). */
  upstreams(list) {
    return h("div", { class: "meta-upstreams", dataset: { role: "upstreams" } },
      h("span", { class: "subtle" }, "Upstreams"),
      list.map((u) => h("span", { class: `upstream upstream-${u.state}`, dataset: { upstream: u.name, state: u.state } },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "mono" }, u.name),
        h("span", { class: "small subtle" }, u.state === "out" ? "out until reset" : u.state),
        u.state === "healthy" ? null : button("Reset", { class: "btn-sm btn-ghost", "aria-label": `Reset ${u.name}`,
          onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              await api.resetUpstream(this.name, u.name);
            } finally {
              this.loadDeployment();
            }
          } }))));
  }

  notFound() {
    this.drawer.close();
    if (this.usage) this.usage.destroy();
    this.usage = null;
    clear(this.root).append(h("div", { class: "empty-panel" },
      h("h2", {}, "No such deployment"),
      h("p", { class: "subtle" }, "There is no deployment named ", h("code", {}, this.name), " on this gateway."),
      h("a", { class: "btn", href: "/", "data-link": true }, "All models")));
  }

  renderConnect() {
    const d = this.dep || {};
    this.connect.replaceChildren(h("div", { class: "card connect-card" },
      h("h2", {}, "Send requests"),
      h("p", { class: "subtle" }, "This gateway speaks the OpenAI API. Use its URL as the base URL and ",
        h("code", {}, this.name), " as the model."),
      snippetBlock(this.name, d),
      h("dl", { class: "kv" },
        h("dt", {}, "Base URL"), h("dd", { class: "mono" }, `${window.location.origin}/v1`),
        h("dt", {}, "Model"), h("dd", { class: "mono" }, this.name),
        h("dt", {}, "Upstream model"), h("dd", { class: "mono" }, d.model || fmt.DASH),
        h("dt", {}, "Provider"), h("dd", {}, d.provider || fmt.DASH),
        h("dt", {}, "API base"), h("dd", { class: "mono" }, d.api_base || "embedded model"),
        h("dt", {}, "API key variable"), h("dd", { class: "mono" }, d.api_key_env || "none"),
        h("dt", {}, "Prices"), h("dd", { dataset: { role: "prices" } }, pricesText(d)),
        h("dt", {}, "Bodies"), h("dd", {}, d.store_bodies === false ? "not stored" : "stored"),
        h("dt", {}, "Defined in"), h("dd", { dataset: { role: "defined-in" } }, definedIn(d)))));
  }

  destroy() {
    if (this.usage) this.usage.destroy();
    if (this.evaluate) this.evaluate.destroy();
    this.drawer.destroy();
  }
}
