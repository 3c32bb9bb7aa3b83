"""Issue 13: the Evaluate tab starts a run on the server; the Usage tab follows it (run banner,
rows pushed within 2 s, Stop); the Runs page lists runs, opens one, compares two; an eval shows
its per-item grades; a run's figures equal the server's records."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, shot
from tests.helpers import ADMIN_KEY, ROOT, ServerProcess, run_cli, wait_for

pytestmark = pytest.mark.browser
DOCS = ROOT / "docs"


def open_evaluate(page: Page, model: str) -> None:
    page.goto(f"/models/{model}/evaluate")
    expect(page.get_by_role("tab", name="Evaluate")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#start-run")).to_be_visible()


def started_run(page: Page, model: str) -> str:
    """After Start: the Usage tab of the run's tag, 1 h window, Live on; the run's id."""
    expect(page.locator(".eval-form .callout-error")).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"/models/{model}\?.*tag=(bench|eval)"), timeout=15_000)
    query = parse_qs(urlsplit(page.url).query)
    assert query["window"] == ["1h"] and query["live"] == ["1"], page.url
    expect(page.locator(".banner-live")).to_be_visible()
    return query["tag"][0].split(":", 1)[1]


def finished(server: ServerProcess, run_id: str, timeout: float = 40) -> dict[str, Any]:
    return wait_for(
        lambda: (r := api(server, f"/api/runs/{run_id}"))["report"]["status"] != "running" and r,
        timeout,
        message=f"run {run_id} to end",
    )


def test_bench_from_the_evaluate_tab_streams_and_stops(page: Page, server: ServerProcess) -> None:
    model = "evaluate-model"
    open_evaluate(page, model)
    page.get_by_label("Stop after").select_option("duration")
    page.get_by_label("Duration (s)").fill("60")
    page.get_by_label("Load").select_option("rate")
    page.get_by_label("Rate (req/s)").fill("4")
    page.get_by_label("Output length (tokens)").fill("6")
    shot(page, "evaluate-tab")
    page.screenshot(path=str(DOCS / "evaluate-tab.png"))
    page.locator("#start-run").click()
    run_id = started_run(page, model)
    banner = page.locator(".banner-run")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-status", "running")
    figures = page.locator("[data-role=run-figures]")
    expect(figures).to_contain_text("req/s")
    expect(figures).to_contain_text("p50 TTFT")

    # The banner's figures move while the run goes on, and each new record reaches the log in < 2 s.
    first = int(figures.get_attribute("data-done") or 0)
    tag = f"bench:{run_id}"
    seen = {r["id"] for r in server.records(model, tag=tag)}
    new = wait_for(lambda: [r for r in server.records(model, tag=tag) if r["id"] not in seen], 5, message="a record")
    stored_at = time.monotonic()
    expect(page.locator(f'table.log tbody tr.row[data-id="{new[0]["id"]}"]')).to_be_visible(timeout=2000)
    assert time.monotonic() - stored_at < 2.0
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-role=run-figures]').dataset.done) > {first}", timeout=5000
    )
    shot(page, "evaluate-running")

    page.locator("#run-stop").click()
    expect(banner).to_have_attribute("data-status", "stopped", timeout=8000)
    expect(page.locator("#run-stop")).to_be_hidden()
    assert api(server, f"/api/runs/{run_id}")["report"]["interrupted"] is True

    # A reload finds the run again (its state is in the runs table).
    page.reload()
    expect(page.locator(".banner-run")).to_have_attribute("data-status", "stopped")


def test_bench_figures_equal_the_records_and_the_runs_page(page: Page, server: ServerProcess) -> None:
    model = "evaluate-model"
    open_evaluate(page, model)
    page.get_by_label("Requests", exact=True).fill("12")
    page.locator("input[name=concurrency]").fill("3")
    page.get_by_label("Output length (tokens)").fill("9")
    page.locator("#start-run").click()
    run_id = started_run(page, model)
    expect(page.locator(".banner-run")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.locator("[data-role=run-figures]")).to_have_attribute("data-done", "12")
    report = finished(server, run_id)["report"]
    records = server.records(model, tag=f"bench:{run_id}")
    assert report["completed"] == len(records) == 12
    assert report["total_output_tokens"] == sum(r["completion_tokens"] for r in records) == 12 * 9
    assert report["total_input_tokens"] == sum(r["prompt_tokens"] for r in records)
    assert report["server_comparison"]["agree"] is True

    page.goto(f"/runs/{run_id}")
    expect(page.locator("h1")).to_have_text(run_id)
    expect(page.get_by_text("agree", exact=True)).to_be_visible()
    row = page.locator('.runs-table tr[data-metric="completion_tokens"] td')
    expect(row.nth(1)).to_have_text("108")
    expect(row.nth(2)).to_have_text("108")
    spend = sum(r["spend"] for r in records)
    cost = page.evaluate("async v => (await import('/static/js/format.js')).usd(v)", spend)
    expect(page.locator('dd[data-metric="cost"]')).to_have_text(cost)
    # The latency distributions: one bar per bin, the bins' counts summing to the requests.
    expect(page.locator('[data-hist="e2e"] .main-svg').first).to_be_visible()
    assert sum(report["histograms_ms"]["e2e"]["counts"]) == 12
    shot(page, "run-report")


def test_eval_shows_per_item_grades(page: Page, server: ServerProcess) -> None:
    model = "evalitems-model"
    open_evaluate(page, model)
    page.get_by_role("tab", name="Eval", exact=True).click()
    page.locator("select[name=grader]").select_option("number")
    page.locator("#start-run").click()
    run_id = started_run(page, model)
    report = finished(server, run_id)["report"]
    assert report["status"] == "done" and report["items"] == 50
    page.goto(f"/runs/{run_id}")
    rows = page.locator(".items-table tbody tr")
    expect(rows).to_have_count(50)
    first = report["results"][0]
    cells = rows.first.locator("td")
    expect(cells.nth(1)).to_have_text(first["prompt"])
    expect(cells.nth(3)).to_have_text(first["answer"])
    expect(rows.first.locator("[data-grade]")).to_have_attribute("data-grade", "right" if first["correct"] else "wrong")
    graded = page.eval_on_selector_all(".items-table [data-grade]", "els => els.map(e => e.dataset.grade)")
    assert graded == ["right" if r["correct"] else "wrong" for r in report["results"]]
    expect(page.locator('dd[data-metric="accuracy"]')).to_have_text(
        page.evaluate("async v => (await import('/static/js/format.js')).pct(v)", report["accuracy"])
    )


def test_runs_page_compares_two_runs(page: Page, server: ServerProcess) -> None:
    ids = []
    for concurrency in (1, 4):
        status, run = server.api(
            "POST", "/api/runs", {"kind": "bench", "model": "compare-model", "requests": 16, "concurrency": concurrency}
        )
        assert status == 201, run
        ids.append(run["id"])
    for run_id in ids:
        finished(server, run_id)
    page.goto("/runs")
    expect(page.get_by_role("link", name="Runs")).to_have_class(re.compile("active"))
    for run_id in ids:
        expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()
        page.get_by_label(f"Select {run_id}").check()
    page.locator("#compare-runs").click()
    expect(page).to_have_url(re.compile(r"/runs\?compare="))
    table = page.locator(".compare-table")
    expect(table).to_be_visible()
    expect(table.locator("thead")).to_contain_text(ids[0])
    expect(table.locator("thead")).to_contain_text(ids[1])
    tones = page.eval_on_selector_all(".compare-table td.delta", "els => els.map(e => e.dataset.tone)")
    assert len(tones) == 13 and {"good", "bad"} & set(tones), tones
    a, b = (api(server, f"/api/runs/{i}")["report"] for i in ids)
    faster = b["request_throughput"] > a["request_throughput"]
    req_s = table.locator('tr[data-metric="req_s"] td.delta')
    expect(req_s).to_have_attribute("data-tone", "good" if faster else "bad")
    expect(page.locator("[data-overlay=latency] .scatterlayer .trace")).to_have_count(2, timeout=20_000)
    page.screenshot(path=str(DOCS / "runs-compare.png"), full_page=True)
    shot(page, "runs-compare")


def test_evaluate_and_runs_on_a_phone(page: Page, server: ServerProcess) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_evaluate(page, "compare-model")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#start-run").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "evaluate-phone")
    page.goto("/runs")
    expect(page.locator(".runs-table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls in its card
    shot(page, "runs-phone")


def test_a_cli_run_is_found_by_the_page(page: Page, server: ServerProcess, tmp_path: Path) -> None:
    done = run_cli(
        "bench", "--base-url", server.base_url, "--model", "compare-model", "-n", "6", "--output-tokens", "5", "-q",
        env={"MODELMETER_ADMIN_KEY": ADMIN_KEY, "MODELMETER_HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = re.search(r"Usage tab for this run: (\S+)|(http://\S+live=1)", done.stdout)
    assert url is not None, done.stdout
    printed = url.group(1) or url.group(2)
    assert "window=1h" in printed and "live=1" in printed, printed
    page.goto(printed)
    banner = page.locator(".banner-run")
    expect(banner).to_have_attribute("data-status", "done")
    expect(page.locator("[data-role=run-figures]")).to_have_attribute("data-done", "6")
    run_id = parse_qs(urlsplit(printed).query)["tag"][0].split(":", 1)[1]
    page.goto("/runs")
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()
