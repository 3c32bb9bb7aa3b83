// The Runs page's "Import run": a file written by `modelmeter runs export` (here or on another
// server) is sent as it is to POST /api/runs/import, which checks it. A run whose id is taken
// here is never overwritten: the error offers to import it as a copy under a new id.

import { api } from "./api.js";
import { button, clear, h } from "./dom.js";

/** { button, status }: the button for the page head, and where its outcome is said (kept by the
 *  page across its refreshes); onImported(run) once a run is stored. */
export function importControl(onImported) {
  const status = h("div", { dataset: { role: "import-status" } });
  const input = h("input", { type: "file", accept: ".json,application/json", id: "import-run-file", hidden: true,
    "aria-label": "Run file to import", onchange: () => chosen() });
  const btn = button("Import run", { id: "import-run", title: "A JSON file written by `modelmeter runs export`",
    onclick: () => input.click() });

  async function send(file, text, newId) {
    btn.disabled = true;
    clear(status);
    try {
      const run = await api.importRun(text, newId);
      const copy = run.params && run.params.imported_from;
      status.append(h("div", { class: "callout callout-info", role: "status", dataset: { role: "imported" } },
        copy ? `Imported ${file.name} as a copy: run ${run.id} (its id ${copy} was taken).`
          : `Imported run ${run.id} from ${file.name}.`));
      onImported(run);
    } catch (err) {
      const exists = err.body && err.body.error && err.body.error.code === "run_exists";
      status.append(h("div", { class: "callout callout-error", role: "alert", dataset: { role: "import-error" } },
        `Could not import ${file.name}: ${err.message} `,
        exists ? button("Import as a copy", { id: "import-copy", class: "btn-sm",
          onclick: () => send(file, text, true) }) : null));
    } finally {
      btn.disabled = false;
    }
  }

  async function chosen() {
    const file = input.files && input.files[0];
    input.value = ""; // the same file can be chosen again
    if (!file) return;
    let text;
    try {
      text = await file.text();
    } catch (err) {
      clear(status).append(h("div", { class: "callout callout-error", role: "alert" }, `Cannot read ${file.name}: ${err.message}`));
      return;
    }
    await send(file, text, false);
  }

  return { button: h("span", {}, btn, input), status };
}
