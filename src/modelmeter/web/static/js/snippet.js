// How to send a first request: curl and the openai Python client, with this server's real URL.

import { button, copyText, h } from "./dom.js";

function isEmbedding(dep) {
  const model = `${dep.model || ""} ${dep.name || ""}`.toLowerCase();
  return /(^|[^a-z])(e5|embed|embedding|bge|gte)([^a-z]|$)/.test(model) || model.includes("embedding");
}

export function snippets(name, dep = {}) {
  const base = `${window.location.origin}/v1`;
  const model = JSON.stringify(name);
  if (isEmbedding(dep)) {
    const body = JSON.stringify({ model: name, input: "Hello!" });
    return {
      curl: `curl ${base}/embeddings \\\n  -H "Content-Type: application/json" \\\n  -d '${body.replaceAll("'", "'\\''")}'`,
      python: `from openai import OpenAI\n\nclient = OpenAI(base_url="${base}", api_key="unused")\n` +
        `result = client.embeddings.create(model=${model}, input="Hello!")\n` +
        "print(len(result.data[0].embedding))",
    };
  }
  const body = JSON.stringify({ model: name, messages: [{ role: "user", content: "Hello!" }] });
  return {
    curl: `curl ${base}/chat/completions \\\n  -H "Content-Type: application/json" \\\n  -d '${body.replaceAll("'", "'\\''")}'`,
    python: `from openai import OpenAI\n\nclient = OpenAI(base_url="${base}", api_key="unused")\n` +
      "reply = client.chat.completions.create(\n" +
      `    model=${model},\n` +
      '    messages=[{"role": "user", "content": "Hello!"}],\n' +
      ")\nprint(reply.choices[0].message.content)",
  };
}

/** A code block with curl / Python tabs and a Copy button. */
export function snippetBlock(name, dep) {
  const code = snippets(name, dep);
  let current = "curl";
  const pre = h("pre", { class: "code", dataset: { snippet: "curl" } });
  const tabs = {};
  const show = (kind) => {
    current = kind;
    pre.textContent = code[kind];
    pre.dataset.snippet = kind;
    for (const [k, el] of Object.entries(tabs)) el.setAttribute("aria-selected", String(k === kind));
  };
  for (const [kind, label] of [["curl", "curl"], ["python", "Python"]]) {
    tabs[kind] = h("button", { type: "button", role: "tab", class: "seg-btn", onclick: () => show(kind) }, label);
  }
  const copy = button("Copy", { class: "btn-sm btn-ghost copy-btn", onclick: (e) => copyText(code[current], e.currentTarget) }, "copy");
  show("curl");
  return h("div", { class: "snippet" },
    h("div", { class: "snippet-head" }, h("div", { class: "seg", role: "tablist" }, Object.values(tabs)), copy),
    pre);
}

/** The empty state of the Usage tab: what to do to see something here. */
export function emptyState(name, dep, onLive, where = "yet") {
  return h("section", { class: "card empty-state", "aria-label": "No requests yet" },
    h("div", { class: "empty-copy" },
      h("div", { class: "empty-icon", "aria-hidden": "true" }, "↗"),
      h("h2", {}, "Send your first request"),
      h("p", { class: "subtle" }, `No requests ${where}. Point any OpenAI client at `,
        h("code", {}, `${window.location.origin}/v1`), " with model ", h("code", {}, name),
        " and every call shows up here: tokens, cost, latency, the full exchange."),
      h("div", { class: "empty-actions" },
        button("Go live", { class: "btn-primary btn-sm", onclick: onLive }, "live"),
        h("span", { class: "subtle" }, "to watch your first request arrive."))),
    snippetBlock(name, dep));
}
