// The JSON API under /api: one function per call, errors as ApiError with the API's message.

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function call(path, options = {}) {
  let res;
  try {
    res = await fetch(path, { headers: { accept: "application/json" }, ...options });
  } catch (err) {
    throw new ApiError(`Cannot reach the server (${err.message}).`, 0, null);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const message = body && body.error && body.error.message;
    throw new ApiError(message || `${res.status} ${res.statusText}`, res.status, body);
  }
  return body;
}

/** "?a=1&b=2" from the values that are set. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value != null && value !== "") q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

const dep = (name) => `/api/deployments/${encodeURIComponent(name)}`;

export const api = {
  deployments: () => call("/api/deployments"),
  deployment: (name) => call(dep(name)),
  fleet: (params) => call(`/api/fleet/usage${query(params)}`),
  addDeployment: (definition) => call("/api/deployments", {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify(definition),
  }),
  removeDeployment: (name) => call(dep(name), { method: "DELETE" }),
  usage: (name, params) => call(`${dep(name)}/usage${query(params)}`),
  timeseries: (name, params) => call(`${dep(name)}/usage/timeseries${query(params)}`),
  distribution: (name, params) => call(`${dep(name)}/usage/distribution${query(params)}`),
  throughput: (name, params) => call(`${dep(name)}/usage/throughput${query(params)}`),
  errors: (name, params) => call(`${dep(name)}/usage/errors${query(params)}`),
  costs: (name, params) => call(`${dep(name)}/usage/costs${query(params)}`),
  cache: (name, params) => call(`${dep(name)}/usage/cache${query(params)}`),
  retries: (name, params) => call(`${dep(name)}/usage/retries${query(params)}`),
  reasoning: (name, params) => call(`${dep(name)}/usage/reasoning${query(params)}`),
  breakdown: (name, params) => call(`${dep(name)}/usage/breakdown${query(params)}`),
  breakdownCsv: (name, params) => `${dep(name)}/usage/breakdown${query({ ...params, format: "csv" })}`,
  requests: (name, params) => call(`${dep(name)}/requests${query(params)}`),
  record: (id) => call(`/api/requests/${encodeURIComponent(id)}`),
  exportUrl: (name, format, params) => `${dep(name)}/requests/export${query({ ...params, format })}`,
  eventsUrl: (name) => `${dep(name)}/events`,
  resetUpstream: (deployment, upstream) => call("/api/upstreams/reset", {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify({ deployment, upstream }),
  }),
  runs: (params) => call(`/api/runs${query(params)}`),
  run: (id) => call(`/api/runs/${encodeURIComponent(id)}`),
  startRun: (spec) => call("/api/runs", {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify(spec),
  }),
  // The file's text as it is: the server checks it (JSON, format version, id not taken).
  importRun: (text, newId = false) => call(`/api/runs/import${query({ new_id: newId ? "true" : null })}`, {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: text,
  }),
  stopRun: (id) => call(`/api/runs/${encodeURIComponent(id)}/stop`, { method: "POST" }),
  alerts: () => call("/api/alerts"),
  alertMarks: (name, params) => call(`/api/alerts/marks${query({ ...params, deployment: name })}`),
  alertHistory: (name) => call(`/api/alerts/${encodeURIComponent(name)}/history`),
};
