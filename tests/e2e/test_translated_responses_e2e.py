"""The last three pairs of every front door in front of every upstream, through a running gateway and
the official SDKs: chat -> a Responses upstream (an OpenAI model served on /v1/responses only), and
Responses <-> Messages through chat. Each test checks the answer the SDK parsed and that the
record's tokens and spend are exactly what the fake upstream reported (tests/fakes/doors.py), each
component at its own rate, the breakdown adding up."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.test_translated_e2e import PRICE, assert_priced, claude_client, claude_tokens, last_record, oai
from tests.e2e.test_translated_e2e import sent_upstream as sent
from tests.fakes import doors as fk
from tests.fakes import tool_calls
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, http_json, sqlite_url, write_config

RUN = uuid.uuid4().hex[:8]
MSG = [{"role": "user", "content": "Say hello."}]
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather.", "parameters": WEATHER}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def words(n: int) -> str:
    return " ".join(f"tok{i}" for i in range(n))


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("translated_responses")
    base = fake_upstream.base_url

    def dep(name: str, model: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "model": model, "api_base": base, "price": PRICE, "max_retries": 0, **extra}

    deployments = [
        dep("resp-up", f"resp-{RUN}-cached-reasoning", api="responses"),
        dep("resp-tool", f"resp-{RUN}-cached-reasoning-tool-call", api="responses"),
        dep("resp-broken", f"resp-{RUN}-stream-error", api="responses"),
        dep("resp-fail", f"resp-{RUN}-fail-400", api="responses"),
        dep("claude-up", f"claude-{RUN}-cached", provider="anthropic"),
        dep("claude-tool", f"claude-{RUN}-tool-call", provider="anthropic"),
        dep("claude-broken", f"claude-{RUN}-stream-error", provider="anthropic"),
    ]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    with ServerProcess(config, log_dir=tmp / "server") as srv:
        yield srv


def resp_tokens(n: int) -> dict[str, int]:
    """The components a ``cached-reasoning`` Responses fake reports for an ``n``-token answer."""
    return dict(input=fk.INPUT_TOKENS, cached_input=fk.CACHE_READ, output=n, reasoning=fk.REASONING)


def assert_resp_record(rec: dict[str, Any], n: int, call_type: str) -> None:
    u = fk.responses_usage(n, cached=True, reasoning=True)  # what the fake reported
    assert rec["call_type"] == call_type and rec["status"] == "success" and rec["http_status"] == 200
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (u["input_tokens"], u["output_tokens"])
    assert rec["cached_tokens"] == fk.CACHE_READ and rec["reasoning_tokens"] == fk.REASONING
    assert_priced(rec, **resp_tokens(n))


# -- chat client -> Responses upstream -----------------------------------------------------------


def test_chat_to_responses_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    raw = oai(server).chat.completions.with_raw_response.create(
        model="resp-up",
        messages=[{"role": "system", "content": "Be brief."}, *MSG],  # type: ignore[list-item]
        max_tokens=5,
    )
    c = raw.parse()
    assert c.choices[0].message.content == words(5) and c.choices[0].finish_reason == "stop"
    u = fk.responses_usage(5, cached=True, reasoning=True)
    assert c.usage is not None and (c.usage.prompt_tokens, c.usage.completion_tokens) == (
        u["input_tokens"],
        u["output_tokens"],
    )
    assert c.usage.prompt_tokens_details is not None and c.usage.prompt_tokens_details.cached_tokens == fk.CACHE_READ
    assert c.usage.completion_tokens_details is not None
    assert c.usage.completion_tokens_details.reasoning_tokens == fk.REASONING
    body = sent(fake_upstream, "/v1/responses")["body"]
    assert body["model"] == f"resp-{RUN}-cached-reasoning" and body["max_output_tokens"] == 5
    assert body["store"] is False and body["input"] == [
        {"type": "message", "role": "system", "content": "Be brief."},
        {"type": "message", "role": "user", "content": "Say hello."},
    ]
    rec = last_record(server, "resp-up", 1)
    assert rec["request"]["messages"][1] == MSG[0] and rec["response"]["object"] == "chat.completion"
    assert rec["upstream_response"]["object"] == "response" and rec["request_id"] == raw.headers["x-request-id"]
    assert_resp_record(rec, 5, "chat")


def test_chat_to_responses_streamed(server: ServerProcess) -> None:
    stream = oai(server).chat.completions.create(
        model="resp-up",
        messages=MSG,  # type: ignore[arg-type]
        max_completion_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == words(6)
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    usage = chunks[-1].usage
    u = fk.responses_usage(6, cached=True, reasoning=True)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (
        u["input_tokens"],
        u["output_tokens"],
    )
    rec = last_record(server, "resp-up", 2)
    assert rec["stream"] and rec["response"]["choices"][0]["message"]["content"] == words(6)
    assert rec["ttft_ms"] is not None and rec["ttft_ms"] <= rec["latency_ms"]
    assert_resp_record(rec, 6, "chat")


def test_chat_to_responses_tool_call_round_trip(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    client = oai(server)
    c = client.chat.completions.create(model="resp-tool", messages=ASK, tools=[CHAT_TOOL], max_tokens=5)  # type: ignore[arg-type,list-item]
    calls = c.choices[0].message.tool_calls
    assert calls and c.choices[0].finish_reason == "tool_calls"
    assert calls[0].function.name == "get_weather" and json.loads(calls[0].function.arguments) == fk.TOOL_ARGS  # type: ignore[union-attr]
    tools_sent = sent(fake_upstream, "/v1/responses")["body"]["tools"]
    assert tools_sent == [
        {"type": "function", "name": "get_weather", "strict": False, "description": "Weather.", "parameters": WEATHER}
    ]
    assert_resp_record(last_record(server, "resp-tool", 1), 5, "chat")
    # Streamed: the call's name and arguments come as tool-call deltas.
    stream = client.chat.completions.create(
        model="resp-tool",
        messages=ASK,  # type: ignore[arg-type]
        tools=[CHAT_TOOL],  # type: ignore[list-item]
        max_tokens=5,
        stream=True,
    )
    args, names, ids = "", [], []
    for ch in stream:
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            ids += [tc.id] if tc.id else []
            names += [tc.function.name] if tc.function and tc.function.name else []
            args += tc.function.arguments or "" if tc.function else ""
    assert names == ["get_weather"] and json.loads(args) == fk.TOOL_ARGS and len(ids) == 1
    assert_resp_record(last_record(server, "resp-tool", 2), 5, "chat")
    # The tool's result goes back as a function_call_output: the fake quotes it.
    turn = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump()]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"},
    ]
    done = client.chat.completions.create(model="resp-tool", messages=turn, tools=[CHAT_TOOL], max_tokens=5)  # type: ignore[arg-type,list-item]
    assert done.choices[0].message.content == tool_calls.ANSWER_PREFIX + "18C"
    items = sent(fake_upstream, "/v1/responses")["body"]["input"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1]["call_id"] == items[2]["call_id"] == calls[0].id
    assert_resp_record(last_record(server, "resp-tool", 3), 5, "chat")


def test_chat_field_responses_cannot_honour(server: ServerProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(server).chat.completions.create(model="resp-up", messages=MSG, stop=["END"])  # type: ignore[arg-type]
    assert info.value.param == "stop" and info.value.code == "untranslatable"
    rec = last_record(server, "resp-up", 3)
    assert rec["status"] == "error" and rec["http_status"] == 400 and rec["call_type"] == "chat"
    # The upstream's own 400 reaches the chat client in chat's error shape, streamed or not.
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as err:
            oai(server).chat.completions.create(model="resp-fail", messages=MSG, stream=stream)  # type: ignore[call-overload]
        assert "fail-400" in err.value.message
        rec = last_record(server, "resp-fail", 1 + stream)
        assert rec["status"] == "error" and rec["http_status"] == 400 and rec["call_type"] == "chat"


# -- Responses client -> Messages upstream -------------------------------------------------------


def test_responses_to_messages_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    r = oai(server).responses.create(
        model="claude-up", instructions="Be brief.", input="Say hello.", max_output_tokens=5
    )
    assert r.output_text == words(5) and r.status == "completed"
    prompt = fk.INPUT_TOKENS + fk.CACHE_READ + fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (prompt, 5)
    assert r.usage.input_tokens_details.cached_tokens == fk.CACHE_READ
    body = sent(fake_upstream, "/v1/messages")
    assert body["body"]["system"] == "Be brief." and body["body"]["max_tokens"] == 5
    assert body["headers"]["anthropic-version"]
    rec = last_record(server, "claude-up", 1)
    assert rec["call_type"] == "responses" and rec["status"] == "success" and rec["response"]["object"] == "response"
    assert rec["upstream_response"]["type"] == "message"
    assert rec["prompt_tokens"] == prompt and rec["cached_tokens"] == fk.CACHE_READ and rec["completion_tokens"] == 5
    assert_priced(rec, **claude_tokens(5))


def test_responses_to_messages_streamed_with_tool(server: ServerProcess) -> None:
    client = oai(server)
    with client.responses.stream(model="claude-up", input="Say hello.") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == words(7) == final.output_text and final.status == "completed"
    rec = last_record(server, "claude-up", 2)
    assert rec["stream"] and rec["call_type"] == "responses" and rec["status"] == "success"
    assert rec["response"]["id"] == final.id and rec["response"]["status"] == "completed"
    assert_priced(rec, **claude_tokens(7))
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}
    with client.responses.stream(model="claude-tool", input="Weather in Paris?", tools=[tool]) as stream:  # type: ignore[list-item]
        final = stream.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == fk.TOOL_ARGS
    rec = last_record(server, "claude-tool", 1)
    assert rec["stream"] and rec["status"] == "success"
    assert_priced(rec, **claude_tokens(7, cached=False))


def test_responses_to_messages_mid_stream_failure(server: ServerProcess) -> None:
    """A Messages upstream's ``error`` event, through chat, ends a Responses client's stream with
    ``response.failed``; the record is an error with ``message_start``'s usage."""
    events = list(oai(server).responses.create(model="claude-broken", input="hi", stream=True))
    assert events[-1].type == "response.failed" and events[-1].response.error is not None
    assert events[-1].response.error.message == "Overloaded"
    rec = last_record(server, "claude-broken", 1)
    assert rec["status"] == "error" and "overloaded_error" in rec["error"] and rec["call_type"] == "responses"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS


# -- Messages client -> Responses upstream -------------------------------------------------------


def test_messages_to_responses_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    msg = claude_client(server).messages.create(model="resp-up", max_tokens=5, system="Be brief.", messages=MSG)  # type: ignore[arg-type]
    assert msg.content[-1].type == "text" and msg.content[-1].text == words(5) and msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens) == (fk.INPUT_TOKENS, fk.CACHE_READ)
    assert msg.usage.output_tokens == 5 + fk.REASONING
    body = sent(fake_upstream, "/v1/responses")["body"]
    assert body["input"][0] == {"type": "message", "role": "system", "content": "Be brief."} and body["store"] is False
    rec = last_record(server, "resp-up", 4)
    assert rec["response"]["type"] == "message"
    assert_resp_record(rec, 5, "messages")


def test_messages_to_responses_streamed_with_tool(server: ServerProcess) -> None:
    client = claude_client(server)
    with client.messages.stream(model="resp-up", max_tokens=6, messages=MSG) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == words(6) and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 6 + fk.REASONING and final.usage.cache_read_input_tokens == fk.CACHE_READ
    rec = last_record(server, "resp-up", 5)
    assert rec["stream"] and rec["response"]["content"] == [{"type": "text", "text": words(6)}]
    assert_resp_record(rec, 6, "messages")
    tools = [{"name": "get_weather", "description": "Weather.", "input_schema": WEATHER}]
    with client.messages.stream(model="resp-tool", max_tokens=5, messages=ASK, tools=tools) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    block = final.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == fk.TOOL_ARGS
    assert final.stop_reason == "tool_use"
    assert_resp_record(last_record(server, "resp-tool", 4), 5, "messages")


def test_messages_to_responses_mid_stream_failure(server: ServerProcess) -> None:
    """A Responses upstream's ``response.failed`` reaches a Messages client as Anthropic's error
    event; the record is an error with the usage the failed response carried."""
    with (
        pytest.raises(anthropic.APIStatusError),
        claude_client(server).messages.stream(model="resp-broken", max_tokens=7, messages=MSG) as s,  # type: ignore[arg-type]
    ):
        s.get_final_message()
    rec = last_record(server, "resp-broken", 1)
    assert rec["status"] == "error" and "server_error" in rec["error"] and rec["call_type"] == "messages"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS


def test_pairs_still_without_a_translation(server: ServerProcess) -> None:
    """Token counting and legacy completions have no Responses form: a clear 400, not a wrong answer."""
    status, body = http_json("POST", f"{server.base_url}/messages/count_tokens", {"model": "resp-up", "messages": MSG})
    assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    assert "translation from /v1/messages/count_tokens is not supported" in body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as info:
        oai(server).completions.create(model="resp-up", prompt="hi")
    assert info.value.code == "translation_unavailable" and info.value.param == "model"
