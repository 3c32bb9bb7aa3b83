"""The detail drawer: every section, Pretty / JSON, its own URL, Esc, missing bodies."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import SYSTEM, api, chat, fmt, open_usage, record_where, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
SECTIONS = ["Request Details", "Metrics", "Cost Breakdown", "Request & Response", "Metadata"]


def test_drawer_sections_toggle_url_reload_and_esc(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    rid = chat(
        client,
        "drawer-model",
        "What is the capital of France?",
        max_tokens=12,
        tags=["bench:drawer", "nightly"],
        metadata={"experiment": "capitals"},
        stream=True,
    )
    chat(client, "drawer-model", "a later request", max_tokens=3)
    row = record_where(server, "drawer-model", lambda r: r["request_id"] == rid)
    open_usage(page, "drawer-model")
    page.locator(f'tr.row[data-id="{row["id"]}"] td').nth(3).click()  # anywhere on the row
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/models/drawer-model/requests/{row['id']}$"))
    expect(drawer.locator(".drawer-section")).to_have_count(5)
    assert drawer.locator(".drawer-section > h3").all_text_contents() == SECTIONS
    details = drawer.locator('[data-section="details"]')
    for label, value in [
        ("Model", "drawer-model"),
        ("Provider", "openai"),
        ("Call type", "chat · streamed"),
        ("Model ID", "fake-model"),
        ("API base", row["api_base"]),
        ("IP address", f"{row['client_ip']} (redacted)"),
        ("Request ID", rid),
    ]:
        expect(details.locator(f'dt:text-is("{label}") + dd')).to_have_text(value)
    metrics = drawer.locator('[data-section="metrics"]')
    expect(metrics.locator(".split-legend")).to_contain_text(f"Prompt {row['prompt_tokens']}")
    expect(metrics.locator(".split-legend")).to_contain_text(f"Completion {row['completion_tokens']}")
    for label in [
        "Cost",
        "Duration",
        "Time to first token",
        "Cache hit",
        "Gateway overhead",
        "Retries",
        "Start time",
        "End time",
    ]:
        expect(metrics.locator(f'dt:text-is("{label}")')).to_be_visible()
    expect(metrics.locator('dt:text-is("Cost") + dd')).to_have_text(fmt(page, "usd", row["spend"]))
    expect(metrics.locator('dt:text-is("Duration") + dd')).to_have_text(fmt(page, "ms", row["latency_ms"]))
    cost = drawer.locator('[data-section="cost"]')
    expect(cost.locator("tbody tr")).to_have_count(len(row["cost_breakdown"]))
    expect(cost.locator("tfoot")).to_contain_text(fmt(page, "usd", row["spend"]))
    assert sum(c["cost"] for c in row["cost_breakdown"]) == pytest.approx(row["spend"])
    # Pretty: the conversation.
    bodies = drawer.locator('[data-section="bodies"]')
    expect(bodies.get_by_role("tab", name="Pretty")).to_have_attribute("aria-selected", "true")
    expect(bodies.locator('.msg[data-role="system"] .msg-text')).to_have_text(SYSTEM)
    expect(bodies.locator('.msg[data-role="user"] .msg-text')).to_have_text("What is the capital of France?")
    expect(bodies.locator('.msg[data-role="assistant"] .msg-text')).to_have_text(" ".join(f"tok{i}" for i in range(12)))
    meta = drawer.locator('[data-section="metadata"]')
    expect(meta.locator('dt:text-is("experiment") + dd')).to_have_text("capitals")
    expect(meta.locator(".tag")).to_have_text(["bench:drawer", "nightly"])
    shot(page, "drawer")
    # JSON: the bodies as stored (the stream's response reassembled as a chat.completion).
    bodies.get_by_role("tab", name="JSON").click()
    expect(bodies.locator('pre[data-json="request"]')).to_contain_text('"content": "What is the capital of France?"')
    expect(bodies.locator('pre[data-json="response"]')).to_contain_text('"object": "chat.completion"')
    bodies.locator("pre").first.scroll_into_view_if_needed()
    shot(page, "drawer-json")
    bodies.get_by_role("tab", name="Pretty").click()
    expect(bodies.locator(".conversation")).to_be_visible()
    # The URL is shareable: a reload opens the same drawer.
    page.reload()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("dialog").locator(".drawer-id")).to_have_text(rid)
    expect(page.locator(".cards")).to_be_visible()
    # Esc closes it, and the URL is the tab's again.
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/models/drawer-model$"))
    # Opened from the log, then closed with Esc: back on the tab's URL.
    page.locator("table.log tbody tr.row").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"/models/drawer-model$"))
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_drawer_says_why_bodies_are_missing(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    chat(client, "nobodies-model", "keep this private")
    (row,) = records(server, "nobodies-model", 1)
    note = api(server, f"/api/requests/{row['id']}")["bodies_note"]
    page.goto(f"/models/nobodies-model/requests/{row['id']}")
    bodies = page.get_by_role("dialog").locator('[data-section="bodies"]')
    expect(bodies.get_by_role("note")).to_have_text(note)
    expect(page.get_by_role("dialog")).not_to_contain_text("keep this private")


def test_completion_and_embedding_bodies(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    client.completions.create(model="drawer-model", prompt="Once upon a time", max_tokens=4)
    client.embeddings.create(model="drawer-model", input=["first text", "second text"])
    emb = record_where(server, "drawer-model", lambda r: r["call_type"] == "embedding")
    cmpl = record_where(server, "drawer-model", lambda r: r["call_type"] == "completion")
    page.goto(f"/models/drawer-model/requests/{cmpl['id']}")
    bodies = page.get_by_role("dialog").locator('[data-section="bodies"]')
    bodies.get_by_role("tab", name="Pretty").click()
    expect(bodies.locator('.msg[data-role="prompt"] .msg-text')).to_have_text("Once upon a time")
    expect(bodies.locator('.msg[data-role="completion"] .msg-text')).to_have_text("tok0 tok1 tok2 tok3")
    page.goto(f"/models/drawer-model/requests/{emb['id']}")
    bodies = page.get_by_role("dialog").locator('[data-section="bodies"]')
    expect(bodies.locator('.msg[data-role="input 1"] .msg-text')).to_have_text("first text")
    expect(bodies.locator('.msg[data-role="input 2"] .msg-text')).to_have_text("second text")
    expect(bodies.locator('.msg[data-role="embedding"]')).to_contain_text("2 vectors of 384 dimensions")
    # The Request column falls back to the record id when the upstream gave no request ID.
    page.keyboard.press("Escape")
    cell = page.locator(f'tr.row[data-id="{emb["id"]}"] td.cell-rid')
    expect(cell).to_have_text(emb["request_id"] or emb["id"])
