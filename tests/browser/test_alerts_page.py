"""The Alerts page and the banner on a model card whose rule is firing, at desktop width and on a
phone (390 px): rules with their state, value and last firing, the history with delivery attempts,
and never the webhook's URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import shot
from tests.helpers import ServerProcess, closed_port_url, wait_for

MODEL = "alerts-model"


@pytest.fixture
def rules(server: ServerProcess) -> Iterator[str]:
    """A rule firing on MODEL (no calls in 5 min) and a quiet one; the secret part of their webhook."""
    secret = uuid.uuid4().hex
    hook = closed_port_url().replace("/v1", f"/hook/{secret}")  # refused: every attempt fails, fast
    made = [
        {"name": "alerts-dead", "kind": "no_traffic", "deployment": MODEL, "window": "5m", "webhook": hook},
        {"name": "alerts-spend", "kind": "spend", "deployment": MODEL, "threshold": 100, "window": "1h"},
    ]
    for rule in made:
        assert server.api("POST", "/api/alerts", rule)[0] == 201
    wait_for(
        lambda: any(
            r["name"] == "alerts-dead" and r["state"] == "firing" for r in server.api("GET", "/api/alerts")[1]["data"]
        ),
        10,
        message="the no_traffic rule to fire",
    )
    wait_for(lambda: server.api("GET", "/api/alerts/alerts-dead/history")[1]["data"][0]["deliveries"], 10)
    yield secret
    for rule in made:
        server.api("DELETE", f"/api/alerts/{rule['name']}")


@pytest.mark.parametrize("width", [1440, 390])
def test_alerts_list_and_card_banner(page: Page, server: ServerProcess, rules: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    card = page.locator(f'.model-card[data-name="{MODEL}"]')
    banner = card.get_by_role("alert")
    expect(banner).to_contain_text("Alert firing")
    expect(banner).to_contain_text("alerts-dead")
    expect(banner).not_to_contain_text("alerts-spend")  # not firing: no banner for it
    expect(page.locator('.model-card[data-name="cards-model"] .alert-banner')).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    card_box, banner_box = card.bounding_box(), banner.bounding_box()
    assert card_box and banner_box and banner_box["x"] + banner_box["width"] <= card_box["x"] + card_box["width"] + 0.5
    nav = page.get_by_role("navigation", name="Main").bounding_box()
    assert nav is not None and nav["height"] < 40  # the three links on one line, at 390 px too
    assert "null" not in page.locator("main").inner_text().split()
    card.scroll_into_view_if_needed()
    shot(page, f"alerts-card-{width}")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page).to_have_url(f"{server.url}/alerts")
    dead = page.locator('.alert-item[data-name="alerts-dead"]')
    expect(dead).to_have_attribute("data-state", "firing")
    expect(dead.locator(".pill")).to_have_text("firing")
    expect(dead.locator('[data-stat="value"]')).to_have_text("0 requests")
    expect(dead.locator('[data-stat="last-fired"]')).not_to_have_text("never")
    expect(dead).to_contain_text("127.0.0.1")  # the webhook's host, not its URL
    quiet = page.locator('.alert-item[data-name="alerts-spend"]')
    expect(quiet).to_have_attribute("data-state", "ok")
    expect(quiet.locator('[data-stat="last-fired"]')).to_have_text("never")

    dead.get_by_role("button", name="History").click()
    # newest first (the 390 px run's rule carries on the history of the 1440 px run's, deleted)
    fired = dead.locator('.alert-events li[data-status="firing"]').first
    expect(fired).to_contain_text("webhook: #1 ClientConnectorError")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert rules not in page.content()
    shot(page, f"alerts-list-{width}")


@pytest.mark.parametrize("width", [1440, 390])
def test_a_deleted_rule_keeps_its_history(page: Page, server: ServerProcess, width: int) -> None:
    """Deleting an API rule keeps its state changes and delivery attempts: the API lists it under
    "deleted" and the page shows it as a deleted rule, with its history."""
    secret = uuid.uuid4().hex
    hook = closed_port_url().replace("/v1", f"/hook/{secret}")
    rule = {"name": "alerts-gone", "kind": "no_traffic", "deployment": MODEL, "window": "5m", "webhook": hook}
    assert server.api("POST", "/api/alerts", rule)[0] == 201
    wait_for(
        lambda: [e for e in server.api("GET", "/api/alerts/alerts-gone/history")[1]["data"] if e["deliveries"]],
        10,
        message="the rule to fire and its webhook to be tried",
    )
    before = server.api("GET", "/api/alerts/alerts-gone/history")[1]["data"]
    assert server.api("DELETE", "/api/alerts/alerts-gone")[0] == 204
    status, listed = server.api("GET", "/api/alerts")
    assert status == 200 and "alerts-gone" not in {r["name"] for r in listed["data"]}
    gone = next(d for d in listed["deleted"] if d["name"] == "alerts-gone")
    assert gone["changes"] >= 1 and gone["last_change"] == before[0]["at"]
    after = server.api("GET", "/api/alerts/alerts-gone/history")[1]["data"]
    assert [e["id"] for e in after] == [e["id"] for e in before]  # (retries may still add attempts)

    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/alerts")
    item = page.locator('.alert-item[data-name="alerts-gone"]')
    expect(item).to_have_attribute("data-state", "deleted")
    expect(item.locator(".pill")).to_have_text("deleted rule")
    expect(page.locator(".alert-section")).to_have_text("Deleted rules")
    item.get_by_role("button", name="History").click()
    expect(item.locator('.alert-events li[data-status="firing"]').first).to_contain_text(
        "webhook: #1 ClientConnectorError"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert secret not in page.content()
    item.scroll_into_view_if_needed()
    shot(page, f"alerts-deleted-{width}")
