"""The Usage tab at phone width (390 x 844): every column of the log readable, the drawer closable,
and nothing wider than the screen."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import chat, open_usage, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "phone-model"
WIDTH, HEIGHT = 390, 844
LABELS = ["Time", "Status", "Prompt", "Completion", "Total", "Latency (ms)", "Spend", "Request"]


def test_usage_tab_is_usable_on_a_phone(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    rid = chat(client, MODEL, "Hello from a phone", max_tokens=5)
    row = next(r for r in records(server, MODEL, 1) if r["request_id"] == rid)
    open_usage(page, MODEL)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    first = page.locator(f'table.log tr.row[data-id="{row["id"]}"]')
    first.scroll_into_view_if_needed()
    # Every one of the 8 columns is on screen, with its name next to its value.
    cells = page.evaluate(
        """tr => [...tr.children].map(td => {
      const r = td.getBoundingClientRect();
      return { label: getComputedStyle(td, '::before').content, text: td.innerText, left: r.left, right: r.right,
               width: r.width };
    })""",
        first.element_handle(),
    )
    assert len(cells) == 8
    for cell, label in zip(cells, LABELS, strict=True):
        assert label in cell["label"], (label, cell)
        assert cell["width"] > 0 and cell["left"] >= 0 and cell["right"] <= WIDTH, (label, cell)
    values = [c["text"].split("\n")[-1].strip() for c in cells]
    assert values[2:5] == [str(row["prompt_tokens"]), str(row["completion_tokens"]), str(row["total_tokens"])]
    assert values[7] == rid
    shot(page, "phone-log")

    # The drawer: its close button is on screen and closes it.
    first.click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    # Measured where it comes to rest: the drawer slides in (a CSS transition), slower on a busy machine.
    page.wait_for_function(
        "() => document.querySelector('.drawer').getAnimations({ subtree: true }).every(a => a.playState !== 'running')"
    )
    close = drawer.get_by_role("button", name="Close")
    box = close.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH and box["y"] >= 0, box
    copy = drawer.get_by_role("button", name="Copy link")
    copy_box = copy.bounding_box()
    assert copy_box is not None and copy_box["x"] + copy_box["width"] <= WIDTH, copy_box
    assert page.evaluate("document.querySelector('.drawer').scrollWidth") <= WIDTH
    shot(page, "phone-drawer")
    close.click()
    expect(drawer).to_be_hidden()
    expect(page).to_have_url(f"{server.url}/models/{MODEL}")
