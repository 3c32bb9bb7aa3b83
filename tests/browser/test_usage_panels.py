"""The cost, cache, retries and reasoning panels in the browser (desktop and a 390 px phone), with
traffic from a fake upstream that reports known usage: half the prompt cached, a quarter written
to the cache, 2 reasoning tokens; its first answer a 503 (the gateway retries it); one call
answered from the response cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, chat, fmt, open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "panels-model"
# USD per million tokens, as tests/browser/conftest.py configures panels-model.
RATES = {"input": 2.0, "cached_input": 0.5, "cache_write": 2.5, "output": 8.0, "reasoning": 10.0}
COMPONENTS = ("input", "cached_input", "cache_write", "output", "reasoning")


@pytest.fixture(scope="module")
def traffic(server: ServerProcess, client: openai.OpenAI) -> tuple[str, list[dict[str, Any]]]:
    """Four calls (the first retried after the fake's 503, the third a response-cache hit of the
    second); returns the window's query string and the records."""
    chat(client, MODEL, "one two three four five six seven eight nine ten", max_tokens=6)
    chat(client, MODEL, "alpha beta gamma delta epsilon zeta", max_tokens=5)
    chat(client, MODEL, "alpha beta gamma delta epsilon zeta", max_tokens=5)
    chat(client, MODEL, "streamed words here please thanks", max_tokens=7, stream=True)
    rows = records(server, MODEL, 4)
    times = [datetime.fromisoformat(r["start_time"].replace("Z", "+00:00")) for r in rows]
    iso = lambda t: t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    start, end = min(times) - timedelta(seconds=1), max(times) + timedelta(seconds=2)
    return f"?start={quote(iso(start))}&end={quote(iso(end))}", rows


def usd(x: Decimal) -> float:
    return float(x)


def pusd(v: float) -> int:
    return round(v * 1e12)


def expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The panels' totals from the records and the fake's known usage, at the configured rates."""
    hits = [r for r in rows if r["cache_hit"]]
    called = [r for r in rows if not r["cache_hit"]]
    for r in rows:  # the usage the fake reports
        assert r["cached_tokens"] == r["prompt_tokens"] // 2 and r["reasoning_tokens"] == 2, r
        writes = [x["tokens"] for x in r["cost_breakdown"] if x["component"] == "cache_write"]
        assert writes == [r["prompt_tokens"] // 4]

    def price(r: dict[str, Any]) -> dict[str, Decimal]:
        p, cached, write = r["prompt_tokens"], r["cached_tokens"], r["prompt_tokens"] // 4
        tokens = {"input": p - cached - write, "cached_input": cached, "cache_write": write,
                  "output": r["completion_tokens"] - 2, "reasoning": 2}  # fmt: skip
        return {c: Decimal(tokens[c]) * Decimal(str(RATES[c])) / 1_000_000 for c in COMPONENTS}

    costs = {c: sum((price(r)[c] for r in called), Decimal(0)) for c in COMPONENTS}
    saved_hits = sum((sum(price(r).values(), Decimal(0)) for r in hits), Decimal(0))
    rate_gap = Decimal(str(RATES["input"])) - Decimal(str(RATES["cached_input"]))
    saved_cached = sum((r["cached_tokens"] * rate_gap / 1_000_000 for r in called), Decimal(0))
    prompt = sum(r["prompt_tokens"] for r in called)  # the hit's input never went upstream
    completion = sum(r["completion_tokens"] for r in rows)
    return {
        "costs": {**{c: usd(v) for c, v in costs.items()}, "spend": usd(sum(costs.values(), Decimal(0)))},
        "cache": {
            "cached_tokens": sum(r["cached_tokens"] for r in called),
            "cached_share": sum(r["cached_tokens"] for r in called) / prompt,
            "cache_write_tokens": sum(r["prompt_tokens"] // 4 for r in called),
            "cached_saved": usd(saved_cached),
            "cache_hits": len(hits),
            "cache_hit_share": len(hits) / len(rows),
            "cache_hit_saved": usd(saved_hits),
        },
        "retries": {"retried": sum(r["retries"] > 0 for r in rows), "rescued": 1, "retry_attempts": 1},
        "reasoning": {"reasoning_tokens": 2 * len(rows), "reasoning_share": 2 * len(rows) / completion},
    }


def test_the_panels_api_answers_the_known_usage(server: ServerProcess, traffic: tuple[str, list]) -> None:
    query, rows = traffic
    assert len(rows) == 4 and sum(r["cache_hit"] for r in rows) == 1
    want = expected(rows)
    spend = api(server, f"/api/deployments/{MODEL}/usage{query}")["spend"]
    for which, figures in want.items():
        got = api(server, f"/api/deployments/{MODEL}/usage/{which}{query}")["totals"]
        for key, value in figures.items():
            if isinstance(value, float) and ("share" in key):
                assert got[key] == pytest.approx(value), (which, key)
            elif isinstance(value, float):
                assert pusd(got[key]) == pusd(value), (which, key, got[key], value)
            else:
                assert got[key] == value, (which, key)
    assert pusd(want["costs"]["spend"]) == pusd(spend)  # the split adds up to the Spend card
    # Documented on /docs like the other usage endpoints.
    paths = api(server, "/openapi.json")["paths"]
    for which in want:
        doc = paths[f"/api/deployments/{{name}}/usage/{which}"]["get"]
        assert doc["summary"] and len(doc["description"]) > 100


def check_page(page: Page, server: ServerProcess, query: str) -> dict[str, dict[str, Any]]:
    got = {
        w: api(server, f"/api/deployments/{MODEL}/usage/{w}{query}") for w in ("costs", "cache", "retries", "reasoning")
    }
    # A stacked trace per component with a value in the window (charts.js withValues); reasoning's line.
    stacked = {
        "costs": [[b[c] for b in got["costs"]["buckets"]] for c in got["costs"]["components"]],
        "cache": [[b[c] for b in got["cache"]["buckets"]] for c in ("cached_saved", "cache_hit_saved")],
        "retries": [[b[c] for b in got["retries"]["buckets"]] for c in ("rescued", "failed_after_retries")],
    }
    counts = {key: sum(1 for ys in series if any(ys)) for key, series in stacked.items()}
    for key, traces in (*counts.items(), ("reasoning", 1)):
        plot = page.locator(f'.plot[data-insight="{key}"]')
        expect(plot.locator(".main-svg").first).to_be_visible(timeout=15_000)  # (plotly's first load)
        expect(plot.locator("g.trace")).to_have_count(traces)
    cells = {
        "costs": {c: fmt(page, "usdCell", got["costs"]["totals"][c]) for c in (*COMPONENTS, "spend")},
        "cache": {
            "cached_tokens": fmt(page, "int", got["cache"]["totals"]["cached_tokens"]),
            "cached_share": fmt(page, "pct", got["cache"]["totals"]["cached_share"]),
            "cache_write_tokens": fmt(page, "int", got["cache"]["totals"]["cache_write_tokens"]),
            "cached_saved": fmt(page, "usdCell", got["cache"]["totals"]["cached_saved"]),
            "cache_hits": fmt(page, "int", got["cache"]["totals"]["cache_hits"]),
            "cache_hit_saved": fmt(page, "usdCell", got["cache"]["totals"]["cache_hit_saved"]),
        },
        "retries": {k: fmt(page, "int", got["retries"]["totals"][k]) for k in ("retried", "rescued", "retry_attempts")},
        "reasoning": {
            "reasoning_tokens": fmt(page, "int", got["reasoning"]["totals"]["reasoning_tokens"]),
            "reasoning_share": fmt(page, "pct", got["reasoning"]["totals"]["reasoning_share"]),
        },
    }
    for panel, want in cells.items():
        totals = page.locator(f'[data-panel="{panel}"] table.numbers tfoot tr[data-role=totals]')
        for col, text in want.items():
            expect(totals.locator(f'td[data-col="{col}"]')).to_have_text(text)
        rows = page.locator(f'[data-panel="{panel}"] table.numbers tbody tr')
        expect(rows).to_have_count(sum(1 for b in got[panel]["buckets"] if b["requests"]))
    stats = page.locator('[data-panel="cache"] [data-role=stats]')
    expect(stats).to_contain_text(fmt(page, "pct", got["cache"]["totals"]["cached_share"]))
    return got


def test_the_panels_render_their_numbers(page: Page, server: ServerProcess, traffic: tuple[str, list]) -> None:
    query, _ = traffic
    open_usage(page, MODEL, query + "&insights=1")
    got = check_page(page, server, query)
    assert got["retries"]["totals"]["rescued"] == 1 and got["cache"]["totals"]["cache_hits"] == 1
    # The numbers are a table a screen reader can reach (the chart itself is hidden from it).
    page.locator('[data-panel="costs"] .numbers-toggle summary').click()
    expect(page.locator('[data-panel="costs"] table.numbers caption')).to_have_text(
        "Spend by cost component per time bucket"
    )
    expect(page.locator('[data-panel="costs"] .plot')).to_have_attribute("aria-hidden", "true")
    page.locator('[data-panel="costs"]').scroll_into_view_if_needed()
    shot(page, "usage-panels")


def test_the_panels_on_a_phone(page: Page, server: ServerProcess, traffic: tuple[str, list]) -> None:
    query, _ = traffic
    page.set_viewport_size({"width": 390, "height": 844})
    open_usage(page, MODEL, query + "&insights=1")
    check_page(page, server, query)
    for key in ("costs", "cache", "retries", "reasoning"):
        page.locator(f'[data-panel="{key}"] .numbers-toggle summary').click()
        box = page.locator(f'[data-panel="{key}"]').bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, key
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391
          && !e.closest('.numbers-scroll')).slice(0, 5).map(e => `${e.tagName}.${e.className}`)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    page.locator('[data-panel="cache"]').scroll_into_view_if_needed()
    shot(page, "usage-panels-phone", full_page=True)
