"""The drawer tells where its numbers come from: TTFT only for streams, the origin of the usage
(reported, estimated, none because the gateway rejected the call), the request as the client sent
it, and cost components that visibly add up to the total."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import chat, fmt, open_usage, records, shot
from tests.helpers import ServerProcess, http_json, wait_for

pytestmark = pytest.mark.browser
MODEL = "origin-model"
DASH = "—"


def open_drawer(page: Page, record_id: str) -> Locator:
    page.goto(f"/models/{MODEL}/requests/{record_id}")
    drawer = page.get_by_role("dialog")
    expect(drawer.locator('[data-section="metrics"]')).to_be_visible()
    return drawer


def metric(drawer: Locator, label: str) -> Locator:
    return drawer.locator(f'[data-section="metrics"] dt:text-is("{label}") + dd')


def test_ttft_and_usage_origin_and_what_the_client_sent(
    page: Page, server: ServerProcess, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError):  # refused by the gateway: no upstream call
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=-1)
    # A body the gateway refuses and the conversation view cannot draw: "messages" is not an array.
    status, body = http_json(
        "POST", f"{server.base_url}/chat/completions", {"model": MODEL, "messages": "Summarise the quarterly report"}
    )
    assert status == 400, body
    plain = chat(client, MODEL, "not streamed", max_tokens=3)
    streamed = chat(client, MODEL, "streamed", max_tokens=3, stream=True)
    rows = records(server, MODEL, 4)
    rejected, malformed = (
        next(r for r in rows if r["status"] == "error" and r["error"] and key in r["error"])
        for key in ("max_tokens", "messages")
    )
    by_rid = {r["request_id"]: r for r in rows if r["request_id"]}

    drawer = open_drawer(page, rejected["id"])
    expect(metric(drawer, "Time to first token")).to_have_text(DASH)
    expect(metric(drawer, "Usage")).to_have_text("None: rejected by the gateway")
    expect(metric(drawer, "Duration")).to_have_text(fmt(page, "ms", rejected["latency_ms"]))
    shot(page, "drawer-rejected")

    drawer = open_drawer(page, malformed["id"])
    expect(metric(drawer, "Usage")).to_have_text("None: rejected by the gateway")
    bodies = drawer.locator('[data-section="bodies"]')
    expect(bodies.get_by_role("tab", name="Pretty")).to_have_attribute("aria-selected", "true")
    expect(bodies.locator('[data-role="as-sent"]')).to_contain_text('"messages": "Summarise the quarterly report"')
    bodies.scroll_into_view_if_needed()
    shot(page, "drawer-rejected-as-sent")

    drawer = open_drawer(page, by_rid[plain]["id"])  # not streamed: no first token to time
    expect(metric(drawer, "Time to first token")).to_have_text(DASH)
    expect(metric(drawer, "Usage")).to_have_text("Reported by the upstream")
    expect(drawer.locator('[data-section="bodies"] [data-role="as-sent"]')).to_have_count(0)

    drawer = open_drawer(page, by_rid[streamed]["id"])
    ttft = by_rid[streamed]["ttft_ms"]
    assert ttft is not None
    expect(metric(drawer, "Time to first token")).to_have_text(fmt(page, "ms", ttft))
    expect(metric(drawer, "Usage")).to_have_text("Reported by the upstream")


def dollars(text: str) -> Decimal:
    return Decimal(text.strip().replace("$", "").replace(",", ""))


def test_cost_components_add_up_to_the_total_shown(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    # 1,234 tokens each way at $1 / 1M: $0.001234 + $0.001234 = $0.002468. At three significant
    # digits each part reads $0.00123 and the total $0.00247: they did not add up.
    client.completions.create(model=MODEL, prompt=" ".join(["word"] * 1234), max_tokens=1234)
    row = wait_for(
        lambda: next((r for r in server.records(MODEL) if r["call_type"] == "completion"), None),
        message="the completion's record",
    )
    assert [c["tokens"] for c in row["cost_breakdown"]] == [1234, 1234]
    open_usage(page, MODEL)
    page.locator(f'tr.row[data-id="{row["id"]}"]').click()
    cost = page.get_by_role("dialog").locator('[data-section="cost"]')
    expect(cost.locator("tbody tr")).to_have_count(2)
    parts = [dollars(t) for t in cost.locator("tbody tr td:last-child").all_text_contents()]
    total = dollars(cost.locator("tfoot td:last-child").inner_text())
    assert parts == [Decimal("0.001234"), Decimal("0.001234")]
    assert sum(parts) == total == Decimal("0.002468")
    expect(cost.locator('[data-role="sum"]')).to_have_text("$0.001234 + $0.001234 = $0.002468")
    # The Metrics section shows the same total, at the same rounding.
    expect(page.get_by_role("dialog").locator('[data-section="metrics"] dt:text-is("Cost") + dd')).to_have_text(
        "$0.002468"
    )
    cost.scroll_into_view_if_needed()
    shot(page, "drawer-cost-sum")
