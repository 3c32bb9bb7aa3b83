"""Issue 12 item 3: the two directions between chat and Messages agree with each other.

A Messages request sent through Messages -> chat -> Messages comes back as it was, and a chat answer
sent through chat -> Messages -> chat keeps its text, tool calls, finish reason and token counts (the
cache-read convention, inside ``prompt_tokens`` on chat and apart from ``input_tokens`` on Messages,
is undone exactly)."""

from __future__ import annotations

from typing import Any

from modelmeter.apis.translate import chat_to_messages as c2m
from modelmeter.apis.translate import messages_to_chat as m2c

MESSAGES_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "system": "Be terse.",
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}],
    "tool_choice": {"type": "tool", "name": "f"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "go"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": [1, 2]}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "done"},
                {"type": "text", "text": "next"},
            ],
        },
    ],
}


def test_messages_request_round_trips_through_chat() -> None:
    assert c2m.request(m2c.request(MESSAGES_REQUEST)) == MESSAGES_REQUEST


def test_chat_answer_round_trips_through_messages() -> None:
    chat = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "refusal": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 7,
            "total_tokens": 57,
            "prompt_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 0},
        },
    }
    back = c2m.answer(m2c.answer(chat))
    assert back["choices"] == chat["choices"] and back["usage"] == chat["usage"]


def test_the_client_sees_the_model_name_it_asked_for() -> None:
    from modelmeter.apis.translate import responses_to_chat as r2c
    from modelmeter.apis.translate.chat_stream import MessagesToChatStream
    from modelmeter.apis.translate.messages_stream import ChatToMessagesStream
    from modelmeter.apis.translate.responses_stream import ChatToResponsesStream

    chat = {"id": "x", "model": "upstream-name", "choices": [{"index": 0, "message": {"content": "a"}}]}
    assert m2c.answer(chat, model="alias")["model"] == "alias" and m2c.answer(chat)["model"] == "upstream-name"
    assert r2c.answer(chat, {"input": "x"}, model="alias")["model"] == "alias"
    assert c2m.answer({"model": "upstream-name", "content": []}, model="alias")["model"] == "alias"
    chunk = {"id": "x", "model": "upstream-name", "choices": []}
    assert b'"model":"alias"' in ChatToMessagesStream(model="alias").feed(chunk)
    assert b'"model":"alias"' in ChatToResponsesStream({"input": "x"}, model="alias").feed(chunk)
    start = {"type": "message_start", "message": {"id": "m", "model": "upstream-name"}}
    assert b'"model":"alias"' in MessagesToChatStream(model="alias").feed(start)
    assert b'"model":"upstream-name"' in MessagesToChatStream().feed(start)
