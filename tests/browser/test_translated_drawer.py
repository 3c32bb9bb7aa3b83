"""The drawer's JSON view of a translated call (a chat client, a Messages upstream): the client's
bodies, then "Sent upstream" and "Upstream answered" as stored, as text (never markup)."""

from __future__ import annotations

import openai
from playwright.sync_api import Page, expect

from tests.browser.support import chat, open_usage, record_where, shot
from tests.helpers import ServerProcess

HOSTILE = "<img src=x onerror=alert(1)> Say hello."


def test_json_view_shows_what_went_upstream(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    rid = chat(client, "translated-model", HOSTILE, max_tokens=4)
    chat(client, "translated-model", "another call, not the one opened", max_tokens=2)
    row = record_where(server, "translated-model", lambda r: r["request_id"] == rid)
    open_usage(page, "translated-model")
    page.locator(f'tr.row[data-id="{row["id"]}"] td').nth(3).click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    bodies = drawer.locator('[data-section="bodies"]')
    bodies.get_by_role("tab", name="JSON").click()
    expect(bodies.locator(".json-head .card-title")).to_have_text(
        ["Request", "Response", "Sent upstream", "Upstream answered"]
    )
    expect(bodies.locator('pre[data-json="request"]')).to_contain_text('"model": "translated-model"')
    expect(bodies.locator('pre[data-json="response"]')).to_contain_text('"object": "chat.completion"')
    sent = bodies.locator('pre[data-json="sent upstream"]')
    expect(sent).to_contain_text('"model": "claude-translated"')
    expect(sent).to_contain_text('"max_tokens": 4')
    expect(sent).to_contain_text('"type": "text"')  # Anthropic's content blocks
    expect(sent).to_contain_text("<img src=x onerror=alert(1)>")  # the text, shown as text
    answered = bodies.locator('pre[data-json="upstream answered"]')
    expect(answered).to_contain_text('"type": "message"')
    expect(answered).to_contain_text('"cache_read_input_tokens": 0')
    expect(drawer.locator("img")).to_have_count(0)
    bodies.locator('pre[data-json="sent upstream"]').scroll_into_view_if_needed()
    shot(page, "drawer-json-translated")
