"""WCAG AA contrast (issue #14): every piece of text the pages show, HTML and the charts' SVG, in
the light and the dark scheme (the dark one follows the system's ``prefers-color-scheme``), at
least 4.5:1 against what is behind it, 3:1 for large text (24 px, or 18.66 px bold).

The page measures itself: for each visible element holding text of its own, its computed colour
(``fill`` for SVG text) against the first opaque background among it and its ancestors, translucent
ones blended on the way, as a user's eye composes them. Disabled controls are exempt (WCAG 1.4.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import openai
import pytest
from playwright.sync_api import Page

from tests.browser.support import chat, failing, open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "contrast-model"

# Returns {checked: elements measured, failures: [{text, fg, bg, ratio, need, where}] below the bar}.
FAILURES_JS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({  // "top" composed over an opaque "under"
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const lum = (c) => {
    const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      const c = parse(s.backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };  // the canvas, if nothing is opaque
    for (const c of layers.reverse()) bg = c.a >= 1 ? c : over(c, bg);
    return bg;
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.visibility === 'hidden' || s.display === 'none' || Number(s.opacity) === 0) return false;
    }
    return !el.closest('.sr-only, [aria-hidden="true"]:not(svg), :disabled, [aria-disabled="true"]');
  };
  const out = [];
  let checked = 0;
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim())
      .map((n) => n.textContent.trim());
    if (!own.length || ['SCRIPT', 'STYLE', 'TITLE', 'OPTION'].includes(el.tagName) || !visible(el)) continue;
    const s = getComputedStyle(el);
    const isSvg = el instanceof SVGElement;
    let fg = parse(isSvg ? s.fill : s.color);
    if (!fg) continue;
    const bg = background(el);
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    fg = over({ ...fg, a: fg.a * opacity }, bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    checked += 1;
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need - 0.005) {
      const cls = typeof el.className === 'string' ? el.className : el.getAttribute('class') || '';
      out.push({ text: own.join(' ').slice(0, 40), fg: s.color, bg: `rgb(${bg.r},${bg.g},${bg.b})`,
                 ratio: Math.round(ratio * 100) / 100, need, where: `${el.tagName.toLowerCase()}.${cls}` });
    }
  }
  return { checked, failures: out };
}"""


def failures(page: Page, at_least: int) -> list[dict[str, Any]]:
    page.wait_for_timeout(400)  # transitions (the drawer, hover fades) come to rest
    found = page.evaluate(FAILURES_JS)
    assert found["checked"] >= at_least, found  # it measured the page's text, not an empty one
    return list(found["failures"])


@pytest.fixture
def traffic(server: ServerProcess, client: openai.OpenAI) -> str:
    rid = chat(client, MODEL, "Contrast, please", max_tokens=5)
    failing(client, MODEL)
    records(server, MODEL, 2)
    return rid


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_meets_wcag_aa_contrast(page: Page, server: ServerProcess, traffic: str, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    seen: dict[str, list[dict[str, Any]]] = {}

    page.goto("/")
    page.wait_for_selector(".model-card")
    seen["models page"] = failures(page, 10)

    open_usage(page, MODEL)
    page.wait_for_selector(".js-plotly-plot .xtick text")  # the charts' axes are drawn
    seen["usage tab"] = failures(page, 60)
    page.locator("table.log tbody tr.row").first.click()
    page.get_by_role("dialog").wait_for()
    seen["drawer"] = failures(page, 80)
    shot(page, f"contrast-{scheme}")
    page.keyboard.press("Escape")

    for path, ready in (("/runs", "main h1"), ("/alerts", "main h1")):
        page.goto(path)
        page.wait_for_selector(ready)
        seen[path] = failures(page, 5)

    # The compare view with both sides' chosen-range inputs open (side a over a range around the
    # traffic, side b over the hour after it) and their "chosen range" pills
    now = datetime.now(UTC)
    iso = lambda t: quote(t.isoformat(timespec="seconds").replace("+00:00", "Z"))  # noqa: E731
    page.goto(
        f"/compare?a={MODEL}&b={MODEL}&window=24h"
        f"&a_period=custom&a_start={iso(now - timedelta(hours=2))}&a_end={iso(now + timedelta(hours=1))}"
        f"&b_period=custom&b_start={iso(now + timedelta(hours=1))}&b_end={iso(now + timedelta(hours=2))}"
    )
    for side in ("a", "b"):
        page.wait_for_selector(f'.compare-side[data-side="{side}"] .js-plotly-plot .xtick text')
        page.wait_for_selector(f"#compare-{side}-range:not([hidden])")
    seen["compare view"] = failures(page, 30)
    # ...and a side whose range is not one: its message (the page's and the side's)
    page.goto(f"/compare?a={MODEL}&b={MODEL}&window=24h&a_period=custom&a_start=soon&a_end=later")
    page.wait_for_selector('.compare-side[data-side="a"] .callout-error:not([hidden])')
    page.wait_for_selector('.compare-side[data-side="b"] .js-plotly-plot .xtick text')
    seen["compare view, a bad range"] = failures(page, 20)

    bad = [
        f"{where}: {f['where']} {f['text']!r} {f['fg']} on {f['bg']} = {f['ratio']} < {f['need']}"
        for where, found in seen.items()
        for f in found
    ]
    assert not bad, "\n".join(bad)
