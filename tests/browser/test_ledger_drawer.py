"""The drawer's cost section says which model id the call was priced as (issue 11 item 1)."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import chat, open_usage, records
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser


def test_the_cost_section_names_the_priced_model(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    chat(client, "ledger-model", "How much was this?", max_tokens=4)
    [row] = records(server, "ledger-model", 1)
    assert row["priced_model"] == "fake-model"  # the deployment's configured model
    open_usage(page, "ledger-model")
    page.locator(f'tr.row[data-id="{row["id"]}"] td').nth(3).click()
    cost = page.get_by_role("dialog").locator('[data-section="cost"]')
    expect(cost.locator("[data-role=priced-model]")).to_have_text("Priced as fake-model.")
