// The run banner of the Usage tab: when the tab is filtered to a run's tag (bench:ID, eval:ID),
// the run's progress — done / failed, req/s, tokens/s, p50 TTFT so far — polled every second
// while it runs, then its end; Stop for a run the server runs. A run started from the CLI is
// stored when it ends: until then the banner says so and keeps looking for it.

import { api } from "./api.js";
import { button, h, pill } from "./dom.js";
import * as fmt from "./format.js";
import { STATUS_PILL } from "./run_figures.js";

const TAG = /^(bench|eval):([A-Za-z0-9][A-Za-z0-9._:-]{0,63})$/;
const POLL_MS = 1000;
const two = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export class RunBanner {
  constructor() {
    this.runId = null;
    this.timer = null;
    this.status = h("span", {});
    this.figures = h("span", { class: "run-figures", dataset: { role: "run-figures" } });
    this.link = h("a", { "data-link": true, class: "mono" });
    this.stopBtn = button("Stop run", { class: "btn-sm", id: "run-stop", hidden: true, onclick: () => this.stop() }, "stop");
    this.progress = h("progress", { class: "run-progress", max: "1", value: "0", "aria-label": "Run progress" });
    this.el = h("div", { class: "banner banner-run", role: "status", hidden: true },
      h("strong", {}, "Run "), this.link, this.status, this.progress, this.figures, this.stopBtn);
  }

  /** Follow the run of this tag (or none). */
  setTag(tag) {
    const m = TAG.exec(tag || "");
    const id = m && !m[2].endsWith(":warmup") ? m[2] : null;
    if (id === this.runId) return;
    this.runId = id;
    clearTimeout(this.timer);
    this.el.hidden = !id;
    if (!id) return;
    this.link.textContent = id;
    this.link.href = `/runs/${encodeURIComponent(id)}`;
    this.figures.textContent = "";
    this.poll();
  }

  async poll() {
    const id = this.runId;
    let run = null;
    try {
      run = await api.run(id);
    } catch (err) {
      if (id !== this.runId) return;
      if (err.status !== 404) this.figures.textContent = err.message;
      else this.show(null);
    }
    if (id !== this.runId) return;
    if (run) this.show(run);
    const status = run && run.report ? run.report.status || "done" : "pending";
    if (status === "running" || status === "pending") this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  show(run) {
    if (!run) {
      this.status.replaceChildren(" ", pill("from the CLI", "neutral"));
      this.figures.textContent = "Running elsewhere: its report appears here when it ends.";
      this.progress.hidden = true;
      this.stopBtn.hidden = true;
      return;
    }
    const r = run.report || {};
    const status = r.status || "done";
    this.el.dataset.status = status;
    this.status.replaceChildren(" ", pill(status, STATUS_PILL[status] || "neutral"));
    const live = r.live;
    let done;
    let failed;
    let reqS;
    let tokS;
    let ttft;
    if (live) {
      ({ done, failed, req_s: reqS, tokens_s: tokS, ttft_p50_ms: ttft } = live);
    } else { // a run stored by the CLI: its report's figures
      done = (r.completed ?? r.answered ?? 0) + (r.failed || 0);
      failed = r.failed || 0;
      reqS = r.request_throughput;
      tokS = r.output_token_throughput;
      ttft = (r.ttft_ms || {}).p50;
    }
    const total = live ? live.total : null;
    const parts = [`${fmt.int(done)}${total ? ` / ${fmt.int(total)}` : ""} done`, `${fmt.int(failed)} failed`,
      `${two.format(reqS || 0)} req/s`, `${two.format(tokS || 0)} tok/s`, `p50 TTFT ${fmt.ms(ttft)}`];
    if (r.status === "failed" && r.error) parts.push(r.error);
    this.figures.textContent = parts.join(" · ");
    this.figures.dataset.done = String(done);
    this.figures.dataset.failed = String(failed);
    const fraction = total ? done / total : live && live.duration_s ? Math.min(live.elapsed_s / live.duration_s, 1) : null;
    this.progress.hidden = status !== "running" || fraction == null;
    if (fraction != null) this.progress.value = String(fraction);
    this.stopBtn.hidden = status !== "running";
  }

  async stop() {
    this.stopBtn.disabled = true;
    try {
      await api.stopRun(this.runId);
    } catch (err) {
      this.figures.textContent = `Could not stop the run: ${err.message}`;
    } finally {
      this.stopBtn.disabled = false;
    }
  }

  destroy() {
    this.runId = null;
    clearTimeout(this.timer);
  }
}
