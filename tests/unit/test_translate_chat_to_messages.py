"""Issue 12 item 3: a chat client in front of an Anthropic Messages upstream (request, answer, stream).

The translated answer is parsed by ``openai.types.chat.ChatCompletion`` and the translated stream is
read by the openai SDK's ``chat.completions.stream`` accumulator through a fake transport."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from anthropic.types import MessageCreateParams
from openai.types.chat import ChatCompletion
from pydantic import TypeAdapter

from modelmeter.apis.translate import TranslationError
from modelmeter.apis.translate import chat_to_messages as c2m
from modelmeter.apis.translate.chat_stream import MessagesToChatStream

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
REQUEST: dict[str, Any] = {
    "model": "gpt-4o",
    "max_completion_tokens": 200,
    "temperature": 0.3,
    "top_p": 0.8,
    "stop": "END",
    "user": "u1",
    "tools": [TOOL],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use Celsius."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "21C"}]},
        {"role": "user", "content": "Thanks"},
    ],
}


def test_request_maps_system_tools_and_turns() -> None:
    out = c2m.request({**REQUEST, "stream": True}, model="claude-sonnet-4-5")
    assert out["model"] == "claude-sonnet-4-5" and out["system"] == "Be terse.\n\nUse Celsius."
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [  # tool results and the next words: one user turn (roles alternate)
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "21C"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    assert out["max_tokens"] == 200 and out["stop_sequences"] == ["END"]
    assert out["temperature"] == 0.3 and out["top_p"] == 0.8 and out["stream"] is True
    assert out["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": TOOL["function"]["parameters"]}
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["metadata"] == {"user_id": "u1"}
    TypeAdapter(MessageCreateParams).validate_python(out)  # the anthropic SDK's own request type


def test_defaults_and_url_image() -> None:
    out = c2m.request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}
            ],
        }
    )
    assert out["max_tokens"] == c2m.DEFAULT_MAX_TOKENS
    assert out["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "n": 2, "messages": []}, "n"),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ],
            },
            "messages.0.tool_calls.0.function.arguments",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages.0.content.0"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}
                ],
            },
            "messages.0.content.0",
        ),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ],
)
def test_untranslatable_input_is_a_clear_error(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        c2m.request(body)
    assert info.value.param == param


MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 5},
}


def test_answer_parses_as_a_chat_completion() -> None:
    completion = ChatCompletion.model_validate(c2m.answer(MESSAGE))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (
        call.type == "function" and call.id == "toolu_9" and orjson.loads(call.function.arguments) == {"city": "Oslo"}
    )
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (55, 12, 67)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 20


@pytest.mark.parametrize(
    ("stop", "finish"), [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")]
)
def test_finish_reasons(stop: str, finish: str) -> None:
    completion = ChatCompletion.model_validate(c2m.answer({**MESSAGE, "stop_reason": stop}))
    assert completion.choices[0].finish_reason == finish


EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_7",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 25,
                "output_tokens": 1,
                "cache_read_input_tokens": 10,
                "cache_creation_input_tokens": 0,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "look."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Rome"}'}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 9},
    },
    {"type": "message_stop"},
]


def translated_stream(include_usage: bool) -> bytes:
    stream = MessagesToChatStream(include_usage=include_usage)
    return b"".join(stream.feed_data(orjson.dumps(e)) for e in EVENTS)


def test_stream_is_read_by_the_openai_sdk() -> None:
    wire = translated_stream(include_usage=True)
    assert wire.endswith(b"data: [DONE]\n\n")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    client = openai.OpenAI(
        api_key="k", base_url="http://test/v1", http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.message.content == "Let me look." and choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_1" and call.function.name == "get_weather" and call.function.arguments == '{"city":"Rome"}'
    assert final.usage is not None and (final.usage.prompt_tokens, final.usage.completion_tokens) == (35, 9)
    assert final.usage.prompt_tokens_details is not None and final.usage.prompt_tokens_details.cached_tokens == 10


def test_stream_without_usage_and_with_an_error() -> None:
    wire = translated_stream(include_usage=False)
    frames = [orjson.loads(line[6:]) for line in wire.decode().splitlines() if line.startswith("data: {")]
    assert all("usage" not in f for f in frames) and frames[-1]["choices"][0]["finish_reason"] == "tool_calls"
    stream = MessagesToChatStream()
    out = stream.feed(EVENTS[0]) + stream.feed(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    last = orjson.loads(out.decode().strip().splitlines()[-1][6:])
    assert last == {
        "error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": "overloaded_error"}
    }
    assert stream.feed(EVENTS[-1]) == b""  # nothing after the failure


def test_thinking_becomes_reasoning_content() -> None:
    completion = ChatCompletion.model_validate(c2m.answer(MESSAGE))
    assert completion.choices[0].message.model_extra == {"reasoning_content": "hmm"}
    stream = MessagesToChatStream()
    out = stream.feed(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}
    )
    assert orjson.loads(out[6:])["choices"][0]["delta"] == {"reasoning_content": "hm"}


def test_empty_text_parts_are_left_out() -> None:
    out = c2m.request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "hi"}]}],
        }
    )
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
