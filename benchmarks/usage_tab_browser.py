"""Browser benchmark: how soon the Usage tab shows its data on a big database (issue 14).

    python benchmarks/scale.py --database sqlite:////tmp/mm-big.db --records 10000000 --ingest 0
    python benchmarks/usage_tab_browser.py --database sqlite:////tmp/mm-big.db

Starts the real server (``modelmeter serve``) on an existing database, signs in with the admin key
as a user does (``/?token=…``), and opens the busiest deployment's Usage tab with "More insights"
open in headless Debian chromium: desktop (1440x900) and phone (390x844), 7-day and 24-hour
windows, the first navigation of a fresh browser profile ("cold") then reloads; or, with
``--from-list``, the Usage tab opened from the Models page in a fresh profile ("list"). A MutationObserver
installed before the page's own scripts stamps performance.now() (ms from navigation start) when
the four cards show figures (no skeleton left), the log's first row, each chart and insight panel
has drawn its plot, and the breakdown has its rows: the DOM showing the data, not the API calls.
Targets: cards <= 500 ms, every panel <= 1000 ms. On a shared machine the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers: the e2e tests' server

from playwright.sync_api import BrowserContext, ViewportSize, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from tests.helpers import ServerProcess, write_config

from modelmeter.storage.database import Database

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]  # as tests/browser
CHARTS = ["requests", "tokens", "latency", "spend"]  # the Usage tab's charts (charts.js CHARTS keys)
INSIGHTS = ["latency", "ttft", "speed", "errors", "costs", "cache", "retries", "reasoning"]
VIEWPORTS: dict[str, ViewportSize] = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
CARDS_MS, PANEL_MS = 500, 1000
# What "shown" means for each thing measured: a CSS selector that matches once its data is drawn.
SHOWN = {
    "cards": "__cards__",  # special: the four cards with a value and no skeleton
    "log rows": "table.log tbody tr.row",
    **{f"chart {k}": f'.charts [data-chart="{k}"] .main-svg' for k in CHARTS},
    **{f"insight {k}": f'[data-panel="{k}"] .plot .main-svg' for k in INSIGHTS},
    "breakdown": '[data-panel="breakdown"] table tbody tr',
}
# Server or client? When each API answer and plotly (4.8 MB, parsed before any chart) arrived.
RESOURCES = """
() => performance.getEntriesByType("resource")
  .filter((e) => e.name.includes("/api/") || e.name.includes("plotly"))
  .map((e) => ({ path: new URL(e.name).pathname.replace(/^.*\\/(usage|requests)/, "$1").replace(/^.*vendor\\//, ""),
                 start: Math.round(e.startTime), end: Math.round(e.responseEnd) }))
"""
OBSERVE = """
(shown) => {
  window.__t = {};
  const check = () => {
    const t = Math.round(performance.now());
    for (const [name, sel] of Object.entries(shown)) {
      if (name in __t) continue;
      if (sel === "__cards__") {
        const values = document.querySelectorAll('.cards [data-role=value]');
        if (values.length === 4 && !document.querySelector('.cards .skeleton')
            && [...values].every((v) => v.textContent.trim())) __t[name] = t;
      } else if (document.querySelector(sel)) __t[name] = t;
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
}
"""


def busiest(url: str) -> tuple[str, list[str], int]:
    """The deployment with the most records, every deployment's name, and the total."""
    db = Database(url)
    try:
        rows = db.fetchall("SELECT deployment, COUNT(*) FROM records GROUP BY deployment ORDER BY 2 DESC")
    finally:
        db.close()
    if not rows:
        raise SystemExit(f"{url} has no records: fill it first with benchmarks/scale.py")
    return rows[0][0], [r[0] for r in rows], sum(r[1] for r in rows)


Times = dict[str, int | None]


def measure(ctx: BrowserContext, url: str, reload: bool, timeout_ms: int) -> tuple[Times, list[dict[str, Any]]]:
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    if reload:
        page.reload()
    else:
        page.goto(url)
    with contextlib.suppress(PlaywrightTimeout):  # report what did show, the rest as missing
        page.wait_for_function(
            "names => names.every((n) => n in (window.__t || {}))", arg=list(SHOWN), timeout=timeout_ms
        )
    t: dict[str, Any] = page.evaluate("window.__t || {}")
    return {name: t.get(name) for name in SHOWN}, page.evaluate(RESOURCES)


def measure_from_list(ctx: BrowserContext, url: str, read_s: float, timeout_ms: int) -> Times:
    """The Usage tab opened from the Models page, as a user does: the page (where the session
    starts) shows its cards, the user reads it for ``read_s``, then a link to ``url`` is followed
    in the page (no reload). Times are ms from that click."""
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.wait_for_selector(".model-grid:not([aria-busy]) .model-card", timeout=timeout_ms)
    page.wait_for_timeout(read_s * 1000)
    page.evaluate(
        """(url) => { window.__t = {}; window.__clickAt = performance.now();
           const a = Object.assign(document.createElement("a"), { href: url });
           a.dataset.link = ""; document.body.append(a); a.click(); }""",
        url,
    )
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            "names => names.every((n) => n in (window.__t || {}))", arg=list(SHOWN), timeout=timeout_ms
        )
    t: dict[str, Any] = page.evaluate("window.__t || {}")
    at = page.evaluate("window.__clickAt")
    return {name: None if t.get(name) is None else round(t[name] - at) for name in SHOWN}


def run(
    database: str, reloads: int, timeout_ms: int, from_list: float | None = None
) -> list[tuple[str, str, str, Times]]:
    dep, names, total = busiest(database)
    print(f"{total:,} records; busiest deployment {dep!r}")
    print(f"targets: cards <= {CARDS_MS} ms, every panel <= {PANEL_MS} ms (ms from navigation start, in the page)")
    print(
        f"{'view':<8}{'win':<5}{'nav':<7}{'cards':>7}{'rows':>7}{'charts':>8}{'insights':>9}{'brkdn':>7}"
        f"  {'slowest panel':<18}{'ms':>7}  ok"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="mm-browser-bench-") as tmp:
        config = write_config(
            Path(tmp) / "modelmeter.toml",
            database=database,
            deployments=[{"name": n, "model": n, "api_base": "http://127.0.0.1:9/v1"} for n in names],
        )
        executable = shutil.which("chromium") or "/usr/bin/chromium"
        key = secrets.token_urlsafe(24)  # this run's admin key: the page signs in with it
        env = {"MODELMETER_ADMIN_KEY": key}
        with (
            ServerProcess(config, env=env, log_dir=Path(tmp) / "server", startup_timeout=300) as server,
            sync_playwright() as pw,
        ):
            for view, size in VIEWPORTS.items():
                profile = Path(tmp) / f"profile-{view}"  # a fresh profile: the first navigation is cold
                ctx = pw.chromium.launch_persistent_context(
                    profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=size
                )
                try:
                    ctx.add_init_script(f"({OBSERVE})({json.dumps(SHOWN)})")
                    page = ctx.pages[0] if ctx.pages else ctx.new_page()
                    page.goto(f"{server.url}/?token={key}")  # sets the session cookie
                    if from_list is not None:  # only the Usage tab opened from the Models page
                        url = f"{server.url}/models/{dep}?window=7d&insights=1"
                        results.append((view, "7d", "list", measure_from_list(ctx, url, from_list, timeout_ms)))
                        print_row(*results[-1])
                        continue
                    first = True
                    for window in ("7d", "24h"):
                        url = f"{server.url}/models/{dep}?window={window}&insights=1"
                        for i in range(1 + reloads):
                            label = "cold" if first else ("first" if i == 0 else "reload")
                            first = False
                            times, resources = measure(ctx, url, i > 0, timeout_ms)
                            results.append((view, window, label, times))
                            print_row(*results[-1])
                            print(f"{'':<20}{slowest(resources)}", flush=True)
                finally:
                    ctx.close()
    return results


def slowest(resources: list[dict[str, Any]]) -> str:
    """The API call answered last (and its own duration), and when plotly had arrived."""
    api = [r for r in resources if "plotly" not in r["path"]]
    plotly = [r for r in resources if "plotly" in r["path"]]
    parts = []
    if api:
        last = max(api, key=lambda r: r["end"])
        longest = max(api, key=lambda r: r["end"] - r["start"])
        parts.append(f"{len(api)} API calls, last answered {last['end']} ms ({last['path']})")
        parts.append(f"longest {longest['end'] - longest['start']} ms ({longest['path']})")
    parts.append(f"plotly arrived {plotly[0]['end']} ms" if plotly else "plotly from memory cache")
    return "; ".join(parts)


def print_row(view: str, window: str, label: str, t: Times) -> None:
    cards = t["cards"]
    panels = {k: v for k, v in t.items() if k != "cards"}
    worst_name, worst = max(panels.items(), key=lambda kv: float("inf") if kv[1] is None else kv[1])
    ok = cards is not None and cards <= CARDS_MS and worst is not None and worst <= PANEL_MS
    print(
        f"{view:<8}{window:<5}{label:<7}{fmt(cards):>7}{fmt(t['log rows']):>7}"
        f"{fmt(max_of(t, 'chart ')):>8}{fmt(max_of(t, 'insight ')):>9}{fmt(t['breakdown']):>7}"
        f"  {worst_name:<18}{fmt(worst):>7}  {'yes' if ok else 'NO'}"
    )


def max_of(t: dict[str, int | None], prefix: str) -> int | None:
    vals = [v for k, v in t.items() if k.startswith(prefix)]
    return None if any(v is None for v in vals) else max(v for v in vals if v is not None)


def fmt(ms: int | None) -> str:
    return "—" if ms is None else str(ms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", required=True, help="an existing, filled database (benchmarks/scale.py)")
    ap.add_argument("--reloads", type=int, default=2, help="reloads after each window's first navigation")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for everything to show")
    ap.add_argument(
        "--from-list",
        type=float,
        metavar="SECONDS",
        help="instead: a fresh profile opens the Models page, reads it for SECONDS, then opens the Usage tab from it",
    )
    args = ap.parse_args()
    os.environ.pop("MODELMETER_DATABASE", None)
    run(args.database, args.reloads, int(args.timeout * 1000), args.from_list)


if __name__ == "__main__":
    main()
