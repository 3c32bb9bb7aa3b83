"""Every front door in front of every model (issue 12 item 3): a client API other than the upstream's
is translated, whole and streamed, through a running gateway and the official SDKs.

Messages -> chat and Responses -> chat (anthropic / openai SDKs against the chat fake), chat ->
Messages (openai SDK against the Messages fake), tool calls each way (the pairs with a Responses
upstream, and Responses <-> Messages: test_translated_responses_e2e.py). Every record's tokens equal
what the fake upstream reported, spend is each component at its own rate, the breakdown adds up."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.fakes import doors as fk
from tests.fakes import upstream as fu
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, sqlite_url, wait_for, write_config

RUN = uuid.uuid4().hex[:8]
PRICE = {"input": 3, "cached_input": "0.3", "cache_write": "3.75", "cache_write_1h": 6, "output": 15, "reasoning": 17}
MSG = [{"role": "user", "content": "Say hello."}]
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TEXT5 = "tok0 tok1 tok2 tok3 tok4"


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("translated")
    base = fake_upstream.base_url

    def chat(name: str, model: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "model": model, "api_base": base, "price": PRICE, "max_retries": 0, **extra}

    def claude(name: str, model: str) -> dict[str, Any]:
        return chat(name, model, provider="anthropic")

    deployments = [
        chat("chat-up", f"chat-{RUN}-cached-reasoning"),
        chat("chat-tool", f"chat-{RUN}-cached-reasoning-tool-call"),
        chat("chat-fail", f"chat-{RUN}-fail-400"),
        chat("chat-500", f"chat-{RUN}-fail-500"),
        chat("chat-cut", f"chat-{RUN}-cut-stream"),
        chat("chat-slow", f"chat-{RUN}-slow-stream"),
        claude("claude-up", f"claude-{RUN}-cached"),
        claude("claude-tool", f"claude-{RUN}-tool-call"),
        claude("claude-fail", f"claude-{RUN}-fail-400"),
        claude("claude-broken", f"claude-{RUN}-stream-error"),
    ]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    with ServerProcess(config, log_dir=tmp / "server") as srv:
        yield srv


def claude_client(server: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="client-key", max_retries=0, timeout=20)


def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)


_SEEN: dict[str, set[str]] = {}  # record ids already returned by last_record, per deployment


def last_record(server: ServerProcess, deployment: str, n: int) -> dict[str, Any]:
    """The record a call just added (its deployment's ``n``-th), read in full: the one not seen
    before (two calls in one millisecond could order their ids either way)."""
    seen = _SEEN.setdefault(deployment, set())
    rows = [r for r in server.wait_for_records(deployment, n) if r["id"] not in seen]
    assert len(rows) == 1, rows
    seen.add(rows[0]["id"])
    return server.record(rows[0]["id"])


def sent_upstream(fake: FakeUpstream, path: str) -> dict[str, Any]:
    return fake.stats()["last_by_path"][path]  # type: ignore[no-any-return]


def chat_fake_usage(fake: FakeUpstream) -> dict[str, Any]:
    """The usage the chat fake reported for the request it last got (its own formula)."""
    body = sent_upstream(fake, "/v1/chat/completions")["body"]
    prompt = sum(3 + fu._count(m.get("content")) for m in body["messages"])
    n = body.get("max_tokens") or fu.DEFAULT_TOKENS
    return fu._usage(prompt, n, fu.mode_of(body["model"])[0])


def assert_priced(rec: dict[str, Any], **tokens: int) -> None:
    """Each component's tokens as expected; spend == Σ tokens × rate == the breakdown's sum."""
    lines = {c["component"]: c for c in rec["cost_breakdown"]}
    for comp, n in tokens.items():
        if n:
            assert lines[comp]["tokens"] == n, (comp, lines)
    want = sum((Decimal(str(PRICE[c])) * n for c, n in tokens.items()), Decimal(0)) / 10**6
    assert Decimal(str(rec["spend"])) == want > 0
    assert sum(Decimal(str(c["cost"])) for c in rec["cost_breakdown"]) == Decimal(str(rec["spend"]))


def assert_chat_usage(rec: dict[str, Any], u: dict[str, Any]) -> None:
    cached = u["prompt_tokens_details"]["cached_tokens"]
    reasoning = u["completion_tokens_details"]["reasoning_tokens"]
    assert cached and reasoning  # the fake's model names cached and reasoning
    assert rec["prompt_tokens"] == u["prompt_tokens"] and rec["completion_tokens"] == u["completion_tokens"]
    assert rec["cached_tokens"] == cached and rec["reasoning_tokens"] == reasoning
    assert_priced(
        rec,
        input=u["prompt_tokens"] - cached,
        cached_input=cached,
        output=u["completion_tokens"] - reasoning,
        reasoning=reasoning,
    )


def claude_tokens(n: int, cached: bool = True) -> dict[str, int]:
    if not cached:
        return dict(input=fk.INPUT_TOKENS, output=n)
    return dict(
        input=fk.INPUT_TOKENS,
        cached_input=fk.CACHE_READ,
        cache_write=fk.CACHE_WRITE_5M,
        cache_write_1h=fk.CACHE_WRITE_1H,
        output=n,
    )


# -- Messages client -> chat upstream ------------------------------------------------------------


def test_messages_to_chat_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    raw = claude_client(server).messages.with_raw_response.create(
        model="chat-up",
        max_tokens=5,
        system="Be brief.",
        messages=MSG,  # type: ignore[arg-type]
    )
    msg = raw.parse()
    assert msg.content[0].type == "text" and msg.content[0].text == TEXT5
    assert msg.content[0].text and msg.stop_reason == "max_tokens"
    sent = sent_upstream(fake_upstream, "/v1/chat/completions")["body"]
    assert (
        sent["messages"][0] == {"role": "system", "content": "Be brief."}
        and sent["model"] == f"chat-{RUN}-cached-reasoning"
    )
    u = chat_fake_usage(fake_upstream)
    assert msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0) == u["prompt_tokens"]
    rec = last_record(server, "chat-up", 1)
    assert rec["call_type"] == "messages" and rec["status"] == "success" and rec["http_status"] == 200
    assert rec["request"]["messages"] == MSG and rec["response"]["type"] == "message"  # the client's bodies
    assert rec["request_id"] == raw.headers["x-request-id"]
    assert_chat_usage(rec, u)


def test_messages_to_chat_streamed(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    with claude_client(server).messages.stream(model="chat-up", max_tokens=5, messages=MSG) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TEXT5 and final.content[0].text == TEXT5  # type: ignore[union-attr]
    u = chat_fake_usage(fake_upstream)
    assert final.usage.output_tokens == u["completion_tokens"]
    rec = last_record(server, "chat-up", 2)
    assert rec["stream"] and rec["call_type"] == "messages" and rec["status"] == "success"
    assert rec["response"]["content"] == [{"type": "text", "text": TEXT5}]
    assert rec["ttft_ms"] is not None and rec["ttft_ms"] <= rec["latency_ms"]
    assert_chat_usage(rec, u)


def test_messages_tool_call_streamed_and_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    tools = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER}]
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    client = claude_client(server)
    msg = client.messages.create(model="chat-tool", max_tokens=5, messages=ask, tools=tools)  # type: ignore[arg-type]
    call = msg.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    assert msg.stop_reason == "tool_use"
    sent = sent_upstream(fake_upstream, "/v1/chat/completions")["body"]
    assert (
        sent["tools"][0]["function"]["name"] == "get_weather" and sent["tools"][0]["function"]["parameters"] == WEATHER
    )
    rec = last_record(server, "chat-tool", 1)
    assert_chat_usage(rec, chat_fake_usage(fake_upstream))
    with client.messages.stream(model="chat-tool", max_tokens=5, messages=ask, tools=tools) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    block = final.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    rec = last_record(server, "chat-tool", 2)
    assert rec["stream"] and rec["status"] == "success"
    assert_chat_usage(rec, chat_fake_usage(fake_upstream))


# -- Responses client -> chat upstream -----------------------------------------------------------


def test_responses_to_chat_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    raw = oai(server).responses.with_raw_response.create(model="chat-up", input="Say hello.", max_output_tokens=5)
    r = raw.parse()
    assert r.output_text == TEXT5 and r.status == "incomplete"  # max_output_tokens reached
    u = chat_fake_usage(fake_upstream)
    assert r.usage is not None and r.usage.input_tokens == u["prompt_tokens"]
    assert r.usage.output_tokens_details.reasoning_tokens == u["completion_tokens_details"]["reasoning_tokens"]
    rec = last_record(server, "chat-up", 3)
    assert rec["call_type"] == "responses" and rec["status"] == "success"
    assert rec["request"]["input"] == "Say hello." and rec["response"]["object"] == "response"
    assert_chat_usage(rec, u)


def test_responses_to_chat_streamed_with_tool(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    client = oai(server)
    # No max_output_tokens: a "length" finish is Responses' incomplete, which the SDK's stream refuses.
    with client.responses.stream(model="chat-up", input="Say hello.") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "tok0 tok1 tok2 tok3 tok4 tok5 tok6" == final.output_text
    u = chat_fake_usage(fake_upstream)
    rec = last_record(server, "chat-up", 4)
    assert rec["stream"] and rec["call_type"] == "responses" and rec["status"] == "success"
    assert rec["response"]["id"] == final.id
    assert_chat_usage(rec, u)
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}
    r = client.responses.create(model="chat-tool", input="Weather in Paris?", tools=[tool])  # type: ignore[list-item]
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    assert_chat_usage(last_record(server, "chat-tool", 3), chat_fake_usage(fake_upstream))


# -- chat client -> Messages upstream ------------------------------------------------------------


def test_chat_to_messages_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    raw = oai(server).chat.completions.with_raw_response.create(
        model="claude-up",
        messages=[{"role": "system", "content": "Be brief."}, *MSG],
        max_tokens=5,  # type: ignore[list-item]
    )
    c = raw.parse()
    assert c.choices[0].message.content == TEXT5 and c.choices[0].finish_reason == "stop"
    prompt = fk.INPUT_TOKENS + fk.CACHE_READ + fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert c.usage is not None and c.usage.prompt_tokens == prompt and c.usage.completion_tokens == 5
    sent = sent_upstream(fake_upstream, "/v1/messages")
    assert sent["body"]["system"] == "Be brief." and sent["body"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Say hello."}]}
    ]
    assert sent["headers"]["anthropic-version"]
    rec = last_record(server, "claude-up", 1)
    assert rec["call_type"] == "chat" and rec["status"] == "success" and rec["response"]["object"] == "chat.completion"
    assert rec["prompt_tokens"] == prompt and rec["cached_tokens"] == fk.CACHE_READ and rec["completion_tokens"] == 5
    assert_priced(rec, **claude_tokens(5))


def test_chat_to_messages_streamed(server: ServerProcess) -> None:
    stream = oai(server).chat.completions.create(
        model="claude-up",
        messages=MSG,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == TEXT5
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 5
    assert usage.prompt_tokens == fk.INPUT_TOKENS + fk.CACHE_READ + fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    rec = last_record(server, "claude-up", 2)
    assert rec["stream"] and rec["call_type"] == "chat" and rec["status"] == "success"
    assert_priced(rec, **claude_tokens(5))


def test_chat_to_messages_tool_call(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    tools = [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather.", "parameters": WEATHER}}
    ]
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    client = oai(server)
    c = client.chat.completions.create(model="claude-tool", messages=ask, tools=tools, max_tokens=5)  # type: ignore[arg-type]
    calls = c.choices[0].message.tool_calls
    assert (
        calls
        and calls[0].function.name == "get_weather"
        and json.loads(calls[0].function.arguments) == {"city": "Paris"}
    )
    assert c.choices[0].finish_reason == "tool_calls"
    assert sent_upstream(fake_upstream, "/v1/messages")["body"]["tools"][0]["input_schema"] == WEATHER
    assert_priced(last_record(server, "claude-tool", 1), **claude_tokens(5, cached=False))
    stream = client.chat.completions.create(
        model="claude-tool",
        messages=ask,
        tools=tools,
        max_tokens=5,
        stream=True,  # type: ignore[arg-type]
    )
    args, names = "", []
    for ch in stream:
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            args += tc.function.arguments or "" if tc.function else ""
            if tc.function and tc.function.name:
                names.append(tc.function.name)
    assert names == ["get_weather"] and json.loads(args) == {"city": "Paris"}
    rec = last_record(server, "claude-tool", 2)
    assert rec["stream"] and rec["status"] == "success"
    assert_priced(rec, **claude_tokens(5, cached=False))


# -- errors ----------------------------------------------------------------------------------------


def test_upstream_errors_in_the_door_shape(server: ServerProcess) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude_client(server).messages.create(model="chat-fail", max_tokens=5, messages=MSG)  # type: ignore[arg-type]
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "fail-400" in body["error"]["message"]  # type: ignore[index]
    rec = last_record(server, "chat-fail", 1)
    assert rec["status"] == "error" and rec["http_status"] == 400 and rec["call_type"] == "messages"
    with pytest.raises(anthropic.InternalServerError) as err:
        claude_client(server).messages.create(model="chat-500", max_tokens=5, messages=MSG)  # type: ignore[arg-type]
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert last_record(server, "chat-500", 1)["http_status"] == 500
    with pytest.raises(openai.BadRequestError) as oerr:
        oai(server).chat.completions.create(model="claude-fail", messages=MSG, max_tokens=5)  # type: ignore[arg-type]
    assert oerr.value.type == "invalid_request_error" and "fail-400" in oerr.value.message
    rec = last_record(server, "claude-fail", 1)
    assert rec["http_status"] == 400 and rec["call_type"] == "chat" and rec["status"] == "error"
    with pytest.raises(openai.BadRequestError) as rerr:
        oai(server).responses.create(model="chat-fail", input="hi")
    assert rerr.value.code == "invalid_value" and "fail-400" in rerr.value.message  # the chat upstream's own
    assert last_record(server, "chat-fail", 2)["call_type"] == "responses"


def test_unsupported_pair_and_untranslatable_body(server: ServerProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:  # legacy completions: chat upstreams only
        oai(server).completions.create(model="claude-up", prompt="hi")
    assert info.value.code == "translation_unavailable"
    with pytest.raises(openai.BadRequestError) as info:
        oai(server).responses.create(model="chat-up", input="hi", previous_response_id="resp_x")
    assert info.value.param == "previous_response_id"


def test_mid_stream_failures(server: ServerProcess) -> None:
    """A chat client reading a Messages stream that fails: the error reaches it in chat's stream
    shape; the record is an error with message_start's usage."""
    stream = oai(server).chat.completions.create(model="claude-broken", messages=MSG, max_tokens=5, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError):
        list(stream)
    rec = last_record(server, "claude-broken", 1)
    assert rec["status"] == "error" and "overloaded_error" in rec["error"] and rec["call_type"] == "chat"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS
    # A chat upstream cut mid-stream: the Messages client gets Anthropic's error event.
    with (
        pytest.raises(anthropic.APIStatusError),
        claude_client(server).messages.stream(model="chat-cut", max_tokens=7, messages=MSG) as s,  # type: ignore[arg-type]
    ):
        s.get_final_message()
    rec = last_record(server, "chat-cut", 1)
    assert rec["status"] == "error" and rec["http_status"] == 502 and rec["call_type"] == "messages"
    # The same cut under a Responses client: its stream ends with response.failed.
    events = list(oai(server).responses.create(model="chat-cut", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    rec = last_record(server, "chat-cut", 2)
    assert rec["status"] == "error" and rec["http_status"] == 502 and rec["call_type"] == "responses"


def test_hang_up_recorded(server: ServerProcess) -> None:
    body = orjson.dumps({"model": "chat-slow", "max_tokens": 7, "stream": True, "messages": MSG})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"}
    conn.request("POST", "/v1/messages", body, headers)
    resp = conn.getresponse()
    assert resp.status == 200
    assert b"message_start" in resp.read1(65536)
    conn.sock.close()  # type: ignore[union-attr]
    conn.close()
    rec = wait_for(lambda: server.records("chat-slow"), 10)[0]
    assert rec["status"] == "error" and rec["http_status"] == 499 and rec["call_type"] == "messages"


def test_upstream_bodies_come_back_from_the_record_api(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    """A translated call keeps what went upstream and what the upstream answered (migration 0011);
    a pass-through call has neither."""
    raw = claude_client(server).messages.with_raw_response.create(model="chat-up", max_tokens=3, messages=MSG)  # type: ignore[arg-type]
    rows = wait_for(
        lambda: [r for r in server.records("chat-up") if r["request_id"] == raw.headers["x-request-id"]], 10
    )
    rec = server.record(rows[0]["id"])
    sent = sent_upstream(fake_upstream, "/v1/chat/completions")["body"]
    assert rec["upstream_request"] == sent and rec["upstream_request"]["messages"] == [
        {"role": "user", "content": "Say hello."}
    ]
    assert rec["upstream_response"]["object"] == "chat.completion"
    assert rec["upstream_response"]["usage"] == chat_fake_usage(fake_upstream)
    assert rec["request"]["messages"] == MSG and rec["response"]["type"] == "message"
    # Streamed: the upstream's stream reassembled; the client's answer in its own API.
    with claude_client(server).messages.stream(model="chat-up", max_tokens=3, messages=MSG) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    rows = wait_for(lambda: [r for r in server.records("chat-up") if r["request_id"] == final.id], 10)
    rec = server.record(rows[0]["id"])
    assert rec["upstream_request"]["stream"] is True and rec["upstream_request"]["stream_options"] == {
        "include_usage": True
    }
    assert rec["upstream_response"]["choices"][0]["message"]["content"] == "tok0 tok1 tok2"
    assert rec["response"]["content"] == [{"type": "text", "text": "tok0 tok1 tok2"}]
    # Pass-through: nothing translated, nothing extra stored.
    done = oai(server).chat.completions.with_raw_response.create(model="chat-up", messages=MSG, max_tokens=2)  # type: ignore[arg-type]
    rows = wait_for(
        lambda: [r for r in server.records("chat-up") if r["request_id"] == done.headers["x-request-id"]], 10
    )
    assert "upstream_request" not in server.record(rows[0]["id"])
