"""Keyboard use of the Usage tab (issue #14): the arrows move through the request log, Enter opens
a request's drawer, Tab stays inside the open drawer (a modal dialog), Esc closes it and gives the
focus back to the row that opened it."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import chat, log_ids, open_usage, records
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "keyboard-model"


def focused_row(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement.closest('tr.row')?.dataset.id ?? null")


def test_the_log_and_the_drawer_work_from_the_keyboard(
    page: Page, server: ServerProcess, client: openai.OpenAI
) -> None:
    for i in range(3):
        chat(client, MODEL, f"keyboard {i}", max_tokens=3)
    records(server, MODEL, 3)
    open_usage(page, MODEL)
    ids = log_ids(page)
    assert len(ids) == 3

    page.locator(f'tr.row[data-id="{ids[0]}"]').focus()
    page.keyboard.press("ArrowDown")
    assert focused_row(page) == ids[1]
    page.keyboard.press("End")
    assert focused_row(page) == ids[2]
    page.keyboard.press("ArrowDown")  # past the last row: stays
    assert focused_row(page) == ids[2]
    page.keyboard.press("Home")
    assert focused_row(page) == ids[0]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowDown")
    assert focused_row(page) == ids[1]

    page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    expect(page).to_have_url(f"{server.url}/models/{MODEL}/requests/{ids[1]}")
    expect(drawer.locator(".drawer-id")).not_to_have_text("")
    for key in ["Tab"] * 25 + ["Shift+Tab"] * 25:  # more presses than the drawer has controls
        page.keyboard.press(key)
        assert page.evaluate("() => document.querySelector('.drawer').contains(document.activeElement)"), key

    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    assert focused_row(page) == ids[1]
    # The focused row shows a visible focus ring.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
