"""Issue 12 item 3: an OpenAI Responses client in front of a chat upstream (request, answer, stream).

The translated answer is parsed by ``openai.types.responses.Response`` and the translated stream is
read by the openai SDK's ``responses.stream`` accumulator through a fake transport."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai.types.responses import Response

from modelmeter.apis.translate import TranslationError
from modelmeter.apis.translate import responses_to_chat as r2c
from modelmeter.apis.translate.responses_stream import ChatToResponsesStream

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
    {"type": "web_search"},
]
REQUEST: dict[str, Any] = {
    "model": "gpt-5",
    "instructions": "Be terse.",
    "max_output_tokens": 300,
    "temperature": 0.1,
    "tools": TOOLS,
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
    "reasoning": {"effort": "low"},
    "input": [
        {"role": "developer", "content": "Use Celsius."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather in Paris and Rome?"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "21C"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Paris 18C, Rome 21C."}]},
        {"role": "user", "content": "Thanks"},
    ],
}


def test_request_maps_items_and_settings() -> None:
    chat = r2c.request({**REQUEST, "stream": True}, model="smollm2")
    assert chat["model"] == "smollm2"
    assert chat["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "system", "content": "Use Celsius."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
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
        {"role": "tool", "tool_call_id": "call_b", "content": "21C"},
        {"role": "assistant", "content": "Paris 18C, Rome 21C."},
        {"role": "user", "content": "Thanks"},
    ]
    assert chat["max_tokens"] == 300 and chat["temperature"] == 0.1
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": TOOLS[0]["parameters"],
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


def test_string_input() -> None:
    assert r2c.request({"model": "m", "input": "hi"}) == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input.0.type"),
        ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input.0.role"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input.0.content.0",
        ),
    ],
)
def test_untranslatable_input_is_a_clear_error(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        r2c.request(body)
    assert info.value.param == param


CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_764_921_600,
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
        "completion_tokens_details": {"reasoning_tokens": 4},
    },
}


def test_answer_parses_as_a_response() -> None:
    response = Response.model_validate(r2c.answer(CHAT_ANSWER, REQUEST))
    assert response.status == "completed" and response.output_text == "Checking."
    call = response.output[1]
    assert call.type == "function_call" and call.call_id == "call_9" and call.arguments == '{"city":"Oslo"}'
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (50, 12, 62)
    assert response.usage.input_tokens_details.cached_tokens == 20
    assert response.usage.output_tokens_details.reasoning_tokens == 4
    assert response.instructions == "Be terse."


def test_length_is_an_incomplete_response() -> None:
    answer = {
        **CHAT_ANSWER,
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "x"}}],
    }
    response = Response.model_validate(r2c.answer(answer, {"model": "m", "input": "hi"}))
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


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


def translated_stream(body: dict[str, Any]) -> bytes:
    stream = ChatToResponsesStream(body)
    out = b"".join(stream.feed_data(orjson.dumps(c)) for c in CHUNKS)
    return out + stream.feed_data(b"[DONE]")


def test_stream_events_in_order() -> None:
    lines = translated_stream(REQUEST).decode().splitlines()
    names = [line[7:] for line in lines if line.startswith("event: ")]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    numbers = [orjson.loads(line[6:])["sequence_number"] for line in lines if line.startswith("data: ")]
    assert numbers == list(range(len(names)))


def test_stream_is_read_by_the_openai_sdk() -> None:
    body = {"model": "m", "input": "weather in Rome?", "tools": TOOLS[:1]}
    wire = translated_stream(body)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    client = openai.OpenAI(
        api_key="k", base_url="http://test/v1", http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )
    deltas: list[str] = []
    with client.responses.stream(model="m", input="weather in Rome?") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "Let me look." == final.output_text
    call = final.output[1]
    assert call.type == "function_call" and call.name == "get_weather" and call.arguments == '{"city":"Rome"}'
    assert call.call_id == "call_1" and final.status == "completed"
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (40, 9)
    assert final.usage.input_tokens_details.cached_tokens == 8


def test_stream_length_and_failure() -> None:
    stream = ChatToResponsesStream({"model": "m", "input": "x"})
    out = stream.feed(chunk({"content": "ab"}, "length")) + stream.finish()
    assert b"event: response.incomplete\n" in out and stream.finish() == b""
    failing = ChatToResponsesStream({"model": "m", "input": "x"})
    out = failing.feed(chunk({"content": "a"})) + failing.error("upstream died")
    last = orjson.loads(out.decode().strip().splitlines()[-1][6:])
    assert last["type"] == "response.failed" and last["response"]["error"]["message"] == "upstream died"
    Response.model_validate(last["response"])


def test_upstream_error_frame_becomes_response_failed() -> None:
    stream = ChatToResponsesStream({"model": "m", "input": "x"})
    out = stream.feed({"error": {"message": "boom", "type": "server_error"}})
    kinds = [line[7:] for line in out.decode().splitlines() if line.startswith("event: ")]
    assert kinds == ["response.created", "response.in_progress", "response.failed"]
    assert stream.finish() == b""


def test_failed_response_keeps_the_partial_text() -> None:
    stream = ChatToResponsesStream({"model": "m", "input": "x"})
    out = stream.feed(chunk({"content": "par"})) + stream.feed(chunk({"content": "tial"})) + stream.error("cut")
    failed = Response.model_validate(orjson.loads(out.decode().strip().splitlines()[-1][6:])["response"])
    assert failed.status == "failed" and failed.output_text == "partial"


def test_reasoning_becomes_a_reasoning_item_streamed_and_not() -> None:
    reply = {"role": "assistant", "content": "42", "reasoning_content": "6 times 7"}
    answer = {**CHAT_ANSWER, "choices": [{"index": 0, "finish_reason": "stop", "message": reply}]}
    response = Response.model_validate(r2c.answer(answer, {"model": "m", "input": "x"}))
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert reasoning.content[0].text == "6 times 7" and response.output_text == "42"

    stream = ChatToResponsesStream({"model": "m", "input": "x"})
    out = stream.feed(chunk({"reasoning_content": "6 times "})) + stream.feed(chunk({"reasoning_content": "7"}))
    out += stream.feed(chunk({"content": "42"}, "stop")) + stream.finish()
    events = [orjson.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: ")]
    assert [e["delta"] for e in events if e["type"] == "response.reasoning_text.delta"] == ["6 times ", "7"]
    assert [e["text"] for e in events if e["type"] == "response.reasoning_text.done"] == ["6 times 7"]
    final = Response.model_validate(events[-1]["response"])
    assert [item.type for item in final.output] == ["reasoning", "message"] and final.output_text == "42"


def test_calls_all_numbered_zero_are_told_apart_by_id() -> None:
    stream = ChatToResponsesStream({"model": "m", "input": "x"})
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
    final = Response.model_validate(orjson.loads(out.decode().strip().splitlines()[-1][6:])["response"])
    assert [(o.call_id, o.arguments) for o in final.output if o.type == "function_call"] == [
        ("call_a", '{"c":"Oslo"}'),
        ("call_b", '{"c":"Rome"}'),
    ]
