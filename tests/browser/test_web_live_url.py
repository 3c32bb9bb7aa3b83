"""The link ``modelmeter bench`` prints to watch a run opens the tab on that run, Live on; turning
Live on fetches at once rather than at the next 15-second tick."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import TZ, chat, log_ids, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "liveurl-model"
TAG = "bench:run-9"


def test_watch_link_opens_the_run_live_and_live_fetches_at_once(
    page: Page, server: ServerProcess, client: openai.OpenAI
) -> None:
    tagged = chat(client, MODEL, "part of the run", tags=[TAG])
    chat(client, MODEL, "not part of the run")
    rows = records(server, MODEL, 2)
    usage_calls: list[str] = []
    page.on("request", lambda r: usage_calls.append(r.url) if f"/api/deployments/{MODEL}/usage?" in r.url else None)

    page.goto(f"/models/{MODEL}?tag={TAG}&window=1h&live=1")  # exactly what bench prints
    page.wait_for_selector("table.log tbody tr.row")
    expect(page.locator("#window")).to_have_value("1h")
    live = page.get_by_role("button", name="Live")
    expect(live).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".banner-live")).to_be_visible()
    expect(page.locator(".banner-filter")).to_contain_text(TAG)
    tagged_id = next(r["id"] for r in rows if r["request_id"] == tagged)
    assert log_ids(page) == [tagged_id]
    query = parse_qs(urlsplit(usage_calls[0]).query)
    assert query["window"] == ["1h"] and query["tag"] == [TAG]
    shot(page, "usage-watch-link")

    # Stop, then Live again: the cards, charts and log are fetched now, not in 15 s.
    page.get_by_role("button", name="Stop").click()
    expect(live).to_have_attribute("aria-pressed", "false")
    later = chat(client, MODEL, "sent while Live was off", tags=[TAG])
    with page.expect_response(lambda r: f"/api/deployments/{MODEL}/usage?" in r.url, timeout=2000):
        live.click()
    expect(page.locator("table.log tbody tr.row td.cell-rid").first).to_have_text(later, timeout=2000)
    assert "live=1" in page.url and "window=1h" in page.url
    page.get_by_role("button", name="Stop").click()


def test_a_custom_range_link_opens_on_that_range_live(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    chat(client, MODEL, "inside the range")
    records(server, MODEL, 1)
    now = datetime.now(ZoneInfo(TZ)).replace(second=0, microsecond=0)
    start = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    end = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    with page.expect_response(lambda r: f"/api/deployments/{MODEL}/usage?" in r.url) as first:
        page.goto(f"/models/{MODEL}?start={start}&end={end}&live=1")
    query = parse_qs(urlsplit(first.value.url).query)
    assert query["start"] == [start] and query["end"] == [end] and "window" not in query
    expect(page.locator("#window")).to_have_value("custom")
    expect(page.get_by_label("From")).to_have_value(start)
    expect(page.get_by_label("To")).to_have_value(end)
    expect(page.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "true")
    page.wait_for_selector("table.log tbody tr.row")
    page.get_by_role("button", name="Stop").click()
