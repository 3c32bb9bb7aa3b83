// The Evaluate tab of a model card: a form that starts a benchmark or an eval on the server
// (POST /api/runs), then opens the Usage tab filtered to the run's tag with Live on, where the
// run banner follows it; or a sweep (one benchmark per load level), followed here until its
// throughput-vs-latency curve is drawn. Below the form, this model's latest runs.

import { api } from "./api.js";
import { preloadPlotly } from "./charts.js";
import { button, clear, h, pill } from "./dom.js";
import * as fmt from "./format.js";
import { navigate } from "./router.js";
import { headline, STATUS_PILL } from "./run_figures.js";
import { parseLevels, SweepView } from "./sweep_view.js";

const GRADERS = [["", "Each item's own"], ["number", "Number (final answer)"], ["exact", "Exact"],
  ["contains", "Contains"], ["regex", "Regex"], ["choice", "Multiple-choice letter"], ["json_schema", "JSON schema valid"],
  ["grid", "Grid of digits (exact)"]];
const DATASETS = [["arithmetic", "Arithmetic (bundled, 50 questions, number grader)"],
  ["arc_agi_subset", "ARC-AGI subset (bundled, 30 puzzles, grid grader)"]];

function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control,
    hint ? h("span", { class: "field-hint" }, hint) : null);
}

function num(name, value, attrs = {}) {
  return h("input", { class: "input", type: "number", name, value: value == null ? "" : String(value), ...attrs });
}

function select(name, options, value) {
  const el = h("select", { class: "select", name }, options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = value;
  return el;
}

export class EvaluateTab {
  constructor(name) {
    this.name = name;
    this.kind = "bench";
    this.error = h("div", { class: "callout callout-error", role: "alert", hidden: true });
    this.kindSeg = h("div", { class: "seg", role: "tablist", "aria-label": "Kind of run" },
      this.kindBtn("bench", "Benchmark"), this.kindBtn("sweep", "Sweep"), this.kindBtn("eval", "Eval"));
    this.benchFields = this.buildBench();
    this.sweepFields = this.buildSweep();
    this.evalFields = this.buildEval();
    this.sweepPanel = h("div", { class: "sweep-panel" });
    this.sweep = null;
    this.submit = button("Start benchmark", { type: "submit", class: "btn-primary", id: "start-run" });
    this.form = h("form", { class: "card eval-form", onsubmit: (e) => this.start(e) },
      h("div", { class: "eval-head" }, h("h2", {}, "Evaluate ", h("code", {}, name)), this.kindSeg),
      h("p", { class: "subtle" }, "The run executes on this server, through its own /v1 like any client; its requests are ",
        "tagged, recorded and priced like any others. You can leave the page: the run goes on."),
      this.benchFields, this.sweepFields, this.evalFields, this.error, h("div", { class: "form-actions" }, this.submit));
    this.recent = h("div", { class: "recent-runs" });
    this.el = h("div", { class: "evaluate-tab" }, this.form, this.sweepPanel, this.recent);
    this.setKind("bench");
    this.loadRecent();
  }

  kindBtn(kind, label) {
    return h("button", { type: "button", role: "tab", class: "seg-btn", dataset: { kind },
      onclick: () => this.setKind(kind) }, label);
  }

  setKind(kind) {
    this.kind = kind;
    for (const b of this.kindSeg.children) b.setAttribute("aria-selected", String(b.dataset.kind === kind));
    this.benchFields.hidden = kind !== "bench";
    this.sweepFields.hidden = kind !== "sweep";
    this.evalFields.hidden = kind !== "eval";
    if (kind === "sweep") preloadPlotly(); // the sweep's curve is drawn here
    this.submit.lastChild.textContent = { bench: "Start benchmark", sweep: "Start sweep", eval: "Start eval" }[kind];
  }

  buildSweep() {
    const f = (this.s = {
      by: select("sweep_by", [["concurrency", "Concurrency (closed loop)"], ["rate", "Request rate (Poisson)"]],
        "concurrency"),
      levels: h("input", { class: "input", type: "text", name: "levels", value: "1, 2, 4, 8", inputmode: "decimal",
        autocomplete: "off" }),
      requests: num("sweep_requests", 40, { min: 1, max: 100000 }),
      input: num("sweep_input_tokens", 128, { min: 1, max: 32768 }),
      output: num("sweep_output_tokens", 64, { min: 1, max: 32768 }),
      stream: h("input", { type: "checkbox", name: "sweep_stream", checked: true }),
    });
    return h("fieldset", { class: "eval-fields" }, h("div", { class: "eval-grid" },
      field("Sweep over", f.by), field("Levels", f.levels, "comma-separated: one benchmark each, in order"),
      field("Requests per level", f.requests), field("Prompt tokens", f.input),
      field("Output tokens (max)", f.output),
      h("label", { class: "field field-check" }, f.stream, h("span", {}, "Streamed responses"))));
  }

  buildBench() {
    const f = (this.b = {
      stopBy: select("stop_by", [["requests", "A number of requests"], ["duration", "A duration"]], "requests"),
      requests: num("requests", 50, { min: 1, max: 100000 }),
      duration: num("duration_s", 30, { min: 1, max: 3600 }),
      loadBy: select("load_by", [["concurrency", "Concurrency (closed loop)"], ["rate", "Request rate (Poisson)"]],
        "concurrency"),
      concurrency: num("concurrency", 4, { min: 1, max: 256 }),
      rate: num("rate", 5, { min: 0.1, max: 1000, step: "any" }),
      stream: h("input", { type: "checkbox", name: "stream", checked: true }),
      input: num("input_tokens", 128, { min: 1, max: 32768 }),
      output: num("output_tokens", 128, { min: 1, max: 32768 }),
      warmup: num("warmup", 0, { min: 0, max: 100 }),
      ttft: num("slo_ttft", null, { min: 1, placeholder: "none" }),
      tpot: num("slo_tpot", null, { min: 1, placeholder: "none" }),
      e2e: num("slo_e2e", null, { min: 1, placeholder: "none" }),
    });
    this.requestsField = field("Requests", f.requests);
    this.durationField = field("Duration (s)", f.duration);
    this.concurrencyField = field("Concurrency", f.concurrency, "requests in flight");
    this.rateField = field("Rate (req/s)", f.rate, "Poisson arrivals");
    const sync = () => {
      this.requestsField.hidden = f.stopBy.value !== "requests";
      this.durationField.hidden = f.stopBy.value !== "duration";
      this.concurrencyField.hidden = f.loadBy.value !== "concurrency";
      this.rateField.hidden = f.loadBy.value !== "rate";
    };
    f.stopBy.addEventListener("change", sync);
    f.loadBy.addEventListener("change", sync);
    sync();
    return h("fieldset", { class: "eval-fields" },
      h("div", { class: "eval-grid" },
        field("Stop after", f.stopBy), this.requestsField, this.durationField,
        field("Load", f.loadBy), this.concurrencyField, this.rateField,
        field("Prompt length (tokens)", f.input), field("Output length (tokens)", f.output),
        field("Warm-up requests", f.warmup, "not counted; tagged …:warmup"),
        h("label", { class: "field field-check" }, f.stream, h("span", {}, "Streamed responses"))),
      h("div", { class: "eval-slos" }, h("span", { class: "field-label" }, "Goodput SLOs (ms, optional)"),
        h("div", { class: "eval-grid" }, field("TTFT ≤", f.ttft), field("TPOT ≤", f.tpot), field("Latency ≤", f.e2e))));
  }

  buildEval() {
    const f = (this.e = {
      dataset: select("dataset", DATASETS, "arithmetic"),
      grader: select("grader", GRADERS, ""),
      tolerance: num("tolerance", null, { min: 0, step: "any", placeholder: "exact" }),
      concurrency: num("eval_concurrency", 4, { min: 1, max: 256 }),
      maxTokens: num("max_tokens", 64, { min: 1, max: 32768 }),
      stream: h("input", { type: "checkbox", name: "eval_stream", checked: true }),
    });
    return h("fieldset", { class: "eval-fields" }, h("div", { class: "eval-grid" },
      field("Data set", f.dataset), field("Grader", f.grader, "judges the final answer"),
      field("Tolerance", f.tolerance, "number grader: ± absolute"),
      field("Concurrency", f.concurrency),
      field("Max tokens per answer", f.maxTokens, "an item's own wins (ARC sizes its own)"),
      h("label", { class: "field field-check" }, f.stream, h("span", {}, "Streamed responses"))));
  }

  spec() {
    const n = (el) => (el.value === "" ? null : Number(el.value));
    if (this.kind === "sweep") {
      const s = this.s;
      const levels = parseLevels(s.levels.value);
      if (!levels) throw new Error("levels must be numbers above zero, separated by commas (e.g. 1, 2, 4, 8)");
      return { kind: "sweep", model: this.name, sweep_by: s.by.value, levels, requests: n(s.requests),
        input_tokens: n(s.input), output_tokens: n(s.output), stream: s.stream.checked };
    }
    if (this.kind === "eval") {
      const e = this.e;
      return { kind: "eval", model: this.name, dataset: e.dataset.value, grader: e.grader.value || null,
        tolerance: n(e.tolerance), concurrency: n(e.concurrency), max_tokens: n(e.maxTokens), stream: e.stream.checked };
    }
    const b = this.b;
    const slos = { ttft: n(b.ttft), tpot: n(b.tpot), e2e: n(b.e2e) };
    const anySlo = Object.values(slos).some((v) => v != null);
    return {
      kind: "bench", model: this.name, stream: b.stream.checked,
      requests: b.stopBy.value === "requests" ? n(b.requests) : null,
      duration_s: b.stopBy.value === "duration" ? n(b.duration) : null,
      concurrency: b.loadBy.value === "concurrency" ? n(b.concurrency) : null,
      rate: b.loadBy.value === "rate" ? n(b.rate) : null,
      input_tokens: n(b.input), output_tokens: n(b.output), warmup: n(b.warmup) || 0,
      slos_ms: anySlo ? slos : null,
    };
  }

  async start(event) {
    event.preventDefault();
    this.error.hidden = true;
    this.submit.disabled = true;
    try {
      const run = await api.startRun(this.spec());
      if (run.kind === "sweep") this.follow(run);
      else navigate(run.report.usage_url);
    } catch (err) {
      this.error.textContent = `Could not start the run: ${err.message}`;
      this.error.hidden = false;
    } finally {
      this.submit.disabled = false;
    }
  }

  /** Follow a sweep just started, here: its levels as they run, then its curve. */
  follow(run) {
    if (this.sweep) this.sweep.destroy();
    this.sweep = new SweepView(run.id, () => this.loadRecent());
    clear(this.sweepPanel).append(this.sweep.el);
    this.sweep.show(run);
    this.sweep.follow();
    this.sweep.el.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  destroy() {
    if (this.sweep) this.sweep.destroy();
  }

  async loadRecent() {
    let runs;
    try {
      ({ data: runs } = await api.runs({ deployment: this.name, limit: 10 }));
    } catch {
      return;
    }
    clear(this.recent);
    if (!runs.length) return;
    this.recent.append(h("div", { class: "card recent-card" },
      h("div", { class: "log-head" }, h("h2", {}, "Latest runs of this model"),
        h("a", { href: "/runs", "data-link": true }, "All runs")),
      h("ul", { class: "recent-list" }, runs.map((r) => {
        const status = (r.report && r.report.status) || "done";
        return h("li", {}, h("a", { href: `/runs/${encodeURIComponent(r.id)}`, "data-link": true, class: "mono" }, r.id),
          " ", pill(r.kind, "neutral"), " ", pill(status, STATUS_PILL[status] || "neutral"),
          h("span", { class: "subtle" }, ` ${fmt.dateTime(r.created)} · ${headline(r)}`));
      }))));
  }
}
