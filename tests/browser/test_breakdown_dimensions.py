"""The Usage tab's breakdown by end user and tag (hourly top-N rollups): rows and "Total" render,
the numbers are the API's, and a row opens the log filtered to it (desktop and 390 px phone)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, fmt, open_usage, records
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "breakdown-model"
USERS = {"alice": 3, "bob": 2}  # and one request without a user


@pytest.fixture(scope="module")
def traffic(server: ServerProcess, client: openai.OpenAI) -> None:
    for user, n in USERS.items():
        for i in range(n):
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"hello from {user} " * (i + 1)}],
                max_tokens=4 + i,
                user=user,
                extra_headers={"x-modelmeter-tags": f"team:{user}"},
            )
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "anonymous"}], max_tokens=3)
    records(server, MODEL, sum(USERS.values()) + 1)


def breakdown(server: ServerProcess, by: str) -> dict[str, Any]:
    return api(server, f"/api/deployments/{MODEL}/usage/breakdown?window=7d&by={by}&sort=requests")  # type: ignore[no-any-return]


@pytest.mark.parametrize("width", [1440, 390])
def test_user_rows_render_and_open_the_log(page: Page, server: ServerProcess, traffic: None, width: int) -> None:
    got = breakdown(server, "user")
    assert {r["value"]: r["requests"] for r in got["rows"]} == {**USERS, "": 1}
    assert got["others"] is None and got["total"]["requests"] == sum(USERS.values()) + 1
    if width != 1440:
        page.set_viewport_size({"width": width, "height": 844})
    open_usage(page, MODEL, "?insights=1")
    panel = page.locator('[data-panel="breakdown"]')
    panel.locator('[data-by="user"]').click()
    alice = panel.locator('tbody tr[data-value="alice"]')
    expect(alice).to_have_count(1)
    row = next(r for r in got["rows"] if r["value"] == "alice")
    assert alice.locator("td").all_inner_texts() == [
        fmt(page, "int", row["requests"]),
        fmt(page, "pct", row["error_rate"]),
        fmt(page, "int", row["total_tokens"]),
        fmt(page, "usd", row["spend"]),
        fmt(page, "ms", row["p95_ms"]),
    ]
    expect(panel.locator("tbody tr")).to_have_count(3)
    expect(panel.locator('tbody tr[data-value=""] th')).to_have_text("(no user)")
    expect(panel.locator("tfoot td").first).to_have_text(fmt(page, "int", got["total"]["requests"]))
    # Sorted by requests on request: alice (3) first.
    panel.locator("select[name=breakdown_sort]").select_option("requests")
    expect(panel.locator("tbody tr").first).to_have_attribute("data-value", "alice")
    if width == 390:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    alice.locator("button").click()
    page.wait_for_function("() => new URL(location.href).searchParams.get('user') === 'alice'")
    page.wait_for_function(f"() => document.querySelectorAll('table.log tbody tr.row').length === {USERS['alice']}")
    expect(page.locator("#requests-log")).to_be_in_viewport()
    expect(page.locator("input[name=user]")).to_have_value("alice")


def test_a_tag_row_filters_the_log_and_the_csv_has_the_rows(page: Page, server: ServerProcess, traffic: None) -> None:
    got = breakdown(server, "tag")
    assert {r["value"]: r["requests"] for r in got["rows"]} == {"team:alice": 3, "team:bob": 2, "": 1}
    open_usage(page, MODEL, "?insights=1")
    panel = page.locator('[data-panel="breakdown"]')
    panel.locator('[data-by="tag"]').click()
    bob = panel.locator('tbody tr[data-value="team:bob"]')
    expect(bob).to_have_count(1)
    href = panel.locator("[data-export=breakdown]").get_attribute("href") or ""
    status, body = server.api("GET", href)
    lines = str(body).splitlines()
    assert status == 200 and lines[0].startswith("others,value,requests") and ",team:bob,2," in "\n".join(lines)
    bob.locator("button").click()
    page.wait_for_function("() => new URL(location.href).searchParams.get('tag') === 'team:bob'")
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 2")
