// Where a deployment comes from and how it is priced, in words, from what the API says
// (GET /api/deployments/{name}: `source`, `price`, `local`). Built-in defaults are not from a
// config file, and an embedded model is not priced from a catalog.

import * as fmt from "./format.js";

const BUILT_IN = new Set(["builtin", "built-in", "default", "defaults"]);

/** "api", "config" or "builtin" (any other value the API may add is shown as is). */
export function originOf(dep) {
  const source = String(dep.source || "");
  if (BUILT_IN.has(source)) return "builtin";
  return source || "config";
}

export function definedIn(dep) {
  const origin = originOf(dep);
  if (origin === "api") return "Added at run time (API or page)";
  if (origin === "config") return "The config file";
  if (origin === "builtin") return "Built in (a default: no config file defines deployments)";
  return origin;
}

export function pricesText(dep) {
  if (dep.price && Object.keys(dep.price).length) {
    const set = Object.entries(dep.price).map(([k, v]) => `${k.replaceAll("_", " ")} ${fmt.rate(v)}`).join(", ");
    return `${set} (this deployment's own prices)`;
  }
  if (dep.local) return "None: an embedded model runs free";
  return `From the genai-prices catalog, for the upstream model ${dep.model || ""}`.trim();
}

/** Why a deployment cannot be removed from the page, or null if it can. */
export function whyNotRemovable(dep) {
  const origin = originOf(dep);
  if (origin === "api") return null;
  if (origin === "builtin") {
    return "It is a built-in default, served because no config file lists deployments. Start the " +
      "server with a config file that lists the deployments you want ([[deployments]]); the defaults " +
      "are then not served.";
  }
  if (origin === "config") {
    return "It is defined in the server's config file. Remove its [[deployments]] entry there and " +
      "restart the server.";
  }
  return `It comes from ${origin}, not from the API: only deployments added at run time can be removed here.`;
}
