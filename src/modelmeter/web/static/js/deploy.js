// "Deploy a model": POST /api/deployments, the API's error message shown as is on failure.

import { api } from "./api.js";
import { button, h } from "./dom.js";

const PROVIDERS = ["openai", "azure", "anthropic", "mistral", "groq", "together", "fireworks",
  "deepseek", "openrouter", "vllm", "ollama", "local"];

const NUMBERS = new Set(["weight", "priority", "max_concurrency"]);
const NAMES = { key: "api_key_env" };

/** "URL weight=2 priority=1 model=x key=VAR" -> an upstream definition (the API checks it). */
export function upstreamOf(line) {
  const [api_base, ...pairs] = line.split(/\s+/);
  const up = { api_base };
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    const key = at > 0 ? pair.slice(0, at) : pair;
    const value = at > 0 ? pair.slice(at + 1) : "";
    const name = NAMES[key] || key;
    up[name] = NUMBERS.has(name) && value !== "" && !Number.isNaN(Number(value)) ? Number(value) : value;
  }
  return up;
}

export class DeployForm {
  constructor(onAdded) {
    this.onAdded = onAdded;
    this.error = h("div", { class: "callout callout-error", role: "alert", hidden: true });
    const field = (label, input, hint) => h("label", { class: "field" },
      h("span", { class: "field-label" }, label), input, hint ? h("span", { class: "field-hint" }, hint) : null);
    this.inputs = {
      name: h("input", { name: "name", required: true, placeholder: "my-model", autocomplete: "off",
        spellcheck: "false" }),
      api_base: h("input", { name: "api_base", placeholder: "https://api.openai.com/v1", type: "url",
        spellcheck: "false" }),
      model: h("input", { name: "model", placeholder: "gpt-4o-mini (defaults to the name)", spellcheck: "false" }),
      provider: h("input", { name: "provider", list: "providers", placeholder: "openai" }),
      api_key_env: h("input", { name: "api_key_env", placeholder: "OPENAI_API_KEY", spellcheck: "false" }),
      input: h("input", { name: "price_input", type: "number", min: "0", step: "any", placeholder: "0.15" }),
      output: h("input", { name: "price_output", type: "number", min: "0", step: "any", placeholder: "0.60" }),
      upstreams: h("textarea", { name: "upstreams", rows: "3", spellcheck: "false",
        placeholder: "http://10.0.0.12:8000/v1 weight=2\nhttps://api.openai.com/v1 priority=1 model=gpt-4o-mini key=OPENAI_API_KEY" }),
      routing: h("select", { name: "routing" }, h("option", { value: "weighted" }, "Weighted random"),
        h("option", { value: "least_busy" }, "Fewest calls in flight")),
    };
    const i = this.inputs;
    this.submit = button("Deploy", { type: "submit", class: "btn-primary" });
    this.form = h("form", { class: "deploy-form", novalidate: true, onsubmit: (e) => this.send(e) },
      h("datalist", { id: "providers" }, PROVIDERS.map((p) => h("option", { value: p }))),
      h("div", { class: "form-grid" },
        field("Name", i.name, "What clients send as \"model\"."),
        field("API base", i.api_base, "An OpenAI-compatible endpoint; leave empty for an embedded model."),
        field("Upstream model", i.model),
        field("Provider", i.provider),
        field("API key variable", i.api_key_env, "The key is read from this environment variable, never stored."),
        h("div", { class: "field-pair" },
          field("Input $ / 1M tokens", i.input),
          field("Output $ / 1M tokens", i.output)),
        field("More upstreams", i.upstreams, "Optional: one per line, a URL then name=, weight=, priority= (0 first), "
          + "model=, key= (variable), max_concurrency=. The API base above is the first."),
        field("Routing", i.routing, "How a call picks among upstreams of the same priority.")),
      this.error,
      h("div", { class: "form-actions" },
        button("Cancel", { class: "btn-ghost", onclick: () => this.toggle(false) }),
        this.submit));
    this.el = h("section", { class: "panel deploy-panel", hidden: true, "aria-label": "Deploy a model" },
      h("div", { class: "panel-head" }, h("h2", {}, "Deploy a model"),
        h("p", { class: "subtle" }, "Adds an OpenAI-compatible deployment at run time; it is metered from its first request.")),
      this.form);
  }

  toggle(show = this.el.hidden) {
    this.el.hidden = !show;
    if (show) this.inputs.name.focus();
  }

  definition() {
    const v = (el) => el.value.trim();
    const i = this.inputs;
    const def = { name: v(i.name) };
    for (const key of ["api_base", "model", "provider", "api_key_env"]) if (v(i[key])) def[key] = v(i[key]);
    if (!def.api_base && !def.provider) def.provider = "local";
    const price = {};
    if (v(i.input) !== "") price.input = Number(v(i.input));
    if (v(i.output) !== "") price.output = Number(v(i.output));
    if (Object.keys(price).length) def.price = price;
    const more = i.upstreams.value.split("\n").map((l) => l.trim()).filter(Boolean).map(upstreamOf);
    if (more.length) {
      def.upstreams = [{ api_base: def.api_base }, ...more];
      def.routing = i.routing.value;
    }
    return def;
  }

  async send(event) {
    event.preventDefault();
    this.error.hidden = true;
    this.submit.disabled = true;
    try {
      const dep = await api.addDeployment(this.definition());
      this.form.reset();
      this.toggle(false);
      this.onAdded(dep);
    } catch (err) {
      this.error.textContent = err.message;
      this.error.hidden = false;
    } finally {
      this.submit.disabled = false;
    }
  }
}
