// "Pretty" view of the agent APIs: an Anthropic Messages call (system, messages of content blocks)
// and a Responses call (instructions, input items, output items), drawn as a conversation like chat.
// Everything is shown as text (h() sets text nodes): a body never becomes markup.

import { h } from "./dom.js";

const ROLES = ["system", "user", "assistant", "tool", "developer"];

function bubble(role, blocks, side) {
  const kind = ROLES.includes(role) ? role : "other";
  const el = h("div", { class: `msg msg-${kind}`, dataset: { role } }, h("div", { class: "msg-role" }, role), blocks);
  if (side) el.dataset.side = side;
  return el;
}

function text(value, block = "text") {
  return h("div", { class: "msg-text", dataset: { block } }, String(value));
}

function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

function call(name, args, block) {
  return h("div", { class: "tool-call", dataset: { block } },
    h("span", { class: "tool-name mono" }, `${name || "tool"}(…)`), h("pre", { class: "code code-sm" }, pretty(args)));
}

function labelled(label, body, block) {
  return h("div", { class: `tool-call block-${block}`, dataset: { block } },
    h("span", { class: "tool-name mono" }, label), body);
}

function image(source) {
  const s = source || {};
  if (s.type === "url" || typeof s.url === "string") return `[image: ${s.url}]`;
  if (typeof s === "string") return `[image: ${s.startsWith("data:") ? `${s.slice(0, 30)}…` : s}]`;
  return `[image${s.media_type ? `: ${s.media_type}` : ""}]`;
}

function foot(label) {
  return h("div", { class: "msg-foot" }, label);
}

// --- Anthropic Messages ------------------------------------------------------------------------

function messageBlock(b) {
  if (typeof b === "string") return text(b);
  if (!b || typeof b !== "object") return text(JSON.stringify(b));
  switch (b.type) {
    case "text": return text(b.text ?? "");
    case "thinking": return labelled("thinking", text(b.thinking ?? "", "thinking-text"), "thinking");
    case "redacted_thinking": return labelled("thinking", text("[redacted]", "thinking-text"), "thinking");
    case "tool_use": case "server_tool_use": return call(b.name, b.input, "tool_use");
    case "tool_result": {
      const body = Array.isArray(b.content) ? b.content.map(messageBlock) : text(b.content ?? "", "tool-result-text");
      return labelled(`tool result${b.tool_use_id ? ` · ${b.tool_use_id}` : ""}${b.is_error ? " · error" : ""}`, body, "tool_result");
    }
    case "image": return text(image(b.source), "image");
    case "document": return text(`[document${b.title ? `: ${b.title}` : ""}]`, "document");
    default: return h("pre", { class: "code code-sm", dataset: { block: b.type || "other" } }, pretty(b));
  }
}

function blocks(content) {
  if (content == null) return [];
  return Array.isArray(content) ? content.map(messageBlock) : [messageBlock(content)];
}

export function messages(req, res) {
  const out = [];
  if (req.system != null && req.system !== "") out.push(bubble("system", blocks(req.system), "request"));
  for (const m of Array.isArray(req.messages) ? req.messages : []) {
    out.push(bubble((m && m.role) || "user", blocks(m && m.content), "request"));
  }
  if (res && Array.isArray(res.content)) {
    const extra = res.stop_reason ? [foot(`stop reason: ${res.stop_reason}`)] : [];
    out.push(bubble(res.role || "assistant", [...blocks(res.content), ...extra]));
  } else if (res && typeof res.input_tokens === "number") { // count_tokens
    out.push(bubble("count", [text(`${res.input_tokens} input tokens`)]));
  }
  return out;
}

// --- OpenAI Responses --------------------------------------------------------------------------

function part(p) {
  if (typeof p === "string") return text(p);
  if (!p || typeof p !== "object") return text(JSON.stringify(p));
  if (typeof p.text === "string") return text(p.text);
  if (p.type === "refusal") return text(`[refusal] ${p.refusal}`);
  if (p.type === "input_image") return text(image(p.image_url || (p.file_id ? `file ${p.file_id}` : "")), "image");
  if (p.type === "input_file") return text(`[file${p.filename ? `: ${p.filename}` : ""}]`, "document");
  return h("pre", { class: "code code-sm", dataset: { block: p.type || "other" } }, pretty(p));
}

function item(it, side) {
  if (typeof it === "string") return bubble("user", [text(it)], side);
  if (!it || typeof it !== "object") return bubble("other", [text(JSON.stringify(it))], side);
  const type = it.type || (it.role ? "message" : "");
  if (type === "message") {
    const content = Array.isArray(it.content) ? it.content.map(part) : [part(it.content ?? "")];
    return bubble(it.role || "assistant", content, side);
  }
  if (type === "function_call" || type === "custom_tool_call") {
    return bubble("assistant", [call(it.name, it.arguments ?? it.input, "tool_use")], side);
  }
  if (type === "function_call_output" || type === "custom_tool_call_output") {
    const out = Array.isArray(it.output) ? it.output.map(part) : text(pretty(it.output ?? ""), "tool-result-text");
    return bubble("tool", [labelled(`tool result${it.call_id ? ` · ${it.call_id}` : ""}`, out, "tool_result")], side);
  }
  if (type === "reasoning") {
    const summary = (Array.isArray(it.summary) ? it.summary : []).map((s) => text(s && s.text != null ? s.text : "", "thinking-text"));
    return bubble("assistant", [labelled("reasoning", summary.length ? summary : text("[no summary]", "thinking-text"), "thinking")], side);
  }
  return bubble(type || "other", [h("pre", { class: "code code-sm", dataset: { block: type || "other" } }, pretty(it))], side);
}

export function responses(req, res) {
  const out = [];
  if (req.instructions) out.push(bubble("system", [text(req.instructions)], "request"));
  const input = req.input == null ? [] : (Array.isArray(req.input) ? req.input : [req.input]);
  for (const it of input) out.push(item(it, "request"));
  const output = res && Array.isArray(res.output) ? res.output : [];
  for (const it of output) out.push(item(it));
  if (output.length && res.status && res.status !== "completed") {
    const why = res.incomplete_details && res.incomplete_details.reason;
    out[out.length - 1].append(foot(`status: ${res.status}${why ? ` (${why})` : ""}`));
  }
  return out;
}

/** Which agent API a body is in, when the call type does not say (e.g. an error before routing). */
export function agentKind(callType, req, res) {
  if (callType === "messages" || callType === "count_tokens") return "messages";
  if (callType === "responses") return "responses";
  if (res && res.object === "response") return "responses";
  if (res && res.type === "message") return "messages";
  return null;
}
