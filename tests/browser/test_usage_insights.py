"""Usage insights in the browser: the cards compare with the previous window and open the log;
the insight panels render their numbers (desktop, 390 px phone, dark scheme)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, chat, failing, fmt, log_ids, open_usage, records
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "insights-model"


def _t(row: dict) -> datetime:
    return datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def traffic(server: ServerProcess, client: openai.OpenAI) -> str:
    """Two requests, a pause, then four (one failing): a window that holds the second batch and
    whose previous window holds the first. Returns the window's query string."""
    for i in range(2):
        chat(client, MODEL, "before " * (i + 1), max_tokens=5)
    first = records(server, MODEL, 2)
    time.sleep(1.5)
    for i in range(3):
        chat(client, MODEL, "after " * (i + 1), max_tokens=8 + i, stream=i == 1)
    failing(client, MODEL)
    rows = records(server, MODEL, 6)
    second = [r for r in rows if r["id"] not in {f["id"] for f in first}]
    t0 = min(_t(r) for r in first)
    mid = min(_t(r) for r in second) - timedelta(milliseconds=200)
    length = max(mid - t0, max(_t(r) for r in second) - mid) + timedelta(seconds=1)
    iso = lambda t: t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return f"?start={quote(iso(mid))}&end={quote(iso(mid + length))}"


def test_cards_show_the_change_and_a_sparkline(page: Page, server: ServerProcess, traffic: str) -> None:
    s = api(server, f"/api/deployments/{MODEL}/usage{traffic}")
    assert s["requests"] == 4 and s["previous"]["requests"] == 2
    assert s["change"]["requests"] == pytest.approx(1.0)
    open_usage(page, MODEL, traffic)
    delta = page.locator('[data-card="requests"] [data-role=delta]')
    expect(delta).to_have_text(f"▲ {fmt(page, 'pct', 1.0)}")
    assert float(delta.get_attribute("data-value") or "nan") == pytest.approx(1.0)
    expect(delta).to_have_class("card-delta tone-good")
    for key, figure in (("tokens", "total_tokens"), ("spend", "spend"), ("latency", "avg_latency_ms")):
        change = s["change"][figure]
        arrow = "▲ " if change > 0 else "▼ " if change < 0 else ""
        expect(page.locator(f'[data-card="{key}"] [data-role=delta]')).to_have_text(
            f"{arrow}{fmt(page, 'pct', abs(change))}"
        )
    for key in ("requests", "tokens", "spend"):
        expect(page.locator(f'[data-card="{key}"] [data-role=spark] svg path')).to_have_count(1)


def test_clicking_a_card_opens_its_requests_in_the_log(page: Page, server: ServerProcess, traffic: str) -> None:
    open_usage(page, MODEL, traffic + "&status=success")
    assert len(log_ids(page)) == 3
    page.locator('[data-card="requests"] [data-filter="error"]').click()
    page.wait_for_function("() => new URL(location.href).searchParams.get('status') === 'error'")
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 1")
    errors = api(server, f"/api/deployments/{MODEL}/requests{traffic}&status=error")["data"]
    assert log_ids(page) == [r["id"] for r in errors]
    page.locator('[data-card="spend"]').click()
    page.wait_for_function("() => !new URL(location.href).searchParams.get('status')")
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 4")
    expect(page.locator("#requests-log")).to_be_in_viewport()
    # The keyboard opens it too.
    page.locator('[data-card="requests"] [data-filter="error"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => new URL(location.href).searchParams.get('status') === 'error'")
