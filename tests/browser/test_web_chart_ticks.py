"""The charts' y axes speak human units: seconds and minutes above 10 s (never 1.5e+4 ms), no SI
milli on an empty chart (never 500m tokens or 0.5 ms), and no tick label clipped."""

from __future__ import annotations

import re
import threading

import openai
import pytest
from playwright.sync_api import Page

from tests.browser.support import open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
CHARTS = ("requests", "tokens", "spend", "latency")
EXPONENT_OR_MILLI = re.compile(r"e[+-]|\d[mµnu]$")


def tick_labels(page: Page, chart: str) -> list[str]:
    page.wait_for_selector(f'.plot[data-chart="{chart}"] .ytick text', state="attached")
    return [
        t.replace("\u2212", "-") for t in page.locator(f'.plot[data-chart="{chart}"] .ytick text').all_text_contents()
    ]


def clipped(page: Page, chart: str) -> list[str]:
    """Tick labels that stick out of the chart's card (cut off on screen)."""
    return list(
        page.evaluate(
            """chart => {
      const plot = document.querySelector(`.plot[data-chart="${chart}"]`);
      const card = plot.closest('.chart').getBoundingClientRect();
      return [...plot.querySelectorAll('.ytick text')].filter(t => {
        const r = t.getBoundingClientRect();
        return r.left < card.left || r.right > card.right;
      }).map(t => t.textContent);
    }""",
            chart,
        )
    )


def test_tick_labels_of_an_empty_chart_and_of_long_latencies(
    page: Page, server: ServerProcess, client: openai.OpenAI
) -> None:
    # ticks-model's upstream answers 0.3 s a token: 36 tokens take about 10.5 s.
    slow = threading.Thread(
        target=lambda: client.chat.completions.create(
            model="ticks-model", messages=[{"role": "user", "content": "take your time"}], max_tokens=36
        )
    )
    slow.start()
    try:
        # A filter that matches nothing: the charts are drawn, empty.
        page.goto("/models/ticks-empty-model?window=30d&tag=no-such-tag")
        page.wait_for_selector("table.log tbody tr.row-empty")
        empty = {chart: tick_labels(page, chart) for chart in CHARTS}
        assert not [t for labels in empty.values() for t in labels if EXPONENT_OR_MILLI.search(t)], empty
        assert empty == {"requests": ["0"], "tokens": ["0"], "spend": ["$0"], "latency": ["0 ms"]}, empty
    finally:
        slow.join(timeout=60)
    row = records(server, "ticks-model", 1)[0]
    assert row["latency_ms"] > 10_000, row["latency_ms"]
    open_usage(page, "ticks-model", "?window=1h")
    latency = tick_labels(page, "latency")
    assert not [t for t in latency if EXPONENT_OR_MILLI.search(t)], latency
    assert all(t.endswith(" s") for t in latency), latency
    seconds = [float(t.removesuffix(" s")) for t in latency]
    assert seconds == sorted(seconds) and seconds[0] == 0 and seconds[-1] * 1000 >= row["latency_ms"], latency
    for chart in CHARTS:
        labels = tick_labels(page, chart)
        assert not [t for t in labels if EXPONENT_OR_MILLI.search(t)], (chart, labels)
        assert not clipped(page, chart), (chart, clipped(page, chart))
    page.locator('.plot[data-chart="latency"]').scroll_into_view_if_needed()
    shot(page, "charts-long-latency")
