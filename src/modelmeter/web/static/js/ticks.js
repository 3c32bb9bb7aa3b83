// The charts' y-axis ticks, in human units. Plotly's d3 formats print 15000 as "1.5e+4" and 0.5 as
// "500m" (SI milli, even for token counts), so the ticks are chosen here and handed to plotly as
// tickvals / ticktext, with the range ending on the top tick (no label is clipped).

const upTo2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const MAX_INTERVALS = 4;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
// Steps of a time axis above one second: round numbers of seconds, minutes and hours.
const TIME_STEPS = [1, 2, 2.5, 5, 10, 15, 20, 30].map((s) => s * SECOND)
  .concat([1, 2, 5, 10, 15, 20, 30].map((m) => m * MINUTE), [1, 2, 3, 6, 12, 24].map((h) => h * HOUR));

/** 1, 2, 2.5, 5 times a power of ten: the smallest such step that covers `max` in `n` intervals. */
function decimalStep(max, n, integer) {
  let step = 10 ** Math.floor(Math.log10(max / n));
  for (;;) {
    for (const m of [1, 2, 2.5, 5]) {
      const s = m * step;
      if (integer && (s < 1 || !Number.isInteger(s))) continue;
      if (s * n >= max) return s;
    }
    step *= 10;
  }
}

function stepFor(max, kind) {
  if (kind === "ms" && max > SECOND * MAX_INTERVALS) {
    const step = TIME_STEPS.find((s) => s * MAX_INTERVALS >= max);
    if (step) return step;
  }
  return decimalStep(max, MAX_INTERVALS, kind === "count");
}

/** A tick value without float noise (3 * 0.1 = 0.30000000000000004). */
function clean(v) {
  return Number(v.toPrecision(12));
}

/** "0", "250", "1.5k", "2M": counts, never SI milli or exponents. */
export function countLabel(v) {
  const units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
  for (const [size, suffix] of units) if (Math.abs(v) >= size) return upTo2.format(clean(v / size)) + suffix;
  return upTo2.format(v);
}

/** "0 ms", "250 ms", "15 s", "2.5 min", "1 h": one unit for the whole axis, from its top tick. */
export function durationLabel(v, top) {
  if (top < SECOND) return `${upTo2.format(v)} ms`;
  if (top < 2 * MINUTE) return `${upTo2.format(clean(v / SECOND))} s`;
  if (top < 2 * HOUR) return `${upTo2.format(clean(v / MINUTE))} min`;
  return `${upTo2.format(clean(v / HOUR))} h`;
}

/** "$0", "$0.0005", "$1.25": as many decimals as the step needs. */
export function usdLabel(v) {
  return `$${new Intl.NumberFormat(undefined, { maximumFractionDigits: 10 }).format(clean(v))}`;
}

/**
 * Ticks for values up to `max`; `kind` is "count" (requests, tokens), "usd" or "ms".
 * An empty chart (max 0 or nothing) gets one tick, "0", on a 0-1 range.
 */
export function axisTicks(max, kind) {
  const label = (v, top) => (kind === "ms" ? durationLabel(v, top) : kind === "usd" ? usdLabel(v) : countLabel(v));
  if (!(max > 0) || !Number.isFinite(max)) return { tickvals: [0], ticktext: [label(0, 0)], range: [0, 1] };
  const step = stepFor(max, kind);
  const n = Math.max(1, Math.ceil(clean(max / step)));
  const tickvals = Array.from({ length: n + 1 }, (_, i) => clean(i * step));
  const top = tickvals[tickvals.length - 1];
  // A hair above the top tick: plotly drops a label that sits exactly on the range's end.
  return { tickvals, ticktext: tickvals.map((v) => label(v, top)), range: [0, top * 1.002] };
}
