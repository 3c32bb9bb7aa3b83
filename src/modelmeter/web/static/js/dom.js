// Building the page safely: every piece of data becomes a text node, never markup.

const SVG = "http://www.w3.org/2000/svg";

/**
 * h("a", {href, class: "x", onclick}, "text", child, [more]) -> element.
 * Strings and numbers become text nodes; null/false children are skipped. Attributes named on*
 * must be functions (listeners): a string is never turned into code.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** Replace an element's children; null/false children are skipped (as in h()). */
export function replace(el, ...children) {
  return append(clear(el), children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// Our own icons (static path data, 24x24, stroked).
const ICONS = {
  refresh: ["M21 12a9 9 0 1 1-2.64-6.36", "M21 3v6h-6"],
  live: ["M5 12h.01", "M9 8a5.7 5.7 0 0 0 0 8", "M15 8a5.7 5.7 0 0 1 0 8", "M19 5a10 10 0 0 1 0 14",
    "M5 5a10 10 0 0 0 0 14"],
  left: ["M15 18l-6-6 6-6"],
  right: ["M9 18l6-6-6-6"],
  close: ["M18 6 6 18", "M6 6l12 12"],
  copy: ["M9 9h10v10H9z", "M5 15V5h10"],
  check: ["M20 6 9 17l-5-5"],
  plus: ["M12 5v14", "M5 12h14"],
  download: ["M12 3v12", "M7 10l5 5 5-5", "M5 21h14"],
  search: ["M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14z", "M21 21l-4.3-4.3"],
  link: ["M10 14a4 4 0 0 0 5.66 0l3-3a4 4 0 0 0-5.66-5.66l-1 1", "M14 10a4 4 0 0 0-5.66 0l-3 3a4 4 0 0 0 5.66 5.66l1-1"],
  external: ["M14 4h6v6", "M20 4 10 14", "M19 14v5H5V5h5"],
  stop: ["M7 7h10v10H7z"],
  tag: ["M3 12V3h9l9 9-9 9z", "M7.5 7.5h.01"],
};

export function icon(name, size = 16) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("icon");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** Copy text to the clipboard; the button says "Copied" for a moment. */
export async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // Insecure origins (http://host:port on a LAN) have no clipboard API: select-and-copy.
    const area = h("textarea", { class: "sr-only", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    ok = document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const label = button.querySelector(".label");
    const before = label ? label.textContent : null;
    button.classList.add("copied");
    if (label) label.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => {
      button.classList.remove("copied");
      if (label) label.textContent = before;
    }, 1500);
  }
  return ok;
}

export function button(label, attrs = {}, iconName = null) {
  const cls = ["btn", attrs.class].filter(Boolean).join(" ");
  return h("button", { type: "button", ...attrs, class: cls },
    iconName ? icon(iconName) : null, label ? h("span", { class: "label" }, label) : null);
}

export function pill(text, kind) {
  return h("span", { class: `pill pill-${kind}` }, text);
}

export function skeleton(cls = "") {
  return h("span", { class: `skeleton ${cls}`, "aria-hidden": "true" });
}
