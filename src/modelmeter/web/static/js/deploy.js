// "Deploy a model": POST /api/deployments, the API's error message shown as is on failure.

import { api } from "./api.js";
import { button, h } from "./dom.js";

const PROVIDERS = ["openai", "azure", "anthropic", "mistral", "groq", "together", "fireworks",
  "deepseek", "openrouter", "vllm", "ollama", "local"];

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
          field("Output $ / 1M tokens", i.output))),
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
