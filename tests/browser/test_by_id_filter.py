"""The Responses API's by-id calls in the page: a retrieve made through the gateway (openai SDK,
fake Responses upstream) is its own call type, listed by the log's call-type filter, and free."""

from __future__ import annotations

import re

import openai
from playwright.sync_api import Page, expect

from tests.browser.support import log_ids, open_usage, records
from tests.helpers import ServerProcess

DEP = "byid-model"


def test_call_type_filter_lists_the_by_id_calls(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    made = client.responses.create(model=DEP, input="Say hello.", max_output_tokens=3)
    assert client.responses.retrieve(made.id).id == made.id
    client.responses.input_items.list(made.id)
    rows = records(server, DEP, 3)
    got = {r["call_type"]: r["id"] for r in rows}
    assert set(got) == {"responses", "responses_get", "responses_input_items"}

    open_usage(page, DEP)
    assert set(log_ids(page)) == set(got.values())
    select = page.get_by_label("Filter by call type")
    labels = select.locator("option").all_inner_texts()
    for label in ("Responses: retrieve", "Responses: delete", "Responses: input items", "Responses: cancel"):
        assert label in labels
    select.select_option(label="Responses: retrieve")
    expect(page).to_have_url(re.compile(r"[?&]type=responses_get"))
    expect(page.locator("table.log tbody tr.row")).to_have_count(1)
    assert log_ids(page) == [got["responses_get"]]
    select.select_option(label="Responses: input items")
    expect(page.locator("table.log tbody tr.row")).to_have_count(1)
    assert log_ids(page) == [got["responses_input_items"]]
