"""A chat client in front of an OpenAI Responses upstream (request, answer, stream).

The translated request is checked against the openai SDK's ``ResponseCreateParams``, the answer
parsed by ``openai.types.chat.ChatCompletion`` and the stream read by the openai SDK's
``chat.completions.stream`` accumulator through a fake transport."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses.response_create_params import ResponseCreateParamsStreaming
from pydantic import TypeAdapter

from modelmeter.apis.translate import TranslationError
from modelmeter.apis.translate import chat_to_responses as c2r
from modelmeter.apis.translate.responses_chat_stream import ResponsesToChatStream

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}}
PARIS, ROME = '{"city":"Paris"}', '{"city":"Rome"}'
SCHEMA = {"name": "w", "schema": {"type": "object"}, "strict": True}
REQUEST: dict[str, Any] = {
    "model": "gpt-5",
    "max_completion_tokens": 200,
    "max_tokens": 10,  # the older name: the newer one wins
    "temperature": 0.3,
    "top_p": 0.8,
    "tools": [TOOL],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": SCHEMA},
    "reasoning_effort": "low",
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use Celsius."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
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
        {"role": "assistant", "content": "Paris 18C, Rome 21C."},
        {"role": "user", "content": "Thanks"},
    ],
}


def test_request_maps_messages_tools_and_settings() -> None:
    sent = c2r.request(REQUEST, model="gpt-5-pro")
    TypeAdapter(ResponseCreateParamsStreaming).validate_python(sent)  # a body the SDK itself could send
    assert sent["model"] == "gpt-5-pro" and sent["stream"] is True and "stream_options" not in sent
    assert sent["input"] == [
        {"type": "message", "role": "system", "content": "Be terse."},
        {"type": "message", "role": "developer", "content": "Use Celsius."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather in Paris and Rome?"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
            ],
        },
        {"type": "message", "role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_b", "output": "21C"},
        {"type": "message", "role": "assistant", "content": "Paris 18C, Rome 21C."},
        {"type": "message", "role": "user", "content": "Thanks"},
    ]
    assert sent["max_output_tokens"] == 200 and (sent["temperature"], sent["top_p"]) == (0.3, 0.8)
    assert sent["tools"] == [
        {"type": "function", "name": "get_weather", "strict": False, "description": "Weather", "parameters": WEATHER}
    ]
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"} and sent["parallel_tool_calls"] is False
    assert sent["text"] == {"format": {"type": "json_schema", **SCHEMA}}
    assert sent["reasoning"] == {"effort": "low"}
    assert sent["store"] is False  # nothing kept upstream unless asked


def test_store_only_when_asked_and_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "store": True}
    sent = c2r.request(body)
    assert sent == {
        "model": "m",
        "input": [{"type": "message", "role": "user", "content": "hi"}],
        "max_output_tokens": 9,
        "store": True,
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stop": ["END"]}, "stop"),
        ({"n": 2}, "n"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools.0.type"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages.0.content.0"),
        ({"response_format": {"type": "grammar"}}, "response_format.type"),
    ],
)
def test_what_responses_cannot_honour_is_a_clear_error(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        c2r.request({"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra})
    assert info.value.param == param


def test_harmless_defaults_are_not_refused() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1, "stop": None, "presence_penalty": 0}
    assert c2r.request(body)["input"][0]["content"] == "hi"


USAGE = {
    "input_tokens": 321,
    "input_tokens_details": {"cached_tokens": 300},
    "output_tokens": 12,
    "output_tokens_details": {"reasoning_tokens": 5},
    "total_tokens": 333,
}
RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1_764_921_600,
    "model": "gpt-5",
    "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
            "status": "completed",
        },
    ],
    "usage": USAGE,
}


def test_answer_parses_as_a_chat_completion() -> None:
    completion = ChatCompletion.model_validate(c2r.answer(RESPONSE))
    choice = completion.choices[0]
    assert choice.message.content == "Checking." and choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "call_9" and call.function.name == "get_weather" and call.function.arguments == '{"city":"Oslo"}'
    assert choice.message.model_extra == {"reasoning_content": "thinking"}
    u = completion.usage
    assert u is not None and (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (321, 12, 333)
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 300
    assert u.completion_tokens_details is not None and u.completion_tokens_details.reasoning_tokens == 5
    assert completion.id == "chatcmpl-resp_1" and completion.created == RESPONSE["created_at"]


@pytest.mark.parametrize(
    ("status", "details", "finish"),
    [
        ("incomplete", {"reason": "max_output_tokens"}, "length"),
        ("incomplete", {"reason": "content_filter"}, "content_filter"),
        ("completed", None, "stop"),
    ],
)
def test_finish_reasons(status: str, details: Any, finish: str) -> None:
    text_only = {**RESPONSE, "output": RESPONSE["output"][1:2], "status": status, "incomplete_details": details}
    assert c2r.answer(text_only)["choices"][0]["finish_reason"] == finish


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


HEAD = {"id": "resp_7", "object": "response", "created_at": 1, "model": "gpt-5", "status": "in_progress", "output": []}
CALL = {"type": "function_call", "id": "fc_7", "call_id": "call_7", "name": "get_weather", "arguments": ""}
EVENTS: list[dict[str, Any]] = [
    ev("response.created", response=HEAD),
    ev("response.in_progress", response=HEAD),
    ev("response.output_item.added", output_index=0, item={"type": "reasoning", "id": "rs_7", "summary": []}),
    ev("response.reasoning_summary_text.delta", item_id="rs_7", output_index=0, summary_index=0, delta="hm"),
    ev("response.output_item.added", output_index=1, item={"type": "message", "id": "m7", "content": []}),
    ev("response.output_text.delta", item_id="m7", output_index=1, content_index=0, delta="Let me "),
    ev("response.output_text.delta", item_id="m7", output_index=1, content_index=0, delta="look."),
    ev("response.output_text.done", item_id="m7", output_index=1, content_index=0, text="Let me look."),
    ev("response.output_item.added", output_index=2, item=CALL),
    ev("response.function_call_arguments.delta", item_id="fc_7", output_index=2, delta='{"city":'),
    ev("response.function_call_arguments.delta", item_id="fc_7", output_index=2, delta='"Rome"}'),
    ev("response.function_call_arguments.done", item_id="fc_7", output_index=2, arguments='{"city":"Rome"}'),
    ev("response.output_item.done", output_index=2, item={**CALL, "arguments": '{"city":"Rome"}'}),
    ev("response.completed", response={**HEAD, "status": "completed", "usage": USAGE}),
]


def translated_stream(include_usage: bool, events: list[dict[str, Any]] = EVENTS) -> bytes:
    stream = ResponsesToChatStream(include_usage=include_usage)
    return b"".join(stream.feed_data(orjson.dumps(e)) for e in events)


def sdk_client(wire: bytes) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    return openai.OpenAI(
        api_key="k", base_url="http://test/v1", http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )


def test_stream_is_read_by_the_openai_sdk() -> None:
    wire = translated_stream(include_usage=True)
    assert wire.endswith(b"data: [DONE]\n\n")
    client = sdk_client(wire)
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.message.content == "Let me look." and choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id == "call_7" and call.function.name == "get_weather" and call.function.arguments == '{"city":"Rome"}'
    u = final.usage
    assert u is not None and (u.prompt_tokens, u.completion_tokens) == (321, 12)
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 300
    assert u.completion_tokens_details is not None and u.completion_tokens_details.reasoning_tokens == 5
    assert final.id == "chatcmpl-resp_7"


def frames(wire: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in wire.decode().splitlines() if line.startswith("data: {")]


def test_stream_without_usage_and_reasoning_deltas() -> None:
    got = frames(translated_stream(include_usage=False))
    assert all("usage" not in f for f in got)
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert got[1]["choices"][0]["delta"] == {"reasoning_content": "hm"}


def test_arguments_sent_whole_still_reach_the_client() -> None:
    """A server that gives a call's arguments only in ``.done`` (no deltas): they are sent once."""
    events = [e for e in EVENTS if e["type"] != "response.function_call_arguments.delta"]
    with sdk_client(translated_stream(True, events)).chat.completions.stream(model="m", messages=[]) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.arguments == '{"city":"Rome"}'


def test_incomplete_failed_and_error_events() -> None:
    cut = {**HEAD, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "usage": USAGE}
    got = frames(translated_stream(False, [*EVENTS[:7], ev("response.incomplete", response=cut)]))
    assert got[-1]["choices"][0]["finish_reason"] == "length"
    failed = {**HEAD, "status": "failed", "error": {"code": "server_error", "message": "The model failed."}}
    stream = ResponsesToChatStream(include_usage=True)
    out = b"".join(stream.feed(e) for e in [*EVENTS[:6], ev("response.failed", response=failed)])
    assert stream.done and frames(out)[-1] == {
        "error": {"message": "The model failed.", "type": "server_error", "param": None, "code": "server_error"}
    }
    assert stream.feed(EVENTS[-1]) == b"" and stream.finish() == b""  # nothing after the failure
    with pytest.raises(openai.APIError, match="The model failed"):
        list(sdk_client(out).chat.completions.create(model="m", messages=[], stream=True))
    other = ResponsesToChatStream()
    out = other.feed(ev("error", code="rate_limit_exceeded", message="Slow down"))
    assert frames(out)[-1]["error"]["code"] == "rate_limit_exceeded"
