"""A routed call's attempts in the drawer (issue 15): a timeline of the upstreams tried, the failed
one with its error, the served one with its tokens and cost; at desktop width and at 390 px. The
model card lists each upstream's health."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import chat, fmt, open_usage, shot
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, wait_for

MODEL = "routed-model"


@pytest.mark.parametrize("width", [1440, 390])
def test_attempts_timeline(page: Page, server: ServerProcess, client: openai.OpenAI, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
    rid = chat(client, MODEL, f"routed at {width}", max_tokens=5)
    row = wait_for(lambda: next((r for r in server.records(MODEL) if r["request_id"] == rid), None), 10)
    full = server.record(row["id"])
    assert [a["upstream"] for a in full["attempts"]] == ["primary", "backup"]
    open_usage(page, MODEL)
    page.locator(f'tr.row[data-id="{row["id"]}"]').click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    section = drawer.locator('[data-section="attempts"]')
    section.scroll_into_view_if_needed()
    expect(section.locator("h3")).to_have_text("Attempts")
    items = section.locator('li[data-role="attempt"]')
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("primary")
    expect(items.nth(0)).to_contain_text("HTTP 500")
    expect(items.nth(0).locator('[data-role="attempt-error"]')).to_have_text("HTTP 500")
    expect(items.nth(1)).to_contain_text("backup")
    expect(items.nth(1)).to_contain_text("HTTP 200 · served")
    served = full["attempts"][1]
    expect(items.nth(1)).to_contain_text(f"{served['tokens']} tokens")
    expect(items.nth(1)).to_contain_text(fmt(page, "usd", served["cost"]).split("$")[-1][:4])
    expect(section).to_contain_text("2 attempts; served by backup.")
    expect(drawer.locator('[data-section="details"]')).to_contain_text("Served by")
    if width == 390:
        page.wait_for_function(
            "() => document.querySelector('.drawer').getAnimations({ subtree: true })"
            ".every(a => a.playState !== 'running')"
        )
        assert page.evaluate("document.querySelector('.drawer').scrollWidth") <= width
        for i in range(2):
            box = items.nth(i).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    shot(page, f"drawer-attempts-{width}")


def test_model_card_shows_upstream_health(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    chat(client, MODEL, "for the card", max_tokens=2)
    page.goto("/")
    card = page.locator(f'article.model-card[data-name="{MODEL}"]')
    expect(card).to_be_visible()
    ups = card.locator("li.upstream")
    expect(ups).to_have_count(2)
    expect(ups.nth(0)).to_have_attribute("data-upstream", "primary")
    expect(ups.nth(0)).to_contain_text("healthy")
    expect(ups.nth(1)).to_contain_text("0 in flight")
    card.scroll_into_view_if_needed()
    shot(page, "model-card-upstreams")


def test_usage_tab_splits_by_upstream(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    rid = chat(client, MODEL, "for the split", max_tokens=3)
    wait_for(lambda: any(r["request_id"] == rid for r in server.records(MODEL)), 10)
    status, summary = server.api("GET", f"/api/deployments/{MODEL}/usage?window=1h")
    assert status == 200
    split = summary["upstreams"]
    (backup,) = split["data"]  # the primary always fails: every call is the backup's, rescued
    assert backup["upstream"] == "backup" and backup["requests"] == summary["requests"]
    assert split["rescued"] == summary["requests"] and backup["spend"] == pytest.approx(summary["spend"])
    open_usage(page, MODEL, "?window=1h")
    section = page.get_by_role("region", name="By upstream")
    expect(section).to_be_visible()
    row = section.locator('tr[data-upstream="backup"]')
    expect(row.locator("td").nth(1)).to_have_text(fmt(page, "int", backup["requests"]))
    expect(row.locator("td").nth(2)).to_have_text("100%")
    expect(row.locator("td").nth(5)).to_have_text(fmt(page, "usd", backup["spend"]))
    expect(section.locator('[data-role="rescued"]')).to_contain_text(f"{split['rescued']} rescued")
    section.scroll_into_view_if_needed()
    shot(page, "usage-by-upstream")
    page.goto("/models/cards-model")
    page.wait_for_selector("table.log tbody tr.row, .empty-state")
    expect(page.get_by_role("region", name="By upstream")).to_be_hidden()


def test_deploy_form_adds_several_upstreams(page: Page, server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    page.goto("/")
    page.get_by_role("button", name="Deploy a model").click()
    form = page.locator("form.deploy-form")
    form.locator("input[name=name]").fill("routed-at-runtime")
    form.locator("input[name=api_base]").fill(fake_upstream.base_url)
    form.locator("input[name=model]").fill("fake-model")
    form.locator("textarea[name=upstreams]").fill(
        f"{fake_upstream.base_url} name=second weight=3\n{fake_upstream.base_url} name=hosted priority=1 key=HOSTED_KEY"
    )
    form.locator("select[name=routing]").select_option("least_busy")
    form.get_by_role("button", name="Deploy").click()
    card = page.locator('.model-card[data-name="routed-at-runtime"]')
    expect(card).to_be_visible()
    dep = server.api("GET", "/api/deployments/routed-at-runtime")[1]
    assert dep["routing"] == "least_busy"
    assert [(u["name"], u["weight"], u["priority"], u["api_key_env"]) for u in dep["upstreams"]] == [
        ("127.0.0.1:" + fake_upstream.base_url.split(":")[2].split("/")[0], 1.0, 0, None),
        ("second", 3.0, 0, None),
        ("hosted", 1.0, 1, "HOSTED_KEY"),
    ]
    # A bad line: the API's message, as is.
    page.get_by_role("button", name="Deploy a model").click()
    form.locator("input[name=name]").fill("routed-bad")
    form.locator("input[name=api_base]").fill(fake_upstream.base_url)
    form.locator("textarea[name=upstreams]").fill(f"{fake_upstream.base_url} weight=0")
    form.get_by_role("button", name="Deploy").click()
    expect(form.get_by_role("alert")).to_contain_text("upstream 2: 'weight' must be a positive number")
    assert server.api("DELETE", "/api/deployments/routed-at-runtime")[0] == 204


def test_model_page_resets_an_upstream_that_is_out(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    chat(client, "routed-out-model", "402 then spare", max_tokens=2)
    page.goto("/models/routed-out-model")
    ups = page.locator('[data-role="upstreams"]')
    broke = ups.locator('[data-upstream="broke"]')
    expect(broke).to_have_attribute("data-state", "out")
    expect(broke).to_contain_text("out until reset")
    expect(ups.locator('[data-upstream="spare"]')).to_have_attribute("data-state", "healthy")
    expect(ups.get_by_role("button", name="Reset spare")).to_have_count(0)
    shot(page, "model-page-upstream-out")
    broke.get_by_role("button", name="Reset broke").click()
    expect(broke).to_have_attribute("data-state", "healthy")
    health = server.api("GET", "/api/upstreams")[1]
    (mine,) = [d for d in health["data"] if d["deployment"] == "routed-out-model"]
    assert {u["name"]: u["state"] for u in mine["upstreams"]} == {"broke": "healthy", "spare": "healthy"}
