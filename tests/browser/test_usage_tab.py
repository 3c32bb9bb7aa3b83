"""The Usage tab: the four cards, the charts, the request log, filters, export, the empty state."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import TZ, api, api_calls, chat, failing, fmt, log_ids, open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser


def test_cards_show_the_usage_api_numbers(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    for i in range(5):
        chat(client, "cards-model", "word " * (i + 1), max_tokens=10 + i, stream=i % 2 == 0)
    failing(client, "cards-model")
    records(server, "cards-model", 6)
    open_usage(page, "cards-model")
    s = api(server, "/api/deployments/cards-model/usage?window=7d")
    cards = page.locator(".cards")

    def value(card: str) -> str:
        return cards.locator(f'[data-card="{card}"] [data-role=value]').inner_text()

    assert value("requests") == fmt(page, "int", s["requests"])
    assert cards.locator('[data-card="requests"] [data-role=value]').get_attribute("data-value") == str(s["requests"])
    expect(cards.locator('[data-card="requests"] [data-role=sub]')).to_contain_text(
        f"{fmt(page, 'pct', s['success_rate'])} success"
    )
    assert value("tokens") == fmt(page, "tokens", s["total_tokens"])
    sub = cards.locator('[data-card="tokens"] [data-role=sub]')
    expect(sub).to_have_text(
        f"{fmt(page, 'tokens', s['prompt_tokens'])} in / {fmt(page, 'tokens', s['completion_tokens'])} out"
    )
    assert value("spend") == fmt(page, "usd", s["spend"])
    spend_raw = cards.locator('[data-card="spend"] [data-role=value]').get_attribute("data-value")
    assert spend_raw is not None and float(spend_raw) == pytest.approx(s["spend"])
    assert value("latency") == fmt(page, "ms", s["avg_latency_ms"])
    expect(cards.locator('[data-card="latency"] [data-role=sub]')).to_have_text(
        f"p95 {fmt(page, 'ms', s['p95_latency_ms'])}"
    )
    # Human formats, checked once for real: 1.2k tokens, $0.0042, 1,234 ms.
    assert fmt(page, "tokens", 1234) == "1.2k" and fmt(page, "usd", 0.0042) == "$0.0042"
    assert fmt(page, "ms", 1234) == "1,234 ms" and fmt(page, "usd", 1234.5) == "$1,234.50"
    # The charts are drawn by the plotly bundle this server serves.
    expect(page.locator(".charts .plot.js-plotly-plot")).to_have_count(4)
    expect(page.locator('.plot[data-chart="requests"] .main-svg').first).to_be_visible()
    # Times are the viewer's.
    expect(page.locator('th[data-col="time"]')).to_have_text(f"Time ({TZ})")
    shot(page, "usage-tab", full_page=True)
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(200)
    shot(page, "usage-tab-dark")


def test_one_refresh_is_four_api_calls_whatever_the_page_size(
    page: Page, client: openai.OpenAI, server: ServerProcess
) -> None:
    open_usage(page, "cards-model")
    for size in ("50", "10"):
        page.select_option("select[aria-label='Rows per page']", size)
        page.wait_for_function("() => !document.querySelector('table.log[aria-busy]')")
        page.wait_for_timeout(300)
        calls = api_calls(page)
        page.locator("#refresh").click()
        calls.settle(4)
        paths = sorted(urlsplit(c.url).path for c in calls)
        assert paths == [
            "/api/alerts/marks",  # the charts' alert markers
            "/api/deployments/cards-model/requests",
            "/api/deployments/cards-model/usage",
            "/api/deployments/cards-model/usage/timeseries",
        ], paths
        series = next(c for c in calls if c.url.split("?")[0].endswith("/timeseries"))
        assert parse_qs(urlsplit(series.url).query)["tz"] == [TZ]
        log = next(c for c in calls if "/requests" in c.url)
        assert parse_qs(urlsplit(log.url).query)["limit"] == [size]


def test_window_dropdown(page: Page) -> None:
    open_usage(page, "cards-model")
    labels = page.locator("#window option").all_inner_texts()
    assert labels == ["Last hour", "Last 24 hours", "Last 7 days", "Last 30 days", "Custom range…"]
    expect(page.locator("#window")).to_have_value("7d")
    calls = api_calls(page)
    page.select_option("#window", "1h")
    calls.settle(4)
    assert {parse_qs(urlsplit(c.url).query).get("window", [""])[0] for c in calls} == {"1h"}
    assert "window=1h" in page.url
    page.reload()
    expect(page.locator("#window")).to_have_value("1h")
    # A custom range: start and end in the viewer's time zone.
    calls = api_calls(page)
    page.select_option("#window", "custom")
    page.fill("input[aria-label=From]", "2020-01-01T00:00")
    page.fill("input[aria-label=To]", "2020-01-02T00:00")
    page.get_by_role("button", name="Apply").click()
    calls.settle(4)
    query = parse_qs(urlsplit(next(c for c in calls if c.url.split("?")[0].endswith("/usage")).url).query)
    assert query["start"] == ["2020-01-01T00:00"] and query["end"] == ["2020-01-02T00:00"] and query["tz"] == [TZ]
    expect(page.locator('[data-card="requests"] [data-role=value]')).to_have_text("0")


def test_log_is_newest_first_and_pages_with_arrows(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    sent = [chat(client, "paging-model", f"request number {i}", max_tokens=i + 1) for i in range(23)]
    rows = records(server, "paging-model", 23, limit=50)
    assert [r["request_id"] for r in rows] == sent[::-1]
    open_usage(page, "paging-model", "?size=10")
    expect(page.locator("select[aria-label='Rows per page']")).to_have_value("10")
    headers = page.locator("table.log thead th").all_inner_texts()
    assert headers == [f"Time ({TZ})", "Status", "Prompt", "Completion", "Total", "Latency (ms)", "Spend", "Request"]
    ids = [r["id"] for r in rows]
    assert log_ids(page) == ids[:10]
    first = page.locator("table.log tbody tr.row").first
    cells = first.locator("td").all_inner_texts()
    newest = rows[0]
    assert cells[1] == "success"
    assert cells[2:5] == [str(newest["prompt_tokens"]), str(newest["completion_tokens"]), str(newest["total_tokens"])]
    assert cells[5] == fmt(page, "msNumber", newest["latency_ms"])
    assert cells[6] == fmt(page, "usdCell", newest["spend"])
    # The Request cell's text is the whole ID, however CSS shortens what is visible.
    assert first.locator("td.cell-rid").text_content() == newest["request_id"]
    prev, nxt = page.get_by_role("button", name="Previous page"), page.get_by_role("button", name="Next page")
    expect(prev).to_be_disabled()
    nxt.click()
    page.wait_for_function("ids => document.querySelector('table.log tbody tr.row')?.dataset.id === ids", arg=ids[10])
    assert log_ids(page) == ids[10:20]
    expect(page.locator(".page-label")).to_have_text("Page 2 · 11–20")
    nxt.click()
    page.wait_for_function("id => document.querySelector('table.log tbody tr.row')?.dataset.id === id", arg=ids[20])
    assert log_ids(page) == ids[20:23]
    expect(nxt).to_be_disabled()
    prev.click()
    page.wait_for_function("id => document.querySelector('table.log tbody tr.row')?.dataset.id === id", arg=ids[10])
    assert log_ids(page) == ids[10:20]


def test_filters_find_and_export(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    tagged = [chat(client, "filters-model", f"bench {i}", tags=["bench:RUN42", "suite"]) for i in range(3)]
    plain = [chat(client, "filters-model", f"plain {i}") for i in range(4)]
    failing(client, "filters-model")
    failing(client, "filters-model")
    rows = records(server, "filters-model", 9)
    # The benchmark tool prints such URLs: the tab opens filtered to the run's tag.
    open_usage(page, "filters-model", "?tag=bench:RUN42")
    expect(page.locator(".banner-filter")).to_contain_text("bench:RUN42")
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 3")
    assert page.locator("td.cell-rid").all_text_contents() == tagged[::-1]
    expect(page.locator('[data-card="requests"] [data-role=value]')).to_have_text("3")
    page.get_by_role("button", name="Clear filter").click()
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 9")
    assert "tag=" not in page.url
    # Status.
    page.get_by_role("tab", name="Error").click()
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 2")
    assert set(page.locator("table.log tbody tr.row td.cell-status").all_inner_texts()) == {"error"}
    assert "status=error" in page.url
    page.get_by_role("tab", name="All").click()
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 9")
    # Find by request ID.
    page.fill("input[aria-label='Find by request ID']", plain[1])
    page.press("input[aria-label='Find by request ID']", "Enter")
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 1")
    assert page.locator("td.cell-rid").text_content() == plain[1]
    page.fill("input[aria-label='Find by request ID']", "chatcmpl-nope")
    page.press("input[aria-label='Find by request ID']", "Enter")
    expect(page.locator("tr.row-empty")).to_contain_text("No request with ID")
    page.fill("input[aria-label='Find by request ID']", "")
    page.press("input[aria-label='Find by request ID']", "Enter")
    # Export the filtered log: CSV and JSONL.
    page.fill("input[aria-label='Filter by tag']", "suite")
    page.press("input[aria-label='Filter by tag']", "Enter")
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 3")
    href = page.locator("a[data-export=csv]").get_attribute("href")
    assert href is not None and "tag=suite" in href
    with page.expect_download() as dl:
        page.locator("a[data-export=csv]").click()
    path = dl.value.path()
    assert path is not None
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["request_id"] for r in table] == tagged[::-1]
    jsonl = page.request.get(page.locator("a[data-export=jsonl]").get_attribute("href") or "")
    assert len(jsonl.text().strip().splitlines()) == 3
    assert len(rows) == 9


def test_empty_state_tells_how_to_send_a_first_request(page: Page, server: ServerProcess) -> None:
    open_usage(page, "empty-model")
    empty = page.locator(".empty-state")
    expect(empty).to_be_visible()
    expect(page.locator("table.log")).to_be_hidden()
    code = empty.locator("pre.code")
    origin = server.url
    expect(code).to_contain_text(f"curl {origin}/v1/chat/completions")
    expect(code).to_contain_text('"model":"empty-model"')
    empty.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == code.inner_text()
    empty.get_by_role("tab", name="Python").click()
    expect(code).to_contain_text(f'OpenAI(base_url="{origin}/v1"')
    expect(code).to_contain_text('model="empty-model"')
    shot(page, "usage-empty")


def test_connect_tab(page: Page, server: ServerProcess) -> None:
    page.goto("/models/cards-model/connect")
    expect(page.get_by_role("tab", name="Connect")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".connect pre.code")).to_contain_text(f"{server.url}/v1")
    page.get_by_role("tab", name="Usage").click()
    expect(page).to_have_url(re.compile(r"/models/cards-model$"))
    expect(page.locator(".cards")).to_be_visible()


def test_unknown_model_page(page: Page) -> None:
    page.goto("/models/no-such-model")
    expect(page.get_by_text("No such deployment")).to_be_visible()
