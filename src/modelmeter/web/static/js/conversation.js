// "Pretty" view of a request and its response: a chat as a conversation, a completion as
// prompt and text, embeddings as their inputs. Everything is shown as text.

import { agentKind, messages, responses } from "./agent_conversation.js";
import { button, copyText, h } from "./dom.js";
import * as fmt from "./format.js";

const SHOWN = new Set(["model", "messages", "prompt", "input", "metadata", "stream", "stream_options", "system",
  "instructions"]);

function partText(part) {
  if (typeof part === "string") return part;
  if (!part || typeof part !== "object") return JSON.stringify(part);
  if (part.type === "text" || typeof part.text === "string") return part.text;
  if (part.type === "image_url") {
    const url = (part.image_url && part.image_url.url) || "";
    return `[image: ${url.startsWith("data:") ? `${url.slice(0, 30)}…` : url}]`;
  }
  if (part.type === "input_audio") return "[audio]";
  if (part.type === "refusal") return `[refusal] ${part.refusal}`;
  return JSON.stringify(part);
}

function contentText(content) {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map(partText).join("\n");
  return JSON.stringify(content, null, 2);
}

function bubble(role, text, extra = []) {
  const kind = ["system", "user", "assistant", "tool", "developer"].includes(role) ? role : "other";
  return h("div", { class: `msg msg-${kind}`, dataset: { role } },
    h("div", { class: "msg-role" }, role),
    text ? h("div", { class: "msg-text" }, text) : null,
    extra);
}

/** Marks a bubble drawn from the request (not the answer). */
function fromClient(el) {
  el.dataset.side = "request";
  return el;
}

function toolCalls(calls) {
  if (!Array.isArray(calls) || !calls.length) return [];
  return calls.map((c) => {
    const fn = c.function || {};
    return h("div", { class: "tool-call" },
      h("span", { class: "tool-name mono" }, `${fn.name || c.type || "tool"}(…)`),
      h("pre", { class: "code code-sm" }, prettyArgs(fn.arguments)));
  });
}

function prettyArgs(args) {
  if (typeof args !== "string") return JSON.stringify(args, null, 2);
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

function errorBlock(message) {
  return h("div", { class: "callout callout-error" }, h("strong", {}, "Error: "), message);
}

function params(req) {
  const chips = Object.entries(req)
    .filter(([k]) => !SHOWN.has(k))
    .map(([k, v]) => h("span", { class: "param" }, h("span", { class: "param-key" }, k), " ",
      h("span", { class: "mono" }, typeof v === "string" ? v : JSON.stringify(v))));
  if (req.stream) chips.unshift(h("span", { class: "param" }, h("span", { class: "param-key" }, "stream"), " true"));
  return chips.length ? h("div", { class: "params" }, chips) : null;
}

function chat(req, res) {
  const out = [];
  for (const m of Array.isArray(req.messages) ? req.messages : []) {
    const extra = toolCalls(m && m.tool_calls);
    out.push(fromClient(bubble((m && m.role) || "user", contentText(m && m.content), extra)));
  }
  for (const choice of (res && Array.isArray(res.choices)) ? res.choices : []) {
    const msg = choice.message || choice.delta || {};
    const text = contentText(msg.content) || (msg.refusal ? `[refusal] ${msg.refusal}` : "");
    const extra = toolCalls(msg.tool_calls);
    if (choice.finish_reason) extra.push(h("div", { class: "msg-foot" }, `finish reason: ${choice.finish_reason}`));
    out.push(bubble(msg.role || "assistant", text, extra));
  }
  return out;
}

function completion(req, res) {
  const prompts = Array.isArray(req.prompt) ? req.prompt : [req.prompt];
  const out = prompts.filter((p) => p != null)
    .map((p) => fromClient(bubble("prompt", typeof p === "string" ? p : JSON.stringify(p))));
  for (const choice of (res && Array.isArray(res.choices)) ? res.choices : []) {
    out.push(bubble("completion", choice.text || "",
      choice.finish_reason ? [h("div", { class: "msg-foot" }, `finish reason: ${choice.finish_reason}`)] : []));
  }
  return out;
}

/** An embedding as numbers: a JSON array, or base64 of little-endian float32 (encoding_format). */
function vector(value) {
  if (Array.isArray(value)) return value;
  if (typeof value !== "string") return null;
  try {
    const bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    return Array.from(new Float32Array(bytes.buffer, 0, Math.floor(bytes.length / 4)));
  } catch {
    return null;
  }
}

function embedding(req, res) {
  const inputs = typeof req.input === "string" || (Array.isArray(req.input) && typeof req.input[0] === "number")
    ? [req.input] : (Array.isArray(req.input) ? req.input : []);
  const out = inputs.map((x, i) => fromClient(bubble(inputs.length > 1 ? `input ${i + 1}` : "input",
    typeof x === "string" ? x : `token ids: ${JSON.stringify(x)}`)));
  const data = res && Array.isArray(res.data) ? res.data : [];
  if (data.length) {
    const first = vector(data[0].embedding);
    const dims = first ? first.length : null;
    const preview = first ? `[${first.slice(0, 6).map((v) => v.toFixed(4)).join(", ")}, …]` : "";
    out.push(bubble("embedding",
      `${fmt.int(data.length)} vector${data.length === 1 ? "" : "s"}${dims ? ` of ${fmt.int(dims)} dimensions` : ""}`,
      [h("div", { class: "mono msg-foot" }, preview)]));
  }
  return out;
}

/**
 * What the client sent, as is, when it is not a request the views above can draw: a body the
 * gateway rejected (e.g. "messages" not an array) or one stored cut short (a JSON string).
 */
function asSent(req) {
  const text = typeof req === "string" ? req : JSON.stringify(req, null, 2);
  return h("div", { class: "as-sent", dataset: { role: "as-sent" } },
    h("div", { class: "msg-role" }, "Sent by the client"),
    h("pre", { class: "code code-sm" }, text));
}

/** The Pretty view of a whole record (GET /api/requests/{id}). */
export function prettyView(record) {
  const sent = record.request;
  const isObject = sent != null && typeof sent === "object" && !Array.isArray(sent);
  const req = isObject ? sent : {};
  const res = record.response;
  let items;
  const agent = agentKind(record.call_type, req, res);
  if (agent === "messages") items = messages(req, res);
  else if (agent === "responses") items = responses(req, res);
  else if (record.call_type === "embedding" || ("input" in req && !("messages" in req))) items = embedding(req, res);
  else if (record.call_type === "completion" || ("prompt" in req && !("messages" in req))) items = completion(req, res);
  else items = chat(req, res);
  // Only the answer was drawn (or nothing): the request itself did not fit, show it as sent.
  const drewRequest = items.some((el) => el.dataset.side === "request");
  const error = (res && res.error && res.error.message) || (record.status !== "success" ? record.error : null);
  return h("div", { class: "pretty" },
    isObject ? params(req) : null,
    sent != null && (!isObject || !drewRequest) ? asSent(sent) : null,
    h("div", { class: "conversation" }, items),
    error ? errorBlock(error) : null,
    sent != null && !res && !error ? h("p", { class: "subtle" }, "No response body was stored.") : null);
}

function jsonBlock(label, value) {
  const text = value == null ? "null" : JSON.stringify(value, null, 2);
  return h("div", { class: "json-block" },
    h("div", { class: "json-head" }, h("span", { class: "card-title" }, label),
      button("Copy", { class: "btn-sm btn-ghost", onclick: (e) => copyText(text, e.currentTarget) }, "copy")),
    h("pre", { class: "code json", dataset: { json: label.toLowerCase() } }, text));
}

/** The JSON view: the request and response bodies exactly as stored; for a call translated to
 * another API upstream, also what was sent upstream and what the upstream answered. */
export function jsonView(record) {
  const translated = record.upstream_request !== undefined || record.upstream_response !== undefined;
  return h("div", { class: "json-view" }, jsonBlock("Request", record.request), jsonBlock("Response", record.response),
    translated ? jsonBlock("Sent upstream", record.upstream_request) : null,
    translated ? jsonBlock("Upstream answered", record.upstream_response) : null);
}
