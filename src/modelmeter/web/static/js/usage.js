// The Usage tab: toolbar (window, Refresh, Live), four cards, charts, and the request log.
// One refresh = three API calls (usage, timeseries, one page of the log), whatever the page size.

import { AgentFilters } from "./agent_filters.js";
import { api } from "./api.js";
import { Cards } from "./cards.js";
import { Charts } from "./charts.js";
import { button, h, icon } from "./dom.js";
import * as fmt from "./format.js";
import { InsightPanels } from "./insights.js";
import { Live } from "./live.js";
import { Paging } from "./paging.js";
import { RunBanner } from "./run_banner.js";
import { navigate, setQuery } from "./router.js";
import { emptyState } from "./snippet.js";
import { PAGE_SIZES, RequestTable } from "./table.js";
import { UpstreamSplit } from "./upstream_split.js";
import { readWindow, SECONDS, WindowControl, windowParams, windowWords, writeWindow } from "./window_control.js";

const LIVE_BATCH = 200; // more new rows than this at one tick: reload the first page instead

export function readState(params) {
  const size = Number(params.get("size"));
  return {
    ...readWindow(params),
    status: ["success", "error"].includes(params.get("status")) ? params.get("status") : "",
    tag: params.get("tag") || "", q: params.get("q") || "", key: params.get("key") || "",
    session: params.get("session") || "", type: params.get("type") || "", user: params.get("user") || "",
    size: PAGE_SIZES.includes(size) ? size : 50, live: params.get("live") === "1",
    insights: params.get("insights") === "1",
  };
}

export class UsageTab {
  constructor(page, params) {
    this.page = page;
    this.name = page.name;
    this.state = readState(params);
    this.paging = new Paging();
    this.paging.restore(params);
    this.nextCursor = null;
    this.newestCursor = null;
    this.seq = 0;
    this.reqSeq = 0;
    this.isEmpty = false;
    this.cards = new Cards((key, filters) => this.openLog(filters));
    this.split = new UpstreamSplit();
    // The charts and insight panels start once the cards and the first page of the log are on screen.
    const painted = new Promise((resolve) => { this.painted = resolve; });
    this.charts = new Charts(painted);
    this.table = new RequestTable({
      onOpen: (id) => page.openRequest(id), onPrev: () => this.goPage(-1), onNext: () => this.goPage(1),
      onSize: (n) => this.set({ size: n }, "log"), onNewest: () => this.reloadLog(),
    });
    this.live = new Live(this, () => this.liveChanged());
    this.insights = new InsightPanels(this.name, (open) => this.insightsToggled(open),
      (filters) => this.openLog({ status: "", ...filters }), painted);
    this.insights.setOpen(this.state.insights);
    this.el = h("div", { class: "usage" }, this.toolbar(), this.banners(), this.cards.el, this.split.el, this.charts.el,
      this.insights.el,
      this.emptyHolder = h("div", { hidden: true }), this.logSection());
    this.syncControls();
    this.refresh(true, { keepPage: true });
    if (this.state.live) this.live.start();
  }

  toolbar() {
    this.windowCtl = new WindowControl((w) => this.set(w, "all"), (message) => this.showError(message));
    this.updated = h("span", { class: "updated subtle" });
    this.liveBtn = button("Live", { class: "btn-live", "aria-pressed": "false", onclick: () => this.live.toggle() }, "live");
    return h("div", { class: "toolbar" },
      h("div", { class: "toolbar-left" }, this.windowCtl.els),
      h("div", { class: "toolbar-right" }, this.updated,
        button("Refresh", { id: "refresh", onclick: () => this.refresh() }, "refresh"), this.liveBtn));
  }

  banners() {
    this.liveText = h("span", {});
    this.liveBanner = h("div", { class: "banner banner-live", role: "status", hidden: true },
      h("span", { class: "pulse", "aria-hidden": "true" }), h("strong", {}, "Live mode is on"), this.liveText,
      button("Stop", { class: "btn-sm", id: "live-stop", onclick: () => this.live.stop() }, "stop"));
    this.tagText = h("code", {});
    this.tagBanner = h("div", { class: "banner banner-filter", hidden: true },
      icon("tag"), h("span", {}, "Only requests tagged "), this.tagText,
      h("span", { class: "subtle" }, " — the cards, charts and log are all filtered."),
      button("Clear filter", { class: "btn-sm btn-ghost", onclick: () => this.set({ tag: "" }, "all") }));
    this.error = h("div", { class: "callout callout-error", role: "alert", hidden: true });
    this.runBanner = new RunBanner();
    return [this.runBanner.el, this.liveBanner, this.tagBanner, this.error];
  }

  logSection() {
    const seg = (value, label) => h("button", { type: "button", role: "tab", class: "seg-btn",
      dataset: { status: value }, onclick: () => this.set({ status: value }, "log") }, label);
    this.statusSeg = h("div", { class: "seg", role: "tablist", "aria-label": "Status" },
      seg("", "All"), seg("success", "Success"), seg("error", "Error"));
    this.tagIn = h("input", { class: "input input-sm", name: "tag", placeholder: "Tag, e.g. bench:run-1",
      "aria-label": "Filter by tag", spellcheck: "false" });
    this.keyIn = h("input", { class: "input input-sm", name: "key", placeholder: "API key alias",
      "aria-label": "Filter by API key alias", spellcheck: "false" });
    this.agent = new AgentFilters((changes) => this.set(changes, "log"));
    this.searchIn = h("input", { class: "input input-sm", name: "q", type: "search", placeholder: "Find by request ID",
      "aria-label": "Find by request ID", spellcheck: "false" });
    this.csv = h("a", { class: "btn btn-sm btn-ghost", download: true, dataset: { export: "csv" } }, icon("download"), "CSV");
    this.jsonl = h("a", { class: "btn btn-sm btn-ghost", download: true, dataset: { export: "jsonl" } }, icon("download"), "JSONL");
    this.log = h("section", { class: "card log-section", id: "requests-log", "aria-label": "Request log" },
      h("div", { class: "log-head" },
        h("h2", {}, "Requests"),
        h("div", { class: "filters" }, this.statusSeg,
          h("form", { class: "input-icon", onsubmit: (e) => { e.preventDefault(); this.set({ tag: this.tagIn.value.trim() }, "all"); } },
            icon("tag"), this.tagIn),
          h("form", { class: "input-icon", onsubmit: (e) => { e.preventDefault(); this.set({ key: this.keyIn.value.trim() }, "log"); } },
            icon("search"), this.keyIn),
          this.agent.els,
          h("form", { class: "input-icon", onsubmit: (e) => { e.preventDefault(); this.set({ q: this.searchIn.value.trim() }, "log"); } },
            icon("search"), this.searchIn),
          h("div", { class: "export", title: "Download the filtered log" }, this.csv, this.jsonl))),
      this.table.el);
    this.searchIn.addEventListener("search", () => { // the clear (×) of a search field
      if (!this.searchIn.value && this.state.q) this.set({ q: "" }, "log");
    });
    return this.log;
  }

  // --- state ------------------------------------------------------------------------------

  apiParams() {
    const s = this.state;
    return { ...windowParams(s), tag: s.tag };
  }

  logParams() {
    return { ...this.apiParams(), status: this.state.status, key_alias: this.state.key, request_id: this.state.q,
      limit: this.state.size, ...AgentFilters.params(this.state) };
  }

  /** "View these requests" (a card, a chart bucket): the log with these filters, scrolled to. */
  openLog(changes) {
    // A tag filters the cards and charts too (a breakdown's tag row); the others only the log.
    this.set(changes, "tag" in changes && changes.tag !== this.state.tag ? "all" : "log");
    this.log.scrollIntoView({ block: "start" });
  }

  insightsToggled(open) {
    if (open === this.state.insights) return; // set from the URL
    this.state.insights = open;
    this.writeUrl();
    if (open) this.loadInsights();
  }

  /** The insight panels, when their disclosure is open (closed, a refresh stays three calls). */
  loadInsights() {
    if (!this.insights.open) return Promise.resolve();
    return this.insights.load(this.apiParams());
  }

  /** Change filters; `scope` "all" refreshes everything, "log" only the request log. */
  set(changes, scope) {
    Object.assign(this.state, changes);
    this.paging.reset(); // other filters, other pages: back to the first
    this.writeUrl();
    this.syncControls();
    if (scope === "all") this.refresh(true);
    else this.reloadLog();
  }

  writeUrl() {
    const s = this.state;
    const q = new URLSearchParams();
    writeWindow(q, s);
    for (const key of ["status", "tag", "key", "q", "session", "type", "user"]) if (s[key]) q.set(key, s[key]);
    if (s.size !== 50) q.set("size", String(s.size));
    if (s.insights) q.set("insights", "1");
    if (this.live.on) q.set("live", "1");
    this.paging.writeTo(q);
    setQuery(q);
  }

  syncControls() {
    const s = this.state;
    this.windowCtl.sync(s);
    for (const b of this.statusSeg.children) b.setAttribute("aria-selected", String(b.dataset.status === s.status));
    this.tagIn.value = s.tag;
    this.searchIn.value = s.q;
    this.keyIn.value = s.key;
    this.agent.sync(s);
    this.table.setSize(s.size);
    this.tagBanner.hidden = !s.tag;
    this.runBanner.setTag(s.tag);
    this.tagText.textContent = s.tag;
    const exportParams = { ...this.apiParams(), status: s.status, key_alias: s.key, ...AgentFilters.params(s) };
    this.csv.href = api.exportUrl(this.name, "csv", exportParams);
    this.jsonl.href = api.exportUrl(this.name, "jsonl", exportParams);
  }

  /** The URL changed under us (back/forward, a page turn, a tag link in the drawer). */
  syncFromUrl(params) {
    const next = readState(params);
    const s = this.state;
    const all = ["window", "start", "end", "tag"].some((k) => next[k] !== s[k]);
    if (!all && next.live && !this.live.on) this.live.start({ now: true });
    const log = ["status", "q", "size", "session", "type", "user", "key"].some((k) => next[k] !== s[k]);
    const page = this.paging.differs(params);
    if (next.insights !== s.insights) {
      s.insights = next.insights;
      this.insights.setOpen(next.insights);
      if (next.insights && !all) this.loadInsights().catch((err) => this.showError(err.message));
    }
    if (!all && !log && !page) return;
    const startLive = next.live && !this.live.on; // a run just started from the Evaluate tab
    Object.assign(this.state, next, { live: s.live });
    this.paging.restore(params);
    this.syncControls();
    if (startLive) this.live.start();
    if (all) this.refresh(true, { keepPage: true });
    else this.loadRequests().catch((err) => this.showError(err.message));
  }

  // --- loading ----------------------------------------------------------------------------

  /** Everything afresh; the log from its first page unless `keepPage` (the page the URL names). */
  async refresh(skeletons = false, { keepPage = false } = {}) {
    const seq = ++this.seq;
    this.error.hidden = true;
    if (skeletons) {
      this.cards.loading();
      this.charts.loading();
    }
    const p = this.apiParams();
    const cards = api.usage(this.name, p).then((s) => seq === this.seq && this.showSummary(s));
    const series = this.loadSeries(seq, p);
    const log = this.loadRequests(!keepPage);
    Promise.allSettled([cards, log]).then(() => requestAnimationFrame(() => setTimeout(this.painted)));
    const results = await Promise.allSettled([cards, series, log, this.loadInsights()]);
    if (seq !== this.seq) return;
    const failed = results.find((r) => r.status === "rejected");
    if (failed) this.showError(failed.reason.message);
    this.stamp();
  }

  /** The buckets and the alert changes of the window; the charts draw without markers if those fail. */
  loadSeries(seq, p) {
    const marks = api.alertMarks(this.name, p).then((r) => r.data, () => []);
    return Promise.all([api.timeseries(this.name, p), marks])
      .then(([ts, events]) => {
        if (seq !== this.seq) return;
        this.cards.spark(ts);
        this.charts.render(ts, events);
      });
  }

  showSummary(s) {
    this.cards.render(s);
    this.split.render(s);
  }

  get pageIndex() {
    return this.paging.index;
  }

  async loadRequests(reset = false) {
    if (reset && this.paging.index > 0) {
      this.paging.reset();
      this.writeUrl();
    }
    const seq = ++this.reqSeq;
    this.table.loading(Math.min(this.state.size, 10));
    let res;
    try {
      res = await api.requests(this.name, { ...this.logParams(), cursor: this.paging.cursor });
    } catch (err) {
      if (seq === this.reqSeq) this.table.render([], { pageIndex: this.pageIndex, hasNext: false, size: 0, message: err.message });
      throw err;
    }
    if (seq !== this.reqSeq) return;
    this.nextCursor = res.next_cursor;
    if (this.pageIndex === 0) this.newestCursor = res.newest_cursor || null;
    const s = this.state;
    this.setEmpty(this.pageIndex === 0 && !res.data.length && !s.status && !s.tag && !s.key && !s.q && !s.session && !s.type && !s.user);
    let message = "No requests in this window.";
    if (s.q) message = `No request with ID “${s.q}” in this window.`;
    else if (s.status || s.tag || s.key || s.session || s.type || s.user) message = "No requests match these filters.";
    this.table.render(res.data, { pageIndex: this.pageIndex, hasNext: Boolean(res.next_cursor), size: s.size, message });
  }

  reloadLog() {
    return this.loadRequests(true).catch((err) => this.showError(err.message));
  }

  /** A page turn is a new history entry: the router then calls syncFromUrl, which loads it. */
  goPage(direction) {
    const turn = this.paging.turn(direction, this.nextCursor);
    if (turn) navigate(turn.url, { state: turn.state });
  }

  setEmpty(empty) {
    this.isEmpty = empty;
    this.charts.el.hidden = empty;
    this.insights.el.hidden = empty;
    this.log.hidden = empty;
    this.emptyHolder.hidden = !empty;
    if (empty) {
      const where = this.state.window === "custom" ? "in this time range" : `in the ${windowWords(this.state)}`;
      this.emptyHolder.replaceChildren(emptyState(this.name, this.page.dep || {}, () => this.live.start({ now: true }), where));
    }
  }

  showError(message) {
    this.error.textContent = `Could not load usage: ${message}`;
    this.error.hidden = false;
  }

  stamp() {
    this.updatedAt = new Date();
    this.updated.textContent = `Updated ${fmt.time(this.updatedAt.toISOString())}`;
  }

  // --- live -------------------------------------------------------------------------------

  liveChanged() {
    const on = this.live.on;
    this.liveBtn.setAttribute("aria-pressed", String(on));
    this.liveBtn.classList.toggle("active", on);
    this.liveBanner.hidden = !on;
    this.liveText.textContent = this.live.paused
      ? " — paused while this tab is hidden."
      : " — new requests appear as they finish; everything refreshes every 15 seconds.";
    this.writeUrl();
  }

  /** The 15-second refresh: the cards, the charts, and only the rows newer than those shown. */
  async tick() {
    const seq = this.seq;
    const p = this.apiParams();
    const calls = [
      api.usage(this.name, p).then((s) => seq === this.seq && this.showSummary(s)),
      this.loadSeries(seq, p),
      this.loadInsights(),
    ];
    if (this.isEmpty) calls.push(this.loadRequests(true));
    else if (this.pageIndex === 0 && !this.state.q && this.newestCursor) {
      calls.push(api.requests(this.name, { ...this.logParams(), limit: LIVE_BATCH, after: this.newestCursor })
        .then((res) => {
          if (seq !== this.seq || this.pageIndex !== 0) return null;
          this.newestCursor = res.newest_cursor || this.newestCursor;
          if (res.data.length >= LIVE_BATCH) return this.loadRequests(true);
          this.table.prepend(res.data);
          return this.trim();
        }));
    }
    const results = await Promise.allSettled(calls);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) this.showError(failed.reason.message);
    else this.error.hidden = true;
    this.stamp();
  }

  /** One request pushed by the server as it finished (SSE). */
  push(row) {
    if (!this.matches(row) || this.table.has(row.id)) return;
    this.cards.add(row);
    this.charts.add(row);
    if (this.isEmpty) {
      this.reloadLog();
    } else if (this.pageIndex === 0 && !this.state.q) {
      this.table.prepend([row]);
      this.trim();
    } else {
      this.table.noteNew(1);
    }
  }

  /** Page one grows while Live adds rows; past a few pages' worth, start it afresh. */
  trim() {
    if (this.table.count > Math.max(this.state.size * 4, 200)) return this.loadRequests(true);
    return null;
  }

  matches(row) {
    const s = this.state;
    if (s.status && row.status !== s.status) return false;
    if (s.tag && !(row.tags || []).includes(s.tag)) return false;
    if (s.key && row.key_alias !== s.key) return false;
    if (!AgentFilters.matches(s, row)) return false;
    const t = Date.parse(row.start_time);
    if (s.window === "custom") return (!s.start || t >= new Date(s.start).getTime()) && (!s.end || t < new Date(s.end).getTime());
    return t >= Date.now() - SECONDS[s.window] * 1000;
  }

  destroy() {
    this.seq += 1;
    this.live.destroy();
    this.runBanner.destroy();
    this.charts.destroy();
    this.insights.destroy();
  }
}
