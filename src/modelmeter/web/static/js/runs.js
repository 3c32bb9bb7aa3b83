// The Runs page: every stored run (the CLI's and the server's) with its headline figures; one run's
// report (/runs/<id>); two to six runs side by side with coloured deltas against the first and their
// latency over time overlaid (/runs?compare=A,B,…). A run file from `runs export` is imported here.

import { api } from "./api.js";
import { append, button, clear, h, pill } from "./dom.js";
import * as fmt from "./format.js";
import { modelPath, navigate } from "./router.js";
import { histograms } from "./run_charts.js";
import { delta, METRICS, shape, shown, STATUS_PILL } from "./run_figures.js";
import { SweepView } from "./sweep_view.js";
import { importControl } from "./run_import.js";
import { latencyOverlay } from "./run_overlay.js";

const REFRESH_MS = 2000; // while a run is running
export const COMPARE_MAX = 6;

function statusOf(run) {
  return (run.report && run.report.status) || "done";
}

function statusPill(run) {
  const s = statusOf(run);
  return pill(s, STATUS_PILL[s] || "neutral");
}

function runLink(run) {
  return h("a", { href: `/runs/${encodeURIComponent(run.id)}`, "data-link": true, class: "mono" }, run.id);
}

export class RunsPage {
  constructor(root, route) {
    this.root = root;
    this.alive = true;
    this.selected = new Set();
    this.timer = null;
    this.update(route);
  }

  update(route) {
    clearTimeout(this.timer);
    this.dropSweep();
    if (this.importer) clear(this.importer.status); // what the last import said is for the list it was made on
    const compare = (route.params.get("compare") || "").split(",").filter(Boolean);
    if (route.runId) this.showRun(route.runId);
    else if (compare.length >= 2) this.showCompare([...new Set(compare)].slice(0, COMPARE_MAX));
    else this.showList();
  }

  destroy() {
    this.alive = false;
    clearTimeout(this.timer);
    this.dropSweep();
  }

  dropSweep() {
    if (this.sweep) this.sweep.destroy();
    this.sweep = null;
  }

  head(title, sub, ...actions) {
    return h("div", { class: "page-head" }, h("div", {}, h("h1", {}, title), sub ? h("p", { class: "subtle" }, sub) : null),
      h("div", { class: "head-actions" }, actions));
  }

  fail(err) {
    clear(this.root).append(h("div", { class: "callout callout-error", role: "alert" }, `Could not load: ${err.message}`));
  }

  // --- the list -----------------------------------------------------------------------------

  async showList() {
    document.title = "Runs · modelmeter";
    let data;
    try {
      ({ data } = await api.runs({ limit: 200 }));
    } catch (err) {
      return this.fail(err);
    }
    if (!this.alive) return;
    const known = new Set(data.map((r) => r.id));
    for (const id of [...this.selected]) if (!known.has(id)) this.selected.delete(id);
    this.compareBtn = button("Compare selected", { class: "btn-primary", id: "compare-runs",
      onclick: () => navigate(`/runs?compare=${[...this.selected].map(encodeURIComponent).join(",")}`) });
    this.syncCompare();
    const body = data.length ? this.table(data) : h("div", { class: "empty-panel" }, h("h3", {}, "No runs yet"),
      h("p", { class: "subtle" }, "Start one from a model's Evaluate tab, or run `modelmeter bench`."));
    // One importer for the page: the list refreshes while a run is running, and what an import
    // said (an error, the offer to import as a copy) must outlive that.
    this.importer = this.importer || importControl((run) => {
      this.selected.add(run.id);
      this.showList();
    });
    append(clear(this.root), [this.head("Runs",
      `Benchmarks and evals, from the page and the CLI. Select 2 to ${COMPARE_MAX} to compare.`,
      this.importer.button, this.compareBtn), this.importer.status, body]);
    if (data.some((r) => statusOf(r) === "running")) this.timer = setTimeout(() => this.showList(), REFRESH_MS);
  }

  syncCompare() {
    if (!this.compareBtn) return;
    const n = this.selected.size;
    this.compareBtn.disabled = n < 2 || n > COMPARE_MAX;
    this.compareBtn.lastChild.textContent = `Compare selected (${n})`;
    this.compareBtn.title = n > COMPARE_MAX ? `At most ${COMPARE_MAX} runs at once` : "";
  }

  table(runs) {
    const cols = ["", "Run", "Model", "Date", "Shape", "Status", ...METRICS.map((m) => m[1])];
    return h("div", { class: "card table-scroll runs-card" }, h("table", { class: "runs-table" },
      h("thead", {}, h("tr", {}, cols.map((c, i) => h("th", { class: i > 5 ? "num" : null }, c)))),
      h("tbody", {}, runs.map((run) => {
        const box = h("input", { type: "checkbox", "aria-label": `Select ${run.id}`, checked: this.selected.has(run.id),
          onchange: () => {
            if (box.checked) this.selected.add(run.id);
            else this.selected.delete(run.id);
            this.syncCompare();
          } });
        return h("tr", { dataset: { run: run.id } },
          h("td", {}, box), h("td", {}, runLink(run), " ", pill(run.kind, "neutral")),
          h("td", {}, run.deployment ? h("a", { href: modelPath(run.deployment), "data-link": true }, run.deployment) : fmt.DASH),
          h("td", { class: "cell-time" }, fmt.time(run.created)), h("td", {}, shape(run)), h("td", {}, statusPill(run)),
          METRICS.map((m) => h("td", { class: "num", dataset: { metric: m[0] } }, shown(run, m))));
      }))));
  }

  // --- one run ------------------------------------------------------------------------------

  async showRun(id) {
    document.title = `${id} · Runs · modelmeter`;
    let run;
    try {
      run = await api.run(id);
    } catch (err) {
      return this.fail(err);
    }
    if (!this.alive) return;
    if (run.kind === "sweep") return this.showSweep(run);
    const r = run.report || {};
    const watch = r.usage_url || (run.deployment ? `${modelPath(run.deployment)}?tag=${run.kind}:${run.id}&window=7d` : null);
    append(clear(this.root), [
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/runs", "data-link": true }, "Runs"),
        h("span", { "aria-hidden": "true" }, "/"), h("span", {}, run.id)),
      this.head(run.id, `${run.kind} of ${run.deployment || "?"} · ${fmt.dateTime(run.created)} · ${shape(run)}`,
        statusPill(run), watch ? h("a", { class: "btn btn-sm", href: watch, "data-link": true }, "Its requests") : null,
        h("a", { class: "btn btn-sm", href: `/api/runs/${encodeURIComponent(run.id)}`, download: `${run.id}.json` },
          "Export JSON")),
      r.error ? h("div", { class: "callout callout-error" }, r.error) : null,
      h("div", { class: "card run-figures-card" }, h("dl", { class: "kv run-kv" },
        METRICS.map((m) => [h("dt", {}, m[1]), h("dd", { class: "num", dataset: { metric: m[0] } }, shown(run, m))]))),
      histograms(r), this.comparison(r), this.items(r)]); // append() skips the parts a run lacks
    if (statusOf(run) === "running") this.timer = setTimeout(() => this.showRun(id), REFRESH_MS);
  }

  /** A sweep: its levels (each a bench run of its own) and its curve; it follows itself while it runs. */
  showSweep(run) {
    this.dropSweep();
    this.sweep = new SweepView(run.id, () => this.alive && this.showRun(run.id));
    clear(this.root).append(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/runs", "data-link": true }, "Runs"),
        h("span", { "aria-hidden": "true" }, "/"), h("span", {}, run.id)),
      this.head(run.id, `sweep of ${run.deployment || "?"} · ${fmt.dateTime(run.created)} · ${shape(run)}`,
        statusPill(run), h("a", { class: "btn btn-sm", href: `/api/runs/${encodeURIComponent(run.id)}`,
          download: `${run.id}.json` }, "Export JSON")),
      this.sweep.el);
    this.sweep.show(run);
    if (statusOf(run) === "running") this.sweep.follow();
  }

  comparison(r) {
    const c = r.server_comparison;
    if (!c) return null;
    return h("section", { class: "card run-section" }, h("h2", {}, "Client vs the server's records ",
      pill(c.agree ? "agree" : "differ", c.agree ? "success" : "error")),
    h("table", { class: "runs-table" }, h("thead", {}, h("tr", {}, ["Metric", "Client", "Server", "Rule"].map((t) => h("th", {}, t)))),
      h("tbody", {}, c.rows.map((row) => h("tr", { dataset: { metric: row.metric } }, h("td", {}, row.metric),
        h("td", { class: "num" }, String(row.client ?? fmt.DASH)), h("td", { class: "num" }, String(row.server ?? fmt.DASH)),
        h("td", { class: row.ok ? "tone-good" : "tone-bad" }, row.rule))))));
  }

  items(r) {
    if (!Array.isArray(r.results)) return null;
    return h("section", { class: "card run-section table-scroll" },
      h("h2", {}, `Items: ${r.correct ?? 0} of ${r.items ?? r.results.length} correct`),
      h("table", { class: "runs-table items-table" },
        h("thead", {}, h("tr", {}, ["#", "Prompt", "Expected", "Answer", "Grade", "Latency", "Cost"].map((t) => h("th", {}, t)))),
        h("tbody", {}, r.results.map((row) => h("tr", { dataset: { item: String(row.index) } },
          h("td", { class: "num" }, String(row.index + 1)), h("td", { class: "cell-text" }, row.prompt),
          h("td", { class: "mono" }, String(row.answer_expected ?? JSON.stringify(row.expected))),
          h("td", { class: "cell-text mono" }, row.answer ?? row.error ?? fmt.DASH),
          h("td", { dataset: { grade: row.correct ? "right" : "wrong" } },
            row.correct ? pill("✓ right", "success") : pill("✗ wrong", "error")),
          h("td", { class: "num" }, fmt.ms(row.latency_ms)), h("td", { class: "num" }, fmt.usd(row.cost)))))));
  }

  // --- two to six runs side by side ---------------------------------------------------------

  async showCompare(ids) {
    document.title = "Compare runs · modelmeter";
    let runs;
    try {
      runs = await Promise.all(ids.map((id) => api.run(id)));
    } catch (err) {
      return this.fail(err);
    }
    if (!this.alive) return;
    const [a, ...others] = runs;
    const letter = (i) => "ABCDEF"[i];
    const cell = (run, i) => h("th", {}, h("span", { class: "run-letter" }, letter(i)), " ", runLink(run),
      h("div", { class: "subtle small" }, `${run.deployment || "?"} · ${fmt.time(run.created)}`),
      h("div", { class: "subtle small" }, shape(run)));
    clear(this.root).append(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/runs", "data-link": true }, "Runs"),
        h("span", { "aria-hidden": "true" }, "/"), h("span", {}, "Compare")),
      this.head("Compare runs", `${others.length > 1 ? "Each run" : "B"} against A: green is better, red is worse.`),
      h("div", { class: "card table-scroll runs-card" }, h("table", { class: "runs-table compare-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Metric"), cell(a, 0),
          others.map((run, i) => [cell(run, i + 1), h("th", { class: "num" }, `Δ ${letter(i + 1)} − A`)]))),
        h("tbody", {}, METRICS.map((m) => h("tr", { dataset: { metric: m[0] } }, h("td", {}, m[1]),
          h("td", { class: "num" }, shown(a, m)), others.map((run) => {
            const d = delta(a, run, m);
            return [h("td", { class: "num" }, shown(run, m)), h("td", { class: `num delta ${d.tone ? `tone-${d.tone}` : ""}`,
              dataset: { tone: d.tone || "same", run: run.id } }, d.text)];
          })))))),
      latencyOverlay(runs));
  }
}
