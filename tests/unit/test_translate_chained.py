"""Responses <-> Messages through chat: composed requests and answers, chained streams.

Each composed answer is parsed by the client SDK's own type, each chained stream read by the client
SDK's stream accumulator through a fake transport; the events fed in are the upstream API's own."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import orjson
from anthropic.types import Message, MessageCreateParams
from openai.types.responses import Response
from pydantic import TypeAdapter
from tests.unit.test_translate_chat_to_messages import EVENTS as MESSAGES_EVENTS
from tests.unit.test_translate_chat_to_responses import EVENTS as RESPONSES_EVENTS
from tests.unit.test_translate_chat_to_responses import RESPONSE, USAGE, ev

from modelmeter.apis.translate import chained
from modelmeter.gateway.translated import PAIRS

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
RESPONSES_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "instructions": "Be terse.",
    "max_output_tokens": 300,
    "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}],
    "input": [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
    ],
}
MESSAGES_BODY: dict[str, Any] = {
    "model": "gpt-5",
    "max_tokens": 300,
    "system": "Be terse.",
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "18C"}]},
    ],
}


def test_responses_request_becomes_a_messages_request() -> None:
    sent = chained.responses_to_messages_request({**RESPONSES_BODY, "stream": True}, "claude-up")
    TypeAdapter(MessageCreateParams).validate_python(sent)
    assert sent["model"] == "claude-up" and sent["system"] == "Be terse." and sent["max_tokens"] == 300
    assert sent["stream"] is True
    assert sent["tools"] == [{"name": "get_weather", "description": "", "input_schema": WEATHER}]
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_a", "content": "18C"}]


def test_messages_request_becomes_a_responses_request() -> None:
    sent = chained.messages_to_responses_request({**MESSAGES_BODY, "stream": True}, "gpt-5-pro")
    assert sent["model"] == "gpt-5-pro" and sent["max_output_tokens"] == 300 and sent["stream"] is True
    assert sent["store"] is False and "stream_options" not in sent
    assert sent["input"] == [
        {"type": "message", "role": "system", "content": "Be terse."},
        {"type": "message", "role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "toolu_a", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_a", "output": "18C"},
    ]
    assert sent["tools"][0]["name"] == "get_weather" and sent["tools"][0]["parameters"] == WEATHER


MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 21,
        "output_tokens": 9,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 120,
    },
}


def test_messages_answer_becomes_a_response() -> None:
    r = Response.model_validate(chained.responses_to_messages_answer(MESSAGE, RESPONSES_BODY))
    assert r.output_text == "Checking." and r.status == "completed" and r.instructions == "Be terse."
    call = r.output[1]
    assert call.type == "function_call" and call.call_id == "toolu_9" and call.arguments == '{"city":"Oslo"}'
    assert r.usage is not None and r.usage.input_tokens == 21 + 300 + 120 and r.usage.output_tokens == 9
    assert r.usage.input_tokens_details.cached_tokens == 300


def test_response_becomes_a_messages_answer() -> None:
    m = Message.model_validate(chained.messages_to_responses_answer(RESPONSE, MESSAGES_BODY))
    assert m.stop_reason == "tool_use" and [b.type for b in m.content] == ["thinking", "text", "tool_use"]
    tool = m.content[2]
    assert tool.type == "tool_use" and tool.id == "call_9" and tool.input == {"city": "Oslo"}
    cached = USAGE["input_tokens_details"]["cached_tokens"]
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens) == (USAGE["input_tokens"] - cached, cached)
    assert m.usage.output_tokens == USAGE["output_tokens"]


def transport(wire: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def run(stream: chained.ChainedStream, events: list[dict[str, Any]]) -> bytes:
    return b"".join(stream.feed_data(orjson.dumps(e)) for e in events)


def test_messages_stream_read_by_the_responses_sdk() -> None:
    stream = chained.responses_to_messages_stream({"model": "m", "input": "hi"})
    wire = run(stream, MESSAGES_EVENTS)
    assert stream.done and stream.finish() == b""
    client = openai.OpenAI(api_key="k", base_url="http://test/v1", http_client=transport(wire))
    with client.responses.stream(model="m", input="hi") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == "Let me look." == final.output_text and final.status == "completed"
    call = final.output[1]
    assert call.type == "function_call" and call.call_id == "toolu_1" and call.arguments == '{"city":"Rome"}'
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (35, 9)
    assert final.usage.input_tokens_details.cached_tokens == 10


def test_responses_stream_read_by_the_anthropic_sdk() -> None:
    stream = chained.messages_to_responses_stream({"model": "m", "max_tokens": 9, "messages": []})
    wire = run(stream, RESPONSES_EVENTS)
    assert stream.done
    client = anthropic.Anthropic(api_key="k", base_url="http://test", http_client=transport(wire))
    with client.messages.stream(model="m", max_tokens=9, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Let me look." and final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    tool = final.content[2]
    assert tool.type == "tool_use" and tool.id == "call_7" and tool.input == {"city": "Rome"}
    cached = USAGE["input_tokens_details"]["cached_tokens"]
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (USAGE["input_tokens"] - cached, cached)
    assert final.usage.output_tokens == USAGE["output_tokens"]


def test_failures_pass_through_the_chain() -> None:
    failed = {"id": "r", "status": "failed", "error": {"code": "server_error", "message": "The model failed."}}
    stream = chained.messages_to_responses_stream({"model": "m", "max_tokens": 9, "messages": []})
    out = run(stream, [*RESPONSES_EVENTS[:6], ev("response.failed", response=failed)])
    assert stream.done and out.rstrip().endswith(b'"message":"The model failed."}}')
    assert b"event: error\n" in out and stream.feed_data(orjson.dumps(RESPONSES_EVENTS[-1])) == b""
    cut = chained.responses_to_messages_stream({"model": "m", "input": "hi"})
    out = run(cut, MESSAGES_EVENTS[:4]) + cut.error("the upstream ended the stream before its last chunk")
    last = orjson.loads(out.decode().strip().splitlines()[-1][6:])
    assert cut.done and last["type"] == "response.failed"
    assert last["response"]["error"]["message"] == "the upstream ended the stream before its last chunk"
    ended = chained.responses_to_messages_stream({"model": "m", "input": "hi"})
    out = run(ended, MESSAGES_EVENTS[:4]) + ended.finish()  # a stream cut without an error: closed as it stands
    assert ended.done and b"event: response.completed\n" in out


def test_every_door_has_a_way_to_every_upstream() -> None:
    apis = ("chat", "messages", "responses")
    assert {(door, up) for door in apis for up in apis if door != up} <= set(PAIRS)
