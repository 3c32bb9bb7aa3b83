"""Live mode: pushed rows within 2 seconds, the banner and Stop, paused while the tab is hidden."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api_calls, chat, open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
HIDE = """hidden => {
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => hidden ? 'hidden' : 'visible' });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def top_request_id(page: Page) -> str | None:
    return page.locator("table.log tbody tr.row td.cell-rid").first.text_content()


def start_live(page: Page) -> None:
    """Click Live; it connects the push channel and fetches at once (cards, charts, newer rows)."""
    base = "/api/deployments/live-model"
    with (
        page.expect_response(lambda r: r.url.endswith(f"{base}/events")),
        page.expect_response(lambda r: f"{base}/usage?" in r.url),
        page.expect_response(lambda r: f"{base}/usage/timeseries?" in r.url),
        page.expect_response(lambda r: f"{base}/requests?" in r.url and "after=" in r.url),
    ):
        page.get_by_role("button", name="Live").click()


def test_live_shows_new_requests_within_two_seconds(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    chat(client, "live-model", "before the page opened")
    records(server, "live-model", 1)
    open_usage(page, "live-model")
    page.evaluate("window.__sameDocument = true")
    requests_card = page.locator('[data-card="requests"] [data-role=value]')
    before = int(requests_card.get_attribute("data-value") or 0)
    start_live(page)
    banner = page.locator(".banner-live")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Live mode is on")
    expect(page.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "true")
    assert "live=1" in page.url

    rid = chat(client, "live-model", "sent after the page opened")
    sent = time.monotonic()
    expect(page.locator("table.log tbody tr.row td.cell-rid").first).to_have_text(rid, timeout=2000)
    assert time.monotonic() - sent < 2.0
    expect(requests_card).to_have_text(str(before + 1))
    assert page.evaluate("window.__sameDocument") is True  # no reload
    shot(page, "usage-live")

    # Stop: nothing arrives any more.
    page.get_by_role("button", name="Stop").click()
    expect(banner).to_be_hidden()
    quiet = chat(client, "live-model", "sent while live mode is off")
    page.wait_for_timeout(800)
    assert top_request_id(page) == rid

    # Live again: it fetches at once, so the request sent while it was off shows without waiting
    # for the 15-second tick. Then the tab is hidden: the push channel closes, nothing is fetched.
    start_live(page)
    expect(page.locator("table.log tbody tr.row td.cell-rid").first).to_have_text(quiet, timeout=2000)
    page.evaluate(HIDE, True)
    expect(banner).to_contain_text("paused while this tab is hidden")
    hidden_rid = chat(client, "live-model", "sent while the tab is hidden")
    page.wait_for_timeout(800)
    assert top_request_id(page) == quiet
    # Visible again: one catch-up fetch of only the rows newer than the newest shown (after=).
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/api/" in r.url else None)
    page.evaluate(HIDE, False)
    expect(page.locator("table.log tbody tr.row td.cell-rid").first).to_have_text(hidden_rid, timeout=3000)
    ids = page.locator("table.log tbody tr.row td.cell-rid").all_text_contents()
    assert ids[:3] == [hidden_rid, quiet, rid]
    log_calls = [u for u in calls if urlsplit(u).path.endswith("/requests")]
    assert log_calls and all("after" in parse_qs(urlsplit(u).query) for u in log_calls)
    expect(banner).to_contain_text("new requests appear as they finish")
    page.get_by_role("button", name="Stop").click()


@pytest.mark.fake_clock
def test_live_refreshes_every_15_seconds_with_only_newer_rows(
    page: Page, server: ServerProcess, client: openai.OpenAI
) -> None:
    page.clock.install()
    records(server, "live-model", 1)
    open_usage(page, "live-model")
    start_live(page)
    calls = api_calls(page)
    page.clock.fast_forward(15_000)
    calls.settle(4)
    paths = sorted(urlsplit(c.url).path for c in calls)
    assert paths == [
        "/api/alerts/marks",
        "/api/deployments/live-model/requests",
        "/api/deployments/live-model/usage",
        "/api/deployments/live-model/usage/timeseries",
    ], paths
    log = next(c for c in calls if c.url.split("?")[0].endswith("/requests"))
    assert parse_qs(urlsplit(log.url).query)["after"]
    # Hidden: the timer is stopped.
    page.evaluate(HIDE, True)
    calls = api_calls(page)
    page.clock.fast_forward(31_000)
    page.wait_for_timeout(300)
    assert not calls
    page.evaluate(HIDE, False)
    calls.settle(4)
    page.get_by_role("button", name="Stop").click()
