"""Sessions and agent calls in the page (#12.5, #12.6): the log's call-type and session filters,
the drawer's link to the session's other calls, and the Pretty view of an Anthropic Messages call
with tool use and of a Responses call, at desktop width and at 390 px.

The Messages and Responses records are written into the server's database the way the recorder
writes them (``metering.record.finish`` + ``storage.records.insert_rows``), next to a real chat call
made through the gateway with ``x-modelmeter-session``."""

from __future__ import annotations

import re
import time
import tomllib
import uuid
from typing import Any

import openai
import pytest
from playwright.sync_api import Page, expect

from modelmeter.config import Deployment
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from tests.browser.support import log_ids, open_usage, record_where
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
DEP = "sessions-model"
EVIL = "<img src=x onerror=alert(1)>"

MESSAGES_REQ = {
    "model": DEP,
    "max_tokens": 256,
    "system": [{"type": "text", "text": "You are a careful agent."}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris? " + EVIL}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should call the weather tool.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 °C and sunny"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
    ],
}
MESSAGES_RES = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "It is 18 °C and sunny in Paris."}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 40, "output_tokens": 12},
}
RESPONSES_REQ = {
    "model": DEP,
    "instructions": "Be brief.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Add 2 and 3."}]},
        {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": '{"a": 2, "b": 3}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "5"},
    ],
}
RESPONSES_RES = {
    "id": "resp_01",
    "object": "response",
    "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "The tool said 5."}]},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "2 + 3 = 5"}],
        },
    ],
    "usage": {"input_tokens": 30, "output_tokens": 8, "total_tokens": 38},
}


def _database(server: ServerProcess) -> Database:
    config = tomllib.loads(server.config.read_text())
    return Database(config.get("server", config)["database"])


def _seed(server: ServerProcess, call_type: str, req: Any, res: Any, session: str) -> str:
    dep = Deployment(name=DEP, model="fake-model", provider="openai", api_base="http://127.0.0.1:9/v1")
    now = time.time()
    rec = CallRecord(
        id=new_record_id(now),
        deployment=dep,
        model=DEP,
        call_type=call_type,
        start=now,
        request_body=req,
        response_body=res,
        session_id=session,
    )
    rec.end = now + 0.2
    rec.latency_ms = 200.0
    rec.usage = Usage(40, 12, 52, reported=True)
    row = finish(rec, Pricer())
    db = _database(server)
    try:
        insert_rows(db, [row])  # type: ignore[list-item]
    finally:
        db.close()
    return rec.id


@pytest.fixture(scope="module")
def seeded(server: ServerProcess, client: openai.OpenAI) -> dict[str, str]:
    session = f"sess-{uuid.uuid4().hex[:8]}"
    client.chat.completions.create(
        model=DEP, messages=[{"role": "user", "content": "hi"}], extra_headers={"x-modelmeter-session": session}
    )
    client.chat.completions.create(model=DEP, messages=[{"role": "user", "content": "no session"}])
    chat_id = record_where(server, DEP, lambda r: r["session_id"] == session)["id"]
    return {
        "session": session,
        "chat": chat_id,
        "messages": _seed(server, "messages", MESSAGES_REQ, MESSAGES_RES, session),
        "responses": _seed(server, "responses", RESPONSES_REQ, RESPONSES_RES, "other-session"),
    }


@pytest.fixture(params=[(1440, 900), (390, 844)], ids=["desktop", "phone"])
def sized(page: Page, request: pytest.FixtureRequest) -> Page:
    width, height = request.param
    page.set_viewport_size({"width": width, "height": height})
    return page


def _open(page: Page, rid: str, query: str = "") -> Any:
    open_usage(page, DEP, query)
    page.locator(f'tr.row[data-id="{rid}"]').click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    return drawer


def test_filters_by_call_type_and_session(sized: Page, server: ServerProcess, seeded: dict[str, str]) -> None:
    page = sized
    open_usage(page, DEP)
    assert {seeded["chat"], seeded["messages"], seeded["responses"]} <= set(log_ids(page))
    select = page.get_by_label("Filter by call type")
    expect(select).to_be_visible()
    select.select_option("messages")
    expect(page).to_have_url(re.compile(r"[?&]type=messages"))
    expect(page.locator("table.log tbody tr.row")).to_have_count(1)
    assert log_ids(page) == [seeded["messages"]]
    select.select_option("")
    box = page.get_by_label("Filter by session")
    box.fill(seeded["session"])
    box.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]session={seeded['session']}"))
    expect(page.locator("table.log tbody tr.row")).to_have_count(2)
    assert set(log_ids(page)) == {seeded["chat"], seeded["messages"]}
    # the filter survives a reload (it is in the URL), and the export follows it
    page.reload()
    expect(page.locator("table.log tbody tr.row")).to_have_count(2)
    expect(page.get_by_label("Filter by session")).to_have_value(seeded["session"])
    href = page.locator('[data-export="jsonl"]').get_attribute("href") or ""
    assert f"session={seeded['session']}" in href


def test_drawer_links_to_the_sessions_other_calls(sized: Page, seeded: dict[str, str]) -> None:
    page = sized
    drawer = _open(page, seeded["chat"])
    details = drawer.locator('[data-section="details"]')
    expect(details.locator('dt:text-is("Session") + dd')).to_contain_text(seeded["session"])
    link = drawer.locator('[data-role="session-link"]')
    expect(link).to_have_text("this session's other calls")
    link.click()
    expect(page).to_have_url(re.compile(rf"/models/{DEP}\?session={seeded['session']}$"))
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator("table.log tbody tr.row")).to_have_count(2)
    assert set(log_ids(page)) == {seeded["chat"], seeded["messages"]}


def test_pretty_view_of_a_messages_call_with_tool_use(sized: Page, seeded: dict[str, str]) -> None:
    page = sized
    drawer = _open(page, seeded["messages"])
    drawer.locator('[data-view="pretty"]').click()
    conv = drawer.locator(".conversation")
    roles = conv.locator(".msg > .msg-role").all_text_contents()
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    expect(conv.locator(".msg").nth(0)).to_contain_text("You are a careful agent.")
    user = conv.locator(".msg").nth(1)
    expect(user).to_contain_text("What is the weather in Paris? " + EVIL)  # shown as text
    assert drawer.locator("img").count() == 0  # never markup
    turn = conv.locator(".msg").nth(2)
    expect(turn.locator('[data-block="thinking"]')).to_contain_text("I should call the weather tool.")
    expect(turn.locator('[data-block="tool_use"]')).to_contain_text("get_weather(…)")
    expect(turn.locator('[data-block="tool_use"] pre')).to_contain_text('"city": "Paris"')
    result = conv.locator(".msg").nth(3)
    expect(result.locator('[data-block="tool_result"]')).to_contain_text("toolu_01")
    expect(result.locator('[data-block="tool_result"]')).to_contain_text("18 °C and sunny")
    expect(result.locator('[data-block="image"]')).to_have_text("[image: image/png]")
    answer = conv.locator(".msg").nth(4)
    expect(answer).to_contain_text("It is 18 °C and sunny in Paris.")
    expect(answer).to_contain_text("stop reason: end_turn")
    drawer.locator('[data-view="json"]').click()
    expect(drawer.locator('[data-json="request"]')).to_contain_text('"tool_use"')


def test_pretty_view_of_a_responses_call(sized: Page, seeded: dict[str, str]) -> None:
    page = sized
    drawer = _open(page, seeded["responses"])
    drawer.locator('[data-view="pretty"]').click()
    conv = drawer.locator(".conversation")
    roles = conv.locator(".msg > .msg-role").all_text_contents()
    assert roles == ["system", "user", "assistant", "tool", "assistant", "assistant"]
    msgs = conv.locator(".msg")
    expect(msgs.nth(0)).to_contain_text("Be brief.")
    expect(msgs.nth(1)).to_contain_text("Add 2 and 3.")
    expect(msgs.nth(2).locator('[data-block="tool_use"]')).to_contain_text("add(…)")
    expect(msgs.nth(2).locator('[data-block="tool_use"] pre')).to_contain_text('"a": 2')
    expect(msgs.nth(3).locator('[data-block="tool_result"]')).to_contain_text("call_1")
    expect(msgs.nth(3).locator('[data-block="tool_result"]')).to_contain_text("5")
    expect(msgs.nth(4).locator('[data-block="thinking"]')).to_contain_text("The tool said 5.")
    expect(msgs.nth(5)).to_contain_text("2 + 3 = 5")
    assert drawer.locator('[data-role="as-sent"]').count() == 0  # the request was drawn, not dumped
