// Paths of the page: "/", "/compare?a=<name>&b=<name>", "/alerts", "/runs", "/runs/<id>", "/models/<name>",
// "/models/<name>/connect", "/models/<name>/evaluate", "/models/<name>/requests/<id>". Names are one encoded path segment (a name may contain "/").

const listeners = [];

export function parse(loc = window.location) {
  const parts = loc.pathname.split("/").filter(Boolean);
  const params = new URLSearchParams(loc.search);
  if (parts[0] === "alerts" && parts.length === 1) return { page: "alerts", params };
  if (parts[0] === "compare" && parts.length === 1) return { page: "compare", params };
  if (parts[0] === "runs") return { page: "runs", runId: parts[1] ? safeDecode(parts[1]) : null, params };
  if (parts[0] !== "models" || parts.length < 2) return { page: "models", params };
  const name = safeDecode(parts[1]);
  if (parts[2] === "requests" && parts[3]) {
    return { page: "model", name, tab: "usage", requestId: safeDecode(parts[3]), params };
  }
  const tab = ["connect", "evaluate"].includes(parts[2]) ? parts[2] : "usage";
  return { page: "model", name, tab, params };
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function modelPath(name, { tab = "usage", requestId = null } = {}) {
  const base = `/models/${encodeURIComponent(name)}`;
  if (requestId) return `${base}/requests/${encodeURIComponent(requestId)}`;
  return tab === "usage" ? base : `${base}/${tab}`;
}

/** Go to a path of the page without reloading it. */
export function navigate(url, { replace = false, state = null } = {}) {
  const target = new URL(url, window.location.origin);
  const current = window.location.pathname + window.location.search;
  if (target.pathname + target.search === current && !replace) return;
  if (replace) history.replaceState(state, "", target);
  else history.pushState(state, "", target);
  emit();
}

/** Change the query string of the current path (filters) without a new history entry. */
export function setQuery(params) {
  const url = new URL(window.location.href);
  url.search = params.toString();
  history.replaceState(history.state, "", url);
}

export function onRoute(listener) {
  listeners.push(listener);
}

function emit() {
  const route = parse();
  for (const listener of listeners) listener(route);
}

export function start() {
  window.addEventListener("popstate", emit);
  document.addEventListener("click", (event) => {
    const a = event.target.closest && event.target.closest("a[data-link]");
    if (!a || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(a.getAttribute("href"));
  });
  emit();
}
