"""A sweep started from the Evaluate tab (desktop and a 390 px phone) against the fake upstream:
its levels' progress shows while it runs, then the throughput-vs-latency curve has one point per
level, equal to the API's figures, with the same figures in its table; the Runs page shows it too.
And the ARC subset is offered by the eval form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "compare-model"
TRACE_X = "sel => document.querySelector(sel).data.map(t => t.x)"


def two(page: Page, value: float) -> str:
    return str(page.evaluate("v => new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(v)", value))


@pytest.mark.parametrize(
    ("width", "by", "levels"),
    [(1440, "rate", [2, 4, 8]), (390, "concurrency", [1, 2, 4])],
    ids=["desktop-rate", "phone-concurrency"],
)
def test_sweep_from_the_evaluate_tab_draws_one_point_per_level(
    page: Page, server: ServerProcess, width: int, by: str, levels: list[int]
) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
    page.goto(f"/models/{MODEL}/evaluate")
    expect(page.locator("#start-run")).to_be_visible()
    page.get_by_role("tab", name="Sweep", exact=True).click()
    expect(page.locator("#start-run")).to_have_text("Start sweep")
    page.get_by_label("Sweep over").select_option(by)
    page.get_by_label("Levels").fill(", ".join(str(v) for v in levels))
    page.get_by_label("Requests per level").fill("8")
    page.get_by_label("Output tokens (max)").fill("4")
    page.locator("#start-run").click()

    view = page.locator(".sweep-view")
    expect(view).to_be_visible()
    rows = view.locator(".sweep-table tbody tr")
    expect(rows).to_have_count(len(levels))
    if by == "rate":  # 8 requests at 2/s take about 4 s: the first level's progress is seen as it runs
        running = view.locator('.sweep-table tr[data-status="running"]')
        expect(running.first).to_be_visible(timeout=10_000)
        expect(running.first.locator("td").nth(3)).to_have_text(re.compile(r"^[0-8] / 8$"))
        shot(page, f"sweep-running-{width}")
    expect(view).to_have_attribute("data-status", "done", timeout=60_000)
    sweep_id = view.get_attribute("data-sweep")
    report = api(server, f"/api/runs/{sweep_id}")["report"]
    points = report["points"]
    assert [p["level"] for p in points] == levels and all(p["status"] == "done" for p in points), points

    # The curve: one point per level in each line (p50, p95), at the API's throughput and latency.
    chart = "[data-sweep-chart]"
    page.wait_for_function(f"() => (document.querySelector('{chart}').data || []).length === 2")
    assert page.evaluate(TRACE_X, chart) == [[p["request_throughput"] for p in points]] * 2
    ys = page.evaluate("sel => document.querySelector(sel).data.map(t => t.y)", chart)
    assert ys == [[p["e2e_p50_ms"] for p in points], [p["e2e_p95_ms"] for p in points]]
    for trace in range(2):
        expect(page.locator(f"{chart} .scatterlayer .trace").nth(trace).locator("path.point")).to_have_count(
            len(levels)
        )
    # Its text alternative: the same figures, a row per level.
    for i, p in enumerate(points):
        cells = rows.nth(i).locator("td")
        expect(cells.nth(0)).to_have_text(two(page, p["level"]))
        expect(cells.nth(2)).to_have_text(p["run_id"])
        expect(cells.nth(3)).to_have_text(str(p["completed"]))
        expect(cells.nth(4)).to_have_text(two(page, p["request_throughput"]))
        expect(cells.nth(5)).to_have_text(two(page, p["output_token_throughput"]))
        assert api(server, f"/api/runs/{p['run_id']}")["params"]["sweep"] == sweep_id
    # x as output tokens/s instead.
    page.get_by_role("tab", name="Output tokens/s").click()
    page.wait_for_function(
        f"() => document.querySelector('{chart}').data[0].x[0] === {points[0]['output_token_throughput']}"
    )
    assert page.evaluate(TRACE_X, chart)[0] == [p["output_token_throughput"] for p in points]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    view.scroll_into_view_if_needed()
    shot(page, f"sweep-done-{width}")

    # The Runs page opens the same sweep with its curve.
    page.goto(f"/runs/{sweep_id}")
    expect(page.locator("h1")).to_have_text(sweep_id)
    expect(page.locator(".sweep-view")).to_have_attribute("data-status", "done")
    expect(page.locator(f"{chart} .scatterlayer .trace").first.locator("path.point")).to_have_count(len(levels))
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_sweep_stops_from_the_page(page: Page, server: ServerProcess) -> None:
    page.goto(f"/models/{MODEL}/evaluate")
    page.get_by_role("tab", name="Sweep", exact=True).click()
    page.get_by_label("Sweep over").select_option("rate")
    page.get_by_label("Levels").fill("1, 2")
    page.get_by_label("Requests per level").fill("30")  # 30 s at 1/s: stopped long before
    page.locator("#start-run").click()
    view = page.locator(".sweep-view")
    first = view.locator(".sweep-table tbody tr").first
    expect(first).to_have_attribute("data-status", "running", timeout=10_000)
    page.locator("#sweep-stop").click()
    expect(view).to_have_attribute("data-status", "stopped", timeout=10_000)
    expect(page.locator("#sweep-stop")).to_be_hidden()
    statuses = view.locator(".sweep-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses == ["stopped", "pending"], statuses
    run_id = first.locator("td a").inner_text()
    assert api(server, f"/api/runs/{run_id}")["report"]["interrupted"] is True


def test_bad_levels_are_explained(page: Page, server: ServerProcess) -> None:
    page.goto(f"/models/{MODEL}/evaluate")
    page.get_by_role("tab", name="Sweep", exact=True).click()
    page.get_by_label("Levels").fill("1, two")
    page.locator("#start-run").click()
    expect(page.locator(".eval-form .callout-error")).to_contain_text("levels must be numbers above zero")
    page.get_by_label("Levels").fill("1, 2.5")
    page.locator("#start-run").click()
    expect(page.locator(".eval-form .callout-error")).to_contain_text("whole numbers")
    expect(page.locator(".sweep-view")).to_have_count(0)


def test_the_eval_form_offers_the_arc_subset_and_the_grid_grader(page: Page, server: ServerProcess) -> None:
    page.goto(f"/models/{MODEL}/evaluate")
    page.get_by_role("tab", name="Eval", exact=True).click()
    dataset = page.locator("select[name=dataset]")
    dataset.select_option("arc_agi_subset")
    expect(dataset).to_have_value("arc_agi_subset")
    page.locator("select[name=grader]").select_option("grid")
    expect(page.locator("select[name=grader]")).to_have_value("grid")
