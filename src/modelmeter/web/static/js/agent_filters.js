// The log's agent filters: call type, session and end user (GET .../requests?call_type=&session=&user=).
// Their state lives in the Usage tab's URL as `type`, `session` and `user`.

import { h, icon } from "./dom.js";

const CALL_TYPES = [["", "All call types"], ["chat", "Chat"], ["completion", "Completion"], ["embedding", "Embedding"],
  ["messages", "Messages"], ["responses", "Responses"], ["count_tokens", "Count tokens"],
  // The Responses API's calls on a stored response (free: the creating call holds the usage).
  ["responses_get", "Responses: retrieve"], ["responses_delete", "Responses: delete"],
  ["responses_input_items", "Responses: input items"], ["responses_cancel", "Responses: cancel"]];

export class AgentFilters {
  /** `onSet(changes)` is called with { type }, { session } or { user } when the user changes one. */
  constructor(onSet) {
    this.typeSel = h("select", { class: "select select-sm", name: "call_type", "aria-label": "Filter by call type",
      onchange: () => onSet({ type: this.typeSel.value }) }, CALL_TYPES.map(([v, label]) => h("option", { value: v }, label)));
    this.sessionIn = h("input", { class: "input input-sm", name: "session", type: "search", placeholder: "Session ID",
      "aria-label": "Filter by session", spellcheck: "false" });
    this.sessionIn.addEventListener("search", () => { // the clear (×) of a search field
      if (!this.sessionIn.value) onSet({ session: "" });
    });
    // The request's `user` field (an end user of the app calling the model; breakdowns link here).
    this.userIn = h("input", { class: "input input-sm", name: "user", type: "search", placeholder: "End user",
      "aria-label": "Filter by end user", spellcheck: "false" });
    this.userIn.addEventListener("search", () => {
      if (!this.userIn.value) onSet({ user: "" });
    });
    this.els = [this.typeSel,
      h("form", { class: "input-icon", onsubmit: (e) => { e.preventDefault(); onSet({ session: this.sessionIn.value.trim() }); } },
        icon("search"), this.sessionIn),
      h("form", { class: "input-icon", onsubmit: (e) => { e.preventDefault(); onSet({ user: this.userIn.value.trim() }); } },
        icon("search"), this.userIn)];
  }

  sync(state) {
    // A call type from a URL that the list does not name yet (a newer front door) still shows.
    if (state.type && !CALL_TYPES.some(([v]) => v === state.type)) {
      this.typeSel.append(h("option", { value: state.type }, state.type));
    }
    this.typeSel.value = state.type;
    this.sessionIn.value = state.session;
    this.userIn.value = state.user;
  }

  /** The API's query parameters for these filters. */
  static params(state) {
    return { session: state.session, call_type: state.type, user: state.user };
  }

  /** Whether a row Live received belongs in the filtered log. */
  static matches(state, row) {
    return (!state.session || row.session_id === state.session) && (!state.type || row.call_type === state.type)
      && (!state.user || (row.metadata || {}).user === state.user);
  }
}
