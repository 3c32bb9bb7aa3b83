// Entry point: the router picks the page; a model page stays mounted while only its drawer,
// tab or filters change.

import { AlertsPage } from "./alerts.js";
import { ComparePage } from "./compare.js";
import { ModelPage } from "./model.js";
import { ModelsPage } from "./models.js";
import { onRoute, start } from "./router.js";
import { RunsPage } from "./runs.js";

const root = document.getElementById("app");
let current = null;

onRoute((route) => {
  if (route.page === "runs" && current instanceof RunsPage) {
    current.update(route);
    return;
  }
  if (route.page === "compare" && current instanceof ComparePage) {
    current.update(route);
    return;
  }
  if (route.page === "model" && current instanceof ModelPage && current.name === route.name) {
    current.update(route);
    return;
  }
  if (current && current.destroy) current.destroy();
  window.scrollTo(0, 0);
  if (route.page === "model") current = new ModelPage(root, route);
  else if (route.page === "alerts") current = new AlertsPage(root);
  else if (route.page === "compare") current = new ComparePage(root, route);
  else if (route.page === "runs") current = new RunsPage(root, route);
  else current = new ModelsPage(root);
  const section = route.page === "model" || route.page === "compare" ? "models" : route.page;
  for (const a of document.querySelectorAll(".topnav a[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === section);
  }
});

start();
