"""Usage insights in the browser: the cards compare with the previous window and open the log;
the insight panels render their numbers (desktop, 390 px phone, dark scheme)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, chat, failing, fmt, log_ids, open_usage, records, shot
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


def _panels_drawn(page: Page) -> None:
    expect(page.locator(".insights .plot.js-plotly-plot")).to_have_count(8)  # (4 here, 4 in test_usage_panels)
    for key in ("latency", "ttft", "speed", "errors"):
        expect(page.locator(f'.plot[data-insight="{key}"] .main-svg').first).to_be_visible()


def check_panels(page: Page, server: ServerProcess, traffic: str) -> None:
    dist = api(server, f"/api/deployments/{MODEL}/usage/distribution{traffic}")
    speed = api(server, f"/api/deployments/{MODEL}/usage/throughput{traffic}")
    assert dist["latency"]["count"] == 4 and dist["ttft"]["count"] >= 1
    _panels_drawn(page)
    for key in ("latency", "ttft"):
        d = dist[key]
        stats = page.locator(f'[data-panel="{key}"] [data-role=stats]')
        expect(stats).to_have_text("".join(f" · {q} {fmt(page, 'ms', d[f'{q}_ms'])}" for q in ("p50", "p95", "p99")))
        assert float(stats.get_attribute("data-p95") or "nan") == pytest.approx(d["p95_ms"])
        counts = page.locator(f'[data-panel="{key}"] table.numbers tbody tr').evaluate_all(
            "rows => rows.map(r => Number(r.dataset.count))"
        )
        assert counts == [b["count"] for b in d["bars"]] and sum(counts) == d["count"]
    rows = page.locator('[data-panel="speed"] table.numbers tbody tr')
    with_requests = [b for b in speed["buckets"] if b["requests"]]
    expect(rows).to_have_count(len(with_requests))
    # The same buckets as the charts' (aligned to the clock, so the first may start before the window).
    series = api(server, f"/api/deployments/{MODEL}/usage/timeseries{traffic}")
    assert [(b["start"], b["completion_tokens"]) for b in speed["buckets"]] == [
        (b["start"], b["completion_tokens"]) for b in series["buckets"]
    ]
    # Errors by type: the one failure (a 400 the gateway gave) is a client error, in the table too.
    errors = api(server, f"/api/deployments/{MODEL}/usage/errors{traffic}")
    assert errors["totals"]["client"] == 1 and sum(errors["totals"].values()) == 1
    totals = page.locator('[data-panel="errors"] tfoot td')
    assert totals.evaluate_all("tds => tds.map(t => t.dataset.class)") == errors["classes"]
    assert [t.text_content() for t in totals.all()] == [
        fmt(page, "int", errors["totals"][c]) for c in errors["classes"]
    ]
    expect(page.locator('[data-panel="errors"] [data-role=stats]')).to_have_text(" · 1 failed")
    # The table (the charts' text alternative) opens.
    toggle = page.locator('[data-panel="speed"] .numbers-toggle summary')
    toggle.click()
    expect(rows.first).to_be_visible()
    cells = rows.first.locator("td").all_inner_texts()
    b = with_requests[0]
    assert cells[1:3] == [fmt(page, "int", b["requests"]), fmt(page, "int", b["completion_tokens"])]
    assert cells[3] == f"{b['output_tokens_per_s']:.1f}"


def test_insight_panels_render_their_numbers(page: Page, server: ServerProcess, traffic: str) -> None:
    open_usage(page, MODEL, traffic)
    details = page.locator("details.insights")
    expect(details).not_to_have_attribute("open", "")
    page.locator(".insights-summary").click()  # opening loads them, and the URL remembers it
    page.wait_for_function("() => new URL(location.href).searchParams.get('insights') === '1'")
    check_panels(page, server, traffic)
    shot(page, "usage-insights")


def test_insight_panels_on_a_phone_and_in_the_dark(page: Page, server: ServerProcess, traffic: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    open_usage(page, MODEL, traffic + "&insights=1")
    check_panels(page, server, traffic)
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391)
          .slice(0, 5).map(e => `${e.tagName}.${e.className}`)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    for key in ("latency", "ttft", "speed", "errors"):
        box = page.locator(f'[data-panel="{key}"]').bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    for key in ("requests", "tokens", "spend", "latency"):
        box = page.locator(f'[data-card="{key}"] [data-role=spark]').bounding_box()
        assert box is not None and box["width"] > 50 and box["x"] + box["width"] <= 390
    # Dark: the panels' text is light on the dark surface.
    fg = page.locator('[data-panel="latency"] .card-title').evaluate("e => getComputedStyle(e).color")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert fg != bg and _luma(fg) > _luma(bg)
    page.locator('[data-panel="latency"]').scroll_into_view_if_needed()
    shot(page, "usage-insights-phone-dark", full_page=True)


def _luma(css: str) -> float:
    r, g, b = (float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_a_breakdown_row_opens_its_requests_and_downloads_as_csv(
    page: Page, server: ServerProcess, traffic: str
) -> None:
    s = api(server, f"/api/deployments/{MODEL}/usage{traffic}")
    by_type = api(server, f"/api/deployments/{MODEL}/usage/breakdown{traffic}&by=call_type")
    assert by_type["total"]["requests"] == s["requests"] == sum(r["requests"] for r in by_type["rows"])
    assert by_type["total"]["total_tokens"] == s["total_tokens"]
    assert round(by_type["total"]["spend"] * 1e12) == round(s["spend"] * 1e12)
    open_usage(page, MODEL, traffic + "&insights=1&status=success")
    panel = page.locator('[data-panel="breakdown"]')
    expect(panel.locator("tbody tr")).to_have_count(1)  # every request here was a chat completion
    row = panel.locator('tbody tr[data-value="chat"]')
    expect(row).to_have_count(1)
    chat_row = next(r for r in by_type["rows"] if r["value"] == "chat")
    assert row.locator("td").all_inner_texts() == [
        fmt(page, "int", chat_row["requests"]),
        fmt(page, "pct", chat_row["error_rate"]),
        fmt(page, "int", chat_row["total_tokens"]),
        fmt(page, "usd", chat_row["spend"]),
    ]
    expect(panel.locator("tfoot td").first).to_have_text(fmt(page, "int", s["requests"]))
    # The CSV link is the same rows.
    href = panel.locator("[data-export=breakdown]").get_attribute("href") or ""
    assert "by=call_type" in href and "format=csv" in href
    status, body = server.api("GET", href)
    text = body if isinstance(body, str) else str(body)
    assert status == 200 and text.splitlines()[0].startswith("value,requests,failed") and "\nchat," in "\n" + text
    # A row opens the log filtered to it (status cleared).
    row.locator("button").click()
    page.wait_for_function(
        "() => { const q = new URL(location.href).searchParams; return q.get('type') === 'chat' && !q.get('status'); }"
    )
    page.wait_for_function(
        f"() => document.querySelectorAll('table.log tbody tr.row').length === {chat_row['requests']}"
    )
    expect(page.locator("#requests-log")).to_be_in_viewport()
