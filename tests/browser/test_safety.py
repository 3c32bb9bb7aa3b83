"""Whatever came in a request is shown as text: HTML in prompts, metadata and tags runs nothing."""

from __future__ import annotations

from urllib.parse import quote

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import open_usage, records
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"


def test_html_in_prompts_metadata_and_tags_is_shown_as_text(
    page: Page, server: ServerProcess, client: openai.OpenAI
) -> None:
    prompt = f"{IMG} and {SCRIPT}"
    client.chat.completions.create(
        model="xss-model",
        max_tokens=3,
        messages=[{"role": "system", "content": SCRIPT}, {"role": "user", "content": prompt}],
        metadata={"note": IMG, "html": SCRIPT},
        extra_headers={"x-modelmeter-tags": f"{IMG},{SCRIPT}"},
    )
    (row,) = records(server, "xss-model", 1)
    open_usage(page, "xss-model")
    page.locator(f'tr.row[data-id="{row["id"]}"]').click()
    drawer = page.get_by_role("dialog")
    bodies = drawer.locator('[data-section="bodies"]')
    bodies.get_by_role("tab", name="Pretty").click()
    expect(bodies.locator('.msg[data-role="user"] .msg-text')).to_have_text(prompt)
    expect(bodies.locator('.msg[data-role="system"] .msg-text')).to_have_text(SCRIPT)
    meta = drawer.locator('[data-section="metadata"]')
    expect(meta.locator('dt:text-is("note") + dd')).to_have_text(IMG)
    expect(meta.locator('dt:text-is("html") + dd')).to_have_text(SCRIPT)
    expect(meta.locator(".tag")).to_have_text([IMG, SCRIPT])
    bodies.get_by_role("tab", name="JSON").click()
    expect(bodies.locator('pre[data-json="request"]')).to_contain_text(IMG)
    assert page.locator("img[src=x]").count() == 0
    # The tag link filters the tab by that tag: shown as text in the banner too.
    meta.locator(".tag").first.click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator(".banner-filter code")).to_have_text(IMG)
    expect(page.locator("input[aria-label='Filter by tag']")).to_have_value(IMG)
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 1")
    # Straight from a URL as well.
    page.goto(f"/models/xss-model?tag={quote(SCRIPT)}")
    expect(page.locator(".banner-filter code")).to_have_text(SCRIPT)
    page.wait_for_function("() => document.querySelectorAll('table.log tbody tr.row').length === 1")
    assert page.locator("img[src=x]").count() == 0
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert all(src.startswith(server.url + "/static/") for src in scripts), scripts
    assert page.evaluate("typeof window.alert") == "function"
    # The page fixture fails the test if any dialog (alert) opened or the CSP blocked anything.
