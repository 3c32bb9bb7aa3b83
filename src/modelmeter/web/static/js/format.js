// Numbers and times for people: 1.2k tokens, $0.0042, 1,234 ms, times in the viewer's time zone.

const locale = undefined; // the viewer's own
const intFmt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
const fixedOne = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const usdBig = new Intl.NumberFormat(locale, {
  style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2,
});
const usdSmall = new Intl.NumberFormat(locale, {
  style: "currency", currency: "USD", maximumSignificantDigits: 3,
});
const usdCol = new Intl.NumberFormat(locale, {
  style: "currency", currency: "USD", minimumSignificantDigits: 3, maximumSignificantDigits: 3,
});
export const DASH = "—";

/** The viewer's IANA time zone, e.g. "Europe/Paris". */
export function timeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function int(n) {
  return n == null ? DASH : intFmt.format(n);
}

/** 999 -> "999", 1234 -> "1.2k", 3_400_000 -> "3.4M". */
export function compact(n) {
  if (n == null) return DASH;
  const abs = Math.abs(n);
  const units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
  for (const [size, suffix] of units) {
    if (abs >= size * 0.9995) return oneDecimal.format(n / size) + suffix;
  }
  return intFmt.format(n);
}

export function tokens(n) {
  return compact(n);
}

/** $1,234.56 above a dollar, three significant digits below: $0.0042, $0.000017. */
export function usd(v) {
  if (v == null) return DASH;
  if (v === 0) return usdBig.format(0);
  return Math.abs(v) >= 1 ? usdBig.format(v) : usdSmall.format(v);
}

/** For a column of amounts: always three significant digits below a dollar ($0.00250). */
export function usdCell(v) {
  if (v == null) return DASH;
  if (v === 0 || Math.abs(v) >= 1) return usd(v);
  return usdCol.format(v);
}

/** A price per million tokens: "$1.50 / 1M". */
export function rate(v) {
  return v == null ? DASH : `${Math.abs(v) >= 0.01 ? usdBig.format(v) : usdSmall.format(v)} / 1M`;
}

/** Milliseconds as a bare number (for a column already labelled "(ms)"). */
export function msNumber(ms) {
  if (ms == null) return DASH;
  return ms < 10 ? fixedOne.format(ms) : intFmt.format(ms);
}

/** 1,234 ms; 12.3 s from ten seconds up; 2.5 min from two minutes up. */
export function ms(v) {
  if (v == null) return DASH;
  if (v >= 120_000) return `${oneDecimal.format(v / 60_000)} min`;
  if (v >= 10_000) return `${oneDecimal.format(v / 1000)} s`;
  return `${msNumber(v)} ms`;
}

export function pct(ratio) {
  if (ratio == null) return DASH;
  const p = ratio * 100;
  if (p > 99.9 && p < 100) return "99.9%";
  if (p > 0 && p < 0.1) return "<0.1%";
  return `${oneDecimal.format(p)}%`;
}

const rowTime = new Intl.DateTimeFormat(locale, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  hourCycle: "h23",
});
const fullTime = new Intl.DateTimeFormat(locale, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  second: "2-digit", fractionalSecondDigits: 3, hourCycle: "h23", timeZoneName: "short",
});
const shortDate = new Intl.DateTimeFormat(locale, { month: "short", day: "numeric" });
const wall = new Intl.DateTimeFormat("sv-SE", {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hourCycle: "h23",
});

/** "Nov 27, 17:04:29" in the viewer's time zone. */
export function time(iso) {
  return iso ? rowTime.format(new Date(iso)) : DASH;
}

/** "Nov 27, 2026, 17:04:29.821 CET". */
export function dateTime(iso) {
  return iso ? fullTime.format(new Date(iso)) : DASH;
}

export function day(iso) {
  return iso ? shortDate.format(new Date(iso)) : DASH;
}

/** "2026-11-27 17:04:00": local wall-clock time, what plotly's date axis shows as is. */
export function wallClock(iso) {
  return wall.format(new Date(iso));
}

/** A value for <input type=datetime-local>: "2026-11-27T17:04". */
export function localInput(date) {
  return wall.format(date).replace(" ", "T").slice(0, 16);
}

/** "15 min", "1 h", "1 day": a chart's bucket size. */
export function duration(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "1 day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** "3 min ago" style, for the last refresh. */
export function ago(date) {
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}
