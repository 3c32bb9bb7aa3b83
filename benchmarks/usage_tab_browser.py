"""The Usage tab in a real browser on a big database: when its four cards and each panel show data.

    python benchmarks/scale.py --database sqlite:////tmp/mm-10m.db --records 10000000 --ingest 0 --fleet-only
    python benchmarks/usage_tab_browser.py --database sqlite:////tmp/mm-10m.db

Starts ``modelmeter serve`` on the database (the deployments of ``scale.py``), opens the busiest
deployment's Usage tab with its insight panels open (``?insights=1``) in Debian's chromium
(headless, Playwright) and records in the page, with a MutationObserver installed before any
script runs, the moment (``performance.now()``: ms since the navigation started) at which each
part first shows its data: the four cards' figures, each chart's and panel's plot, the breakdown
table and the request log's rows. The first navigation is cold (a new browser profile: plotly's
4.8 MB still to load); then reloads. Targets (issue 14): cards
≤ 500 ms, every panel ≤ 1,000 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import sync_playwright
from scale import DEPLOYMENTS
from tests.helpers import ADMIN_KEY, ServerProcess, write_config

# Marks each part's first moment with data; runs before the page's own scripts.
WATCH = """
(() => {
  const seen = {};
  window.__seen = seen;
  const mark = (key) => { if (!(key in seen)) seen[key] = performance.now(); };
  const check = () => {
    const values = [...document.querySelectorAll('[data-card] [data-role="value"]')];
    const shown = (v) => !v.querySelector('.skeleton') && v.textContent.trim();
    if (values.length === 4 && values.every(shown)) mark('cards');
    for (const p of document.querySelectorAll('.plot[data-chart], .plot[data-insight]')) {
      const key = (p.dataset.chart ? 'chart:' + p.dataset.chart : 'panel:' + p.dataset.insight);
      if (!p.querySelector('.skeleton') && (p.classList.contains('js-plotly-plot') || p.textContent.trim())) mark(key);
    }
    if (document.querySelector('[data-panel="breakdown"] tfoot tr[data-role="total"]')) mark('panel:breakdown');
    if (document.querySelector('table tbody tr.row[data-id]')) mark('log');
  };
  const all = { subtree: true, childList: true, attributes: true, characterData: true };
  new MutationObserver(check).observe(document, all);
})();
"""
# Done: the cards show figures, and every plot on the tab (made, with a skeleton, with the cards) has data.
DONE = """() => 'cards' in (window.__seen || {}) && document.querySelector('.plot')
  && !document.querySelector('.plot .skeleton') && 'panel:breakdown' in window.__seen"""


def measure(page: Any, url: str, reload: bool) -> dict[str, float]:
    if reload:
        page.reload(wait_until="commit")
    else:
        page.goto(url, wait_until="commit")
    page.wait_for_function(DONE, timeout=120_000, polling=50)
    page.wait_for_timeout(300)  # parts that come a little later (the log)
    return dict(page.evaluate("() => window.__seen"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", required=True, help="a database filled by benchmarks/scale.py")
    ap.add_argument("--reloads", type=int, default=5)
    a = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is needed (apt-get install chromium)")
    name = DEPLOYMENTS[0][0].name
    with tempfile.TemporaryDirectory() as tmp:
        deps = [
            {"name": d.name, "model": d.model, "provider": d.provider, "api_base": d.api_base} for d, _ in DEPLOYMENTS
        ]
        config = write_config(Path(tmp) / "modelmeter.toml", database=a.database, deployments=deps)
        env = {"MODELMETER_ADMIN_KEY": ADMIN_KEY}  # the sign-in link below
        server = ServerProcess(config, env=env, log_dir=Path(tmp) / "server", startup_timeout=300)
        with server, sync_playwright() as pw:
            for width, label in ((1440, "desktop 1440 px"), (390, "phone 390 px")):
                for window in ("7d", "24h"):
                    context = pw.chromium.launch_persistent_context(
                        Path(tmp) / f"profile-{width}-{window}",  # a new profile: the first load is cold
                        executable_path=chromium,
                        headless=True,
                        args=["--no-sandbox", "--disable-gpu"],
                        viewport={"width": width, "height": 900},
                        locale="en-US",
                        timezone_id="UTC",
                    )
                    page = context.new_page()
                    page.goto(f"{server.url}/?token={ADMIN_KEY}")
                    url = f"{server.url}/models/{name}?window={window}&insights=1"  # the panels open
                    page.add_init_script(WATCH)
                    cold = measure(page, url, reload=False)
                    runs = [measure(page, url, reload=True) for _ in range(a.reloads)]
                    context.close()
                    report(f"{label}, window {window}", cold, runs)


def report(title: str, cold: dict[str, float], runs: list[dict[str, float]]) -> None:
    keys = ["cards", *sorted(k for k in set().union(*runs) if k != "cards")]
    print(f"\n{title}: ms after navigation started (cold: first visit, new profile; reload: median of {len(runs)})")
    print(f"{'part':<28}{'cold':>8}{'reload':>9}{'worst':>8}{'target':>8}  ok")
    for k in keys:
        got = [r[k] for r in runs if k in r]
        med = statistics.median(got) if got else float("nan")
        worst = max(got) if got else float("nan")
        target = 500 if k == "cards" else 1000
        c = cold.get(k)
        cold_s = f"{c:8.0f}" if c is not None else f"{'-':>8}"
        print(f"{k:<28}{cold_s}{med:9.0f}{worst:8.0f}{target:8d}  {'yes' if worst <= target else 'NO'}")


if __name__ == "__main__":
    main()
