"""Where a cold Usage tab's time goes, between the API answers and the last plot (issue 14).

    python benchmarks/usage_tab_cold.py --database sqlite:////tmp/mm-big.db --runs 6
    python benchmarks/usage_tab_cold.py --database sqlite:////tmp/mm-big.db --src /tmp/old/src --src src

The first navigation of a fresh browser profile to the busiest deployment's Usage tab (7 days,
"More insights" open), as in usage_tab_browser.py, repeated: one server per ``--src`` (a source
tree put first on its PYTHONPATH; this checkout's by default), their runs alternating so that a
shared machine's load falls on each alike. Each server has sent plotly once before (its startup
compression is not counted here). Per run, in ms from navigation start, from the page's own
Long Animation Frame entries (the scripts that ran, their forced style and layout):

  cards, last     the four cards showing figures; the last chart or insight panel drawn
  first byte, arrived   plotly.min.js's response start and end (the browser parses it on a
                  background thread as it arrives)
  run at, run     when plotly.min.js began to run on the main thread and for how long (its
                  one-time set-up, mostly compiling its functions as they are first called)
  draw            the scripts after it that took > 30 ms: the twelve Plotly.react calls
  forced          style and layout forced by scripts from plotly's run on (plotly measuring)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers: the e2e tests' server
sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import Browser, sync_playwright
from tests.helpers import ServerProcess, write_config
from usage_tab_browser import CHROMIUM_ARGS, OBSERVE, SHOWN, VIEWPORTS, busiest

LOAF = """
(() => {
  window.__loaf = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) __loaf.push(...e.scripts.map((s) => ({
      url: (s.sourceURL || "").split("/").pop(), type: s.invokerType, start: s.startTime, dur: s.duration,
      forced: s.forcedStyleAndLayoutDuration })));
  }).observe({ type: "long-animation-frame", buffered: true });
})();
"""
PLOTLY_TIMING = """
() => performance.getEntriesByType("resource").filter((e) => e.name.includes("plotly"))
  .map((e) => [e.responseStart, e.responseEnd])[0] || [null, null]
"""
COLUMNS = ["cards", "last", "first byte", "arrived", "run at", "run", "draw", "forced"]


def cold_run(browser: Browser, url: str, sign_in: str, view: str) -> dict[str, float | None]:
    ctx = browser.new_context(viewport=VIEWPORTS[view])  # a fresh profile: nothing cached
    try:
        ctx.add_init_script(f"({OBSERVE})({json.dumps(SHOWN)})")
        ctx.add_init_script(LOAF)
        page = ctx.new_page()
        page.goto(sign_in)  # the session cookie, as a user signs in
        page.goto("about:blank")
        page.goto(url)
        page.wait_for_function("names => names.every((n) => n in (window.__t || {}))", arg=list(SHOWN), timeout=60000)
        page.wait_for_timeout(200)  # the last frame's entry
        t: dict[str, int] = page.evaluate("window.__t")
        scripts: list[dict[str, Any]] = page.evaluate("window.__loaf")
        first_byte, arrived = page.evaluate(PLOTLY_TIMING)
    finally:
        ctx.close()
    run = next((s for s in scripts if s["url"] == "plotly.min.js" and s["type"] == "classic-script"), None)
    after = [s for s in scripts if run is not None and s["start"] > run["start"]]
    return {
        "cards": t["cards"],
        "last": max(v for k, v in t.items() if k.startswith(("chart", "insight"))),
        "first byte": first_byte,
        "arrived": arrived,
        "run at": run["start"] if run else None,
        "run": run["dur"] if run else None,
        "draw": sum(s["dur"] for s in after if s["dur"] > 30),
        "forced": sum(s["forced"] for s in after) + (run["forced"] if run else 0),
    }


def label(src: str) -> str:
    """A source tree's last three path parts: enough to tell them apart."""
    return "/".join(Path(src).parts[-3:])


def row(name: str, r: dict[str, float | None]) -> str:
    return f"{name:<28}" + "".join(f"{'—' if (v := r[c]) is None else round(v):>11}" for c in COLUMNS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", required=True, help="an existing, filled database (benchmarks/scale.py)")
    ap.add_argument("--runs", type=int, default=6, help="cold navigations per source tree")
    ap.add_argument("--view", choices=list(VIEWPORTS), default="desktop")
    ap.add_argument("--src", action="append", help="a source tree to serve (repeatable); default: this checkout's")
    args = ap.parse_args()
    srcs = [str(Path(s).resolve()) for s in (args.src or [Path(__file__).resolve().parents[1] / "src"])]
    dep, names, total = busiest(args.database)
    print(f"{total:,} records; busiest deployment {dep!r}; {args.view}; load {os.getloadavg()[0]:.2f}")
    print(f"{'':<28}" + "".join(f"{c:>11}" for c in COLUMNS))
    results: dict[str, list[dict[str, float | None]]] = {s: [] for s in srcs}
    with tempfile.TemporaryDirectory(prefix="mm-cold-bench-") as tmp, contextlib.ExitStack() as stack:
        config = write_config(
            Path(tmp) / "modelmeter.toml",
            database=args.database,
            deployments=[{"name": n, "model": n, "api_base": "http://127.0.0.1:9/v1"} for n in names],
        )
        key = secrets.token_urlsafe(24)
        servers = []
        for i, src in enumerate(srcs):
            env = {"MODELMETER_ADMIN_KEY": key, "PYTHONPATH": src}
            server = stack.enter_context(ServerProcess(config, env=env, log_dir=Path(tmp) / f"server-{i}"))
            request = urllib.request.Request(
                f"{server.url}/static/vendor/plotly.min.js", headers={"accept-encoding": "gzip"}
            )
            with urllib.request.urlopen(request) as res:
                res.read()
            servers.append(server)
        pw = stack.enter_context(sync_playwright())
        executable = shutil.which("chromium") or "/usr/bin/chromium"
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        for n in range(args.runs):
            for src, server in zip(srcs, servers, strict=True):
                url = f"{server.url}/models/{dep}?window=7d&insights=1"
                r = cold_run(browser, url, f"{server.url}/?token={key}", args.view)
                results[src].append(r)
                print(row(f"{label(src)} #{n + 1}", r), flush=True)
        browser.close()
    print(f"medians (load {os.getloadavg()[0]:.2f}):")
    for src, runs in results.items():
        med = {
            c: statistics.median(vs) if (vs := [v for r in runs if (v := r[c]) is not None]) else None for c in COLUMNS
        }
        print(row(label(src), med))


if __name__ == "__main__":
    main()
