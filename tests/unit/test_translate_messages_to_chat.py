"""Issue 12 item 3: an Anthropic Messages client in front of a chat upstream (request, answer, stream).

The translated answers are parsed by ``anthropic.types.Message`` and the translated stream is read by
the anthropic SDK's own ``messages.stream`` accumulator through a fake transport."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import Message

from modelmeter.apis.translate import TranslationError
from modelmeter.apis.translate import messages_to_chat as m2c
from modelmeter.apis.translate.messages_stream import ChatToMessagesStream

IMAGE = "iVBORw0KGgo="
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "temperature": 0.2,
    "top_p": 0.9,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "user_abc"},
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this and the weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ],
}


def test_request_maps_every_field() -> None:
    chat = m2c.request({**REQUEST, "stream": True}, model="smollm2")
    assert chat["model"] == "smollm2"
    assert chat["messages"] == [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this and the weather in Paris?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": "Thanks"},
    ]
    assert chat["max_tokens"] == 256 and chat["stop"] == ["END"]
    assert chat["temperature"] == 0.2 and chat["top_p"] == 0.9
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert chat["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert chat["user"] == "user_abc"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    assert m2c.request({**REQUEST, "tool_choice": choice})["tool_choice"] == expected


def test_plain_string_turn_and_not_streamed() -> None:
    chat = m2c.request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def test_bad_role_is_a_translation_error() -> None:
    with pytest.raises(TranslationError) as info:
        m2c.request({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]})
    assert info.value.param == "messages.0.role"


def test_a_system_turn_among_the_messages_joins_the_leading_system_message() -> None:
    """Claude Code puts its environment in a ``system`` turn after the first user turn; chat
    templates want system text first."""
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
    ]
    chat = m2c.request({"model": "m", "max_tokens": 5, "system": "Be terse.", "messages": turns})
    assert chat["messages"] == [
        {"role": "system", "content": "Be terse.\n\n# Environment"},
        {"role": "user", "content": "hi"},
    ]


CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "smollm2",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 50,
        "completion_tokens": 12,
        "total_tokens": 62,
        "prompt_tokens_details": {"cached_tokens": 20},
    },
}


def test_answer_parses_as_an_anthropic_message() -> None:
    msg = Message.model_validate(m2c.answer(CHAT_ANSWER))
    assert msg.stop_reason == "tool_use"
    assert msg.content[0].type == "text" and msg.content[0].text == "Checking."
    tool = msg.content[1]
    assert tool.type == "tool_use" and tool.id == "call_9" and tool.input == {"city": "Oslo"}
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (30, 20, 12)


@pytest.mark.parametrize(
    ("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use")]
)
def test_stop_reasons(finish: str, stop: str) -> None:
    answer = {
        **CHAT_ANSWER,
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "x"}}],
    }
    assert Message.model_validate(m2c.answer(answer)).stop_reason == stop


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "smollm2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


CHUNKS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me "}),
    chunk({"content": "look."}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Rome"}'}}]}),
    chunk({}, "tool_calls"),
    {
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "smollm2",
        "choices": [],
        "usage": {
            "prompt_tokens": 40,
            "completion_tokens": 9,
            "total_tokens": 49,
            "prompt_tokens_details": {"cached_tokens": 8},
        },
    },
]


def translated_stream() -> bytes:
    stream = ChatToMessagesStream()
    out = b"".join(stream.feed_data(orjson.dumps(c)) for c in CHUNKS)
    return out + stream.feed_data(b"[DONE]")


def test_stream_events_in_order() -> None:
    names = [line[7:] for line in translated_stream().decode().splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_stream_is_read_by_the_anthropic_sdk() -> None:
    body = translated_stream()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = anthropic.Anthropic(
        api_key="k", base_url="http://test", http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )
    with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me look."
    assert final.stop_reason == "tool_use"
    tool = final.content[1]
    assert (
        tool.type == "tool_use"
        and tool.name == "get_weather"
        and tool.input == {"city": "Rome"}
        and tool.id == "call_1"
    )
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (32, 8, 9)


def test_stream_with_reasoning_and_error() -> None:
    stream = ChatToMessagesStream(model="smollm2")
    out = stream.feed(chunk({"reasoning_content": "hmm"})) + stream.feed(chunk({"content": "ok"}, "length"))
    out += stream.finish()
    assert b'"thinking_delta"' in out and b'"stop_reason":"max_tokens"' in out
    assert stream.finish() == b""  # idempotent: a [DONE] after EOF handling adds nothing
    failing = ChatToMessagesStream()
    assert failing.error("upstream died").startswith(b'event: error\ndata: {"type":"error"')


def test_upstream_error_frame_becomes_an_anthropic_error_event() -> None:
    stream = ChatToMessagesStream()
    out = stream.feed(chunk({"content": "a"})) + stream.feed({"error": {"message": "boom", "type": "server_error"}})
    last = out.decode().strip().split("\n\n")[-1]
    assert last == 'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}'
    assert stream.finish() == b""  # no message_stop after a failure


def test_reasoning_becomes_a_thinking_block() -> None:
    reply = {"role": "assistant", "content": "42", "reasoning_content": "6 times 7"}
    msg = Message.model_validate(
        m2c.answer({**CHAT_ANSWER, "choices": [{"index": 0, "finish_reason": "stop", "message": reply}]})
    )
    assert msg.content[0].type == "thinking" and msg.content[0].thinking == "6 times 7"
    assert msg.content[1].type == "text" and msg.content[1].text == "42"


def test_calls_all_numbered_zero_are_told_apart_by_id() -> None:
    stream = ChatToMessagesStream()
    out = b""
    for call_id, city in (("call_a", "Oslo"), ("call_b", "Rome")):
        fragment = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": "w", "arguments": f'{{"c":"{city}"}}'},
        }
        out += stream.feed(chunk({"tool_calls": [fragment]}))
    out += stream.feed(chunk({}, "tool_calls")) + stream.finish()
    starts = [
        orjson.loads(line[6:])
        for line in out.decode().splitlines()
        if line.startswith('data: {"type":"content_block_start"')
    ]
    assert [(s["index"], s["content_block"]["id"]) for s in starts] == [(0, "call_a"), (1, "call_b")]
