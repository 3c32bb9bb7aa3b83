// A tiny inline SVG line of a card's buckets: drawn at once, without waiting for the chart library.

const SVG = "http://www.w3.org/2000/svg";
const W = 120;
const H = 28;

function el(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** values: one number (or null: no data) per bucket, oldest first. */
export function sparkline(values) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "spark", "aria-hidden": "true" });
  let nums = values.map((v) => (v == null ? null : Number(v)));
  if (nums.length === 1) nums = [nums[0], nums[0]]; // one bucket: a level line
  const known = nums.filter((v) => v != null);
  if (!known.length) return svg;
  const max = Math.max(...known);
  const min = Math.min(0, ...known);
  const span = max - min || 1;
  const x = (i) => (i / (nums.length - 1)) * W;
  const y = (v) => H - 2 - ((v - min) / span) * (H - 4);
  // A gap (null, e.g. no latency without requests) breaks the line rather than dropping to 0.
  let d = "";
  let pen = false;
  nums.forEach((v, i) => {
    if (v == null) {
      pen = false;
      return;
    }
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)} ${y(v).toFixed(1)}`;
    pen = true;
  });
  svg.append(el("path", { d, fill: "none", stroke: "currentColor", "stroke-width": 1.5,
    "vector-effect": "non-scaling-stroke", "stroke-linejoin": "round" }));
  svg.dataset.points = String(known.length);
  return svg;
}
