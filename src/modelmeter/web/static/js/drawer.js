// The detail drawer of one request: its own URL (/models/<name>/requests/<id>), closes with Esc.

import { api } from "./api.js";
import { attemptsTimeline } from "./attempts.js";
import { jsonView, prettyView } from "./conversation.js";
import { costTable, exactSpend } from "./cost.js";
import { button, copyText, h, icon, pill, replace, skeleton } from "./dom.js";
import * as fmt from "./format.js";
import { modelPath } from "./router.js";

const VIEW_KEY = "modelmeter.bodyView";

export class Drawer {
  constructor({ name, onClose }) {
    this.name = name;
    this.onClose = onClose;
    this.id = null;
    this.overlay = h("div", { class: "drawer-overlay", hidden: true, onclick: () => this.onClose() });
    this.body = h("div", { class: "drawer-body" });
    this.panel = h("aside", { class: "drawer", role: "dialog", "aria-modal": "true", "aria-label": "Request details",
      tabindex: "-1", hidden: true }, this.body);
    this.keydown = (e) => {
      if (e.key === "Escape" && this.isOpen) {
        e.preventDefault();
        this.onClose();
      } else if (e.key === "Tab" && this.isOpen) {
        this.keepFocusInside(e);
      }
    };
    document.addEventListener("keydown", this.keydown);
    document.body.append(this.overlay, this.panel);
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  async open(id) {
    if (this.id === id && this.isOpen) return;
    this.id = id;
    // A modal dialog: on close the focus goes back where it was (the log row that opened it).
    if (!this.panel.contains(document.activeElement)) this.returnTo = document.activeElement;
    this.overlay.hidden = false;
    this.panel.hidden = false;
    document.body.classList.add("drawer-open");
    this.body.replaceChildren(this.head(null, id), h("div", { class: "drawer-loading" },
      [80, 60, 70, 40, 90, 50].map((w) => skeleton(`w-${w}`))));
    this.panel.focus({ preventScroll: true });
    try {
      const record = await api.record(id);
      if (this.id !== id) return;
      this.render(record);
    } catch (err) {
      if (this.id !== id) return;
      this.body.replaceChildren(this.head(null, id),
        h("div", { class: "callout callout-error", role: "alert" }, err.message));
    }
  }

  close() {
    this.id = null;
    this.overlay.hidden = true;
    this.panel.hidden = true;
    document.body.classList.remove("drawer-open");
    let back = this.returnTo;
    this.returnTo = null;
    // The log may have been redrawn meanwhile (Live, Refresh): the same request's new row.
    if (back && !back.isConnected && back.dataset && back.dataset.id) {
      back = document.querySelector(`tr.row[data-id="${CSS.escape(back.dataset.id)}"]`);
    }
    if (back && back.isConnected && back !== document.body) back.focus({ preventScroll: true });
  }

  /** Tab and Shift+Tab cycle through the drawer's controls while it is open (aria-modal). */
  keepFocusInside(e) {
    const focusable = [...this.panel.querySelectorAll(
      'a[href], button:not([disabled]), input:not([disabled]), select, textarea, summary, [tabindex]:not([tabindex="-1"])',
    )].filter((el) => el.offsetParent !== null);
    if (!focusable.length) return;
    const [first, last] = [focusable[0], focusable.at(-1)];
    const inside = this.panel.contains(document.activeElement);
    if (e.shiftKey && (!inside || document.activeElement === first || document.activeElement === this.panel)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (!inside || document.activeElement === last)) {
      e.preventDefault();
      first.focus();
    }
  }

  destroy() {
    document.removeEventListener("keydown", this.keydown);
    this.overlay.remove();
    this.panel.remove();
  }

  head(rec, id) {
    const rid = rec ? rec.request_id || rec.id : id;
    return h("header", { class: "drawer-head" },
      h("div", { class: "drawer-title-row" },
        h("h2", { id: "drawer-title" }, "Request"),
        rec ? pill(rec.status, rec.status === "success" ? "success" : "error") : null,
        rec ? h("span", { class: "pill pill-neutral num" }, `HTTP ${rec.http_status}`) : null,
        h("div", { class: "drawer-actions" },
          button("Copy link", { class: "btn-sm btn-ghost", "aria-label": "Copy link", onclick: (e) => copyText(window.location.href, e.currentTarget) }, "link"),
          button(null, { class: "btn-icon", "aria-label": "Close", title: "Close (Esc)", onclick: () => this.onClose() }, "close"))),
      h("div", { class: "drawer-id mono", title: rid }, rid),
      rec ? h("div", { class: "subtle" }, fmt.dateTime(rec.start_time)) : null);
  }

  render(rec) {
    replace(this.body,
      this.head(rec, rec.id),
      rec.status !== "success" && rec.error
        ? h("div", { class: "callout callout-error", role: "note" }, h("strong", {}, "Error: "), rec.error) : null,
      section("Request Details", "details", kv([
        ["Model", rec.model], ["Provider", rec.provider],
        ["Call type", `${rec.call_type}${rec.stream ? " · streamed" : ""}`],
        ["Model ID", rec.model_id], ["API base", rec.api_base, "mono"],
        ["Served by", rec.served_by, "mono"],
        ["IP address", rec.client_ip ? `${rec.client_ip} (redacted)` : null, "mono"],
        ["API key", rec.key_alias, "mono"], ["Session", sessionLink(rec, this.name), "mono"],
        ["Request ID", rec.request_id, "mono"], ["Record ID", rec.id, "mono"],
      ])),
      section("Metrics", "metrics", tokenSplit(rec), kv([
        ["Cost", exactSpend(rec)], ["Duration", fmt.ms(rec.latency_ms)],
        ["Time to first token", rec.stream ? fmt.ms(rec.ttft_ms) : null], ["Cache hit", rec.cache_hit ? "Yes" : "No"],
        ["Gateway overhead", fmt.ms(rec.overhead_ms)], ["Retries", fmt.int(rec.retries)],
        ["Start time", fmt.dateTime(rec.start_time)], ["End time", fmt.dateTime(rec.end_time)],
        ["Usage", usageOrigin(rec)],
      ])),
      rec.attempts && rec.attempts.length ? section("Attempts", "attempts", attemptsTimeline(rec)) : null,
      section("Cost Breakdown", "cost", costTable(rec)),
      section("Request & Response", "bodies", bodies(rec)),
      section("Metadata", "metadata", metadata(rec, this.name)),
    );
  }
}

/**
 * True when the gateway answered the request itself, without calling an upstream (a bad request,
 * a refused key, a model still loading): no upstream time at all, so the overhead is the duration.
 */
export function rejectedByGateway(rec) {
  if (rec.status === "success" || rec.cache_hit) return false;
  return !rec.model_id && !rec.retries && rec.overhead_ms != null && rec.overhead_ms >= rec.latency_ms;
}

/** Where the request's token counts come from. */
export function usageOrigin(rec) {
  if (rejectedByGateway(rec)) return "None: rejected by the gateway";
  if (rec.usage_estimated) return "Estimated (the upstream reported none)";
  if (rec.cache_hit) return "From the cached answer (no upstream call)";
  if (rec.status !== "success" && !rec.total_tokens) return "None: the upstream reported none";
  return "Reported by the upstream";
}

function section(title, key, ...content) {
  return h("section", { class: "drawer-section", dataset: { section: key } }, h("h3", {}, title), content);
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.map(([k, v, cls]) => [
    h("dt", {}, k), h("dd", { class: cls || null }, v == null || v === "" ? fmt.DASH : v)]));
}

function sized(el, width) {
  el.style.width = width; // CSSOM, not a style attribute: fine under a strict CSP
  return el;
}

function tokenSplit(rec) {
  const total = rec.prompt_tokens + rec.completion_tokens || 1;
  const share = (n) => `${Math.round((n / total) * 1000) / 10}%`;
  const extra = [];
  if (rec.cached_tokens) extra.push(`${fmt.int(rec.cached_tokens)} cached`);
  if (rec.reasoning_tokens) extra.push(`${fmt.int(rec.reasoning_tokens)} reasoning`);
  return h("div", { class: "token-split" },
    h("div", { class: "split-bar", "aria-hidden": "true" },
      sized(h("span", { class: "split-in" }), share(rec.prompt_tokens)),
      sized(h("span", { class: "split-out" }), share(rec.completion_tokens))),
    h("div", { class: "split-legend num" },
      h("span", {}, h("span", { class: "swatch swatch-c1" }), `Prompt ${fmt.int(rec.prompt_tokens)}`),
      h("span", {}, h("span", { class: "swatch swatch-c2" }), `Completion ${fmt.int(rec.completion_tokens)}`),
      h("span", { class: "strong" }, `Total ${fmt.int(rec.total_tokens)}`),
      extra.length ? h("span", { class: "subtle" }, `(${extra.join(", ")})`) : null));
}

function bodies(rec) {
  if (rec.bodies_note && rec.request == null && rec.response == null) {
    return h("div", { class: "callout callout-info", role: "note" }, rec.bodies_note);
  }
  const area = h("div", { class: "bodies" });
  const tabs = {};
  const show = (kind) => {
    localStorage.setItem(VIEW_KEY, kind);
    area.replaceChildren(kind === "json" ? jsonView(rec) : prettyView(rec));
    for (const [k, el] of Object.entries(tabs)) el.setAttribute("aria-selected", String(k === kind));
  };
  for (const [kind, label] of [["pretty", "Pretty"], ["json", "JSON"]]) {
    tabs[kind] = h("button", { type: "button", role: "tab", class: "seg-btn", dataset: { view: kind },
      onclick: () => show(kind) }, label);
  }
  show(localStorage.getItem(VIEW_KEY) === "json" ? "json" : "pretty");
  return [
    h("div", { class: "seg", role: "tablist", "aria-label": "Body view" }, Object.values(tabs)),
    rec.bodies_note ? h("div", { class: "callout callout-info", role: "note" }, rec.bodies_note) : null,
    area,
  ];
}

/** The session id, linking to the log filtered to that session (its other calls). */
function sessionLink(rec, name) {
  if (!rec.session_id) return null;
  return [String(rec.session_id), " ", h("a", { class: "session-link", href: `${modelPath(name)}?session=${encodeURIComponent(rec.session_id)}`,
    "data-link": true, dataset: { role: "session-link" } }, "this session's other calls")];
}

function metadata(rec, name) {
  const entries = Object.entries(rec.metadata || {}).filter(([k]) => k !== "tags");
  const tags = rec.tags || [];
  if (!entries.length && !tags.length) return h("p", { class: "subtle" }, "No metadata or tags on this request.");
  return h("div", {},
    entries.length ? kv(entries.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v), "mono"])) : null,
    tags.length ? h("div", { class: "tags" }, h("span", { class: "kv-label" }, "Tags"), tags.map((t) =>
      h("a", { class: "tag", href: `${modelPath(name)}?tag=${encodeURIComponent(t)}`, "data-link": true,
        title: "Show only requests with this tag" }, icon("tag", 12), String(t)))) : null);
}
