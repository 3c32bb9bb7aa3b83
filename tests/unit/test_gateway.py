"""The /v1 gateway in-process, with the upstream replaced through the ``UpstreamClient`` seam.

Pass-through of requests and responses, usage hiding and passthrough in streams, estimated usage,
and the usage record of every call (fields, cost, redaction, bodies, metadata).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.helpers import (
    CannedResponse,
    Harness,
    MemoryUpstream,
    chat_chunks,
    chat_completion,
    running_app,
    sqlite_url,
    sse,
    usage_dict,
)

from modelmeter.metering import tokens
from modelmeter.metering.pricing import GENAI_SOURCE

BASE = "http://upstream.test/v1"
SECRET = "sk-unit-secret-9f8e7d"
KEY_ENV = "MM_UNIT_UPSTREAM_KEY"
DEPLOYMENTS: list[dict[str, Any]] = [
    {"name": "gpt", "model": "gpt-4o-mini", "provider": "openai", "api_base": BASE, "api_key_env": KEY_ENV},
    {
        "name": "priced",
        "model": "house-model",
        "provider": "acme",
        "api_base": BASE,
        "price": {"input": 1.0, "cached_input": 0.25, "output": 2.0},
    },
    {"name": "mystery", "model": "no-such-model-xyz", "provider": "acme", "api_base": BASE},
    {"name": "emb", "model": "text-embedding-3-small", "provider": "openai", "api_base": BASE + "/"},
]
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
RECORD_FIELDS = {
    "id",
    "request_id",
    "deployment",
    "model",
    "model_id",
    "provider",
    "call_type",
    "api_base",
    "client_ip",
    "status",
    "http_status",
    "error",
    "stream",
    "start_time",
    "end_time",
    "latency_ms",
    "ttft_ms",
    "overhead_ms",
    "retries",
    "cache_hit",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "spend",
    "cost_breakdown",
    "price_source",
    "request",
    "response",
    "metadata",
}
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
M = Decimal(10) ** 6


@pytest.fixture
async def gw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.setenv(KEY_ENV, SECRET)
    async with running_app(sqlite_url(tmp_path / "gw.db"), DEPLOYMENTS, MemoryUpstream()) as h:
        yield h


def dec(x: float) -> Decimal:
    return Decimal(repr(x))


def assert_cost(rec: dict[str, Any], lines: dict[str, tuple[int, str]]) -> None:
    """``lines``: component -> (tokens, USD per million); the spend must be their exact sum."""
    got = {c["component"]: c for c in rec["cost_breakdown"]}
    assert set(got) == set(lines), rec["cost_breakdown"]
    expected = Decimal(0)
    for comp, (n, rate) in lines.items():
        cost = Decimal(n) * Decimal(rate) / M
        assert got[comp]["tokens"] == n and dec(got[comp]["usd_per_million"]) == Decimal(rate)
        assert dec(got[comp]["cost"]) == cost, (comp, got[comp])
        expected += cost
    assert dec(rec["spend"]) == expected
    assert sum((dec(c["cost"]) for c in rec["cost_breakdown"]), Decimal(0)) == dec(rec["spend"])


def assert_well_formed(rec: dict[str, Any]) -> None:
    assert set(rec) >= RECORD_FIELDS, RECORD_FIELDS - set(rec)
    for name in TOKEN_FIELDS:
        assert isinstance(rec[name], int) and rec[name] >= 0, (name, rec[name])
    assert rec["total_tokens"] == rec["prompt_tokens"] + rec["completion_tokens"]
    assert rec["status"] in ("success", "error") and isinstance(rec["http_status"], int)
    assert rec["call_type"] in ("chat", "completion", "embedding")
    assert ISO_UTC.match(rec["start_time"]) and ISO_UTC.match(rec["end_time"])
    start = datetime.fromisoformat(rec["start_time"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(rec["end_time"].replace("Z", "+00:00"))
    assert start <= end
    assert rec["latency_ms"] >= 0 and rec["overhead_ms"] >= 0
    assert rec["overhead_ms"] <= rec["latency_ms"] + 0.01
    if rec["ttft_ms"] is not None:
        assert 0 <= rec["ttft_ms"] <= rec["latency_ms"]
    assert isinstance(rec["usage_estimated"], bool) and isinstance(rec["stream"], bool)
    assert sum((dec(c["cost"]) for c in rec["cost_breakdown"]), Decimal(0)) == dec(rec["spend"])
    assert SECRET not in orjson.dumps(rec).decode()


# --- non-streamed ---------------------------------------------------------------------------


async def test_chat_passes_every_field_and_replaces_model(gw: Harness) -> None:
    body = {
        "model": "gpt",
        "messages": MSGS,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 20,
        "seed": 7,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "text"},
        "logit_bias": {"50256": -100},
        "user": "u-1",
        "metadata": {"team": "search"},
        "x_vendor_extension": {"deep": [1, {"a": None}]},
    }
    res = await gw.chat(body)
    assert res.status == 200 and res.headers["content-type"] == "application/json"
    sent = gw.upstream.last
    assert sent.url == BASE + "/chat/completions" and sent.method == "POST"
    assert sent.body == {**body, "model": "gpt-4o-mini"}  # everything else untouched
    assert "stream_options" not in sent.body
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert res.json() == chat_completion("gpt-4o-mini", usage=usage_dict(11, 3))  # relayed as is


async def test_chat_record(gw: Harness) -> None:
    body = {"model": "gpt", "messages": MSGS, "user": "alice", "metadata": {"team": "search"}}
    headers = {"x-modelmeter-tags": "exp-1, canary ,,", "authorization": "Bearer sk-client-own-key"}
    res = await gw.chat(body, headers=headers)
    assert res.status == 200
    rec = await gw.record()
    assert_well_formed(rec)
    assert rec["deployment"] == "gpt" and rec["model"] == "gpt" and rec["model_id"] == "gpt-4o-mini"
    assert rec["provider"] == "openai" and rec["call_type"] == "chat" and rec["api_base"] == BASE
    assert rec["request_id"] == "chatcmpl-123"
    assert rec["status"] == "success" and rec["http_status"] == 200 and rec["error"] is None
    assert rec["stream"] is False and rec["ttft_ms"] == rec["latency_ms"]
    assert rec["retries"] == 0 and rec["cache_hit"] is False
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["total_tokens"]) == (11, 3, 14)
    assert rec["cached_tokens"] == 0 and rec["reasoning_tokens"] == 0 and rec["usage_estimated"] is False
    assert_cost(rec, {"input": (11, "0.15"), "output": (3, "0.6")})
    assert rec["price_source"] == GENAI_SOURCE
    assert rec["client_ip"] == "203.0.113.0"
    assert rec["request"] == body
    assert rec["response"] == chat_completion("gpt-4o-mini", usage=usage_dict(11, 3))
    assert rec["metadata"] == {"team": "search", "user": "alice", "tags": ["exp-1", "canary"]}
    assert rec["tags"] == ["exp-1", "canary"]
    assert "sk-client-own-key" not in orjson.dumps(rec).decode()  # the client's own key is not kept either


async def test_ipv6_client_redacted_to_48(gw: Harness) -> None:
    await gw.chat({"model": "gpt", "messages": MSGS}, client=("2001:db8:85a3:1234:5678:8a2e:370:7334", 1))
    assert (await gw.record())["client_ip"] == "2001:db8:85a3::"


async def test_cached_tokens_priced_by_override(gw: Harness) -> None:
    usage = usage_dict(1000, 200, cached=400)
    gw.upstream.respond = lambda call: CannedResponse(200, chat_completion(call.body["model"], usage=usage))
    assert (await gw.chat({"model": "priced", "messages": MSGS})).status == 200
    rec = await gw.record()
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["completion_tokens"]) == (1000, 400, 200)
    assert_cost(rec, {"input": (600, "1"), "cached_input": (400, "0.25"), "output": (200, "2")})
    assert rec["price_source"] == "override"


async def test_cached_and_reasoning_tokens_from_genai_prices(gw: Harness) -> None:
    usage = usage_dict(1000, 500, cached=200, reasoning=50)
    gw.upstream.respond = lambda call: CannedResponse(200, chat_completion(call.body["model"], usage=usage))
    await gw.chat({"model": "gpt", "messages": MSGS})
    rec = await gw.record()
    assert (rec["cached_tokens"], rec["reasoning_tokens"]) == (200, 50)
    assert_cost(rec, {"input": (800, "0.15"), "cached_input": (200, "0.075"), "output": (500, "0.6")})


async def test_unknown_model_is_free_and_says_so(gw: Harness) -> None:
    await gw.chat({"model": "mystery", "messages": MSGS})
    rec = await gw.record()
    assert rec["spend"] == 0 and rec["price_source"] == "unknown" and rec["prompt_tokens"] == 11
    assert_well_formed(rec)


async def test_no_usage_is_estimated_with_tiktoken(gw: Harness) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    gw.upstream.respond = lambda call: CannedResponse(200, chat_completion(call.body["model"], text))
    res = await gw.chat({"model": "gpt", "messages": MSGS})
    assert res.status == 200 and "usage" not in res.json()
    rec = await gw.record()
    assert rec["usage_estimated"] is True
    assert rec["prompt_tokens"] == tokens.count_chat_prompt(MSGS, "gpt-4o-mini") > 0
    assert rec["completion_tokens"] == tokens.count_text(text, "gpt-4o-mini") > 0
    assert_cost(rec, {"input": (rec["prompt_tokens"], "0.15"), "output": (rec["completion_tokens"], "0.6")})


async def test_completions(gw: Harness) -> None:
    res = await gw.request(
        "POST", "/v1/completions", {"model": "gpt", "prompt": "Once", "max_tokens": 2, "echo": False, "suffix": "!"}
    )
    assert res.status == 200 and res.json()["choices"][0]["text"] == "one two"
    assert gw.upstream.last.url == BASE + "/completions"
    assert gw.upstream.last.body == {
        "model": "gpt-4o-mini",
        "prompt": "Once",
        "max_tokens": 2,
        "echo": False,
        "suffix": "!",
    }
    rec = await gw.record()
    assert rec["call_type"] == "completion" and (rec["prompt_tokens"], rec["completion_tokens"]) == (3, 2)
    assert_well_formed(rec)


async def test_embeddings(gw: Harness) -> None:
    body = {"model": "emb", "input": ["a", "b"], "encoding_format": "float", "dimensions": 2}
    res = await gw.request("POST", "/v1/embeddings", body)
    assert res.status == 200 and res.json()["data"][0]["embedding"] == [0.1, 0.2]
    assert gw.upstream.last.url == BASE + "/embeddings"  # the deployment's trailing slash is dropped
    assert gw.upstream.last.body == {**body, "model": "text-embedding-3-small"}
    rec = await gw.record()
    assert rec["call_type"] == "embedding" and rec["api_base"] == BASE
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["total_tokens"]) == (4, 0, 4)
    assert rec["ttft_ms"] == rec["latency_ms"]
    assert_cost(rec, {"input": (4, "0.02"), "output": (0, "0")})


async def test_embeddings_without_usage_are_estimated(gw: Harness) -> None:
    answer = {"object": "list", "model": "m", "data": [{"object": "embedding", "index": 0, "embedding": [1.0]}]}
    gw.upstream.respond = lambda call: CannedResponse(200, answer)
    assert (await gw.request("POST", "/v1/embeddings", {"model": "emb", "input": "hello world"})).status == 200
    rec = await gw.record()
    assert rec["usage_estimated"] is True and rec["prompt_tokens"] == 2 and rec["completion_tokens"] == 0


async def test_models_lists_deployments(gw: Harness) -> None:
    res = await gw.request("GET", "/v1/models")
    assert res.status == 200
    body = res.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [d["name"] for d in DEPLOYMENTS]
    assert all(m["object"] == "model" for m in body["data"])
    assert gw.submitted == 0  # not a metered call


async def test_trailing_slash_path(gw: Harness) -> None:
    res = await gw.request("POST", "/v1/chat/completions/", {"model": "gpt", "messages": MSGS})
    assert res.status == 200
    assert gw.upstream.last.url == BASE + "/chat/completions"


async def test_bodies_not_stored_when_off(tmp_path: Path) -> None:
    deps = [{**DEPLOYMENTS[2], "store_bodies": False}]
    async with running_app(sqlite_url(tmp_path / "nb.db"), deps) as h:
        assert (await h.chat({"model": "mystery", "messages": MSGS})).status == 200
        rec = await h.record()
    assert rec["request"] is None and rec["response"] is None and rec["bodies_stored"] is False
    assert rec["prompt_tokens"] == 11


async def test_records_flushed_when_the_app_stops(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "flush.db")
    async with running_app(url, DEPLOYMENTS[2:3]) as h:
        for _ in range(25):
            assert (await h.chat({"model": "mystery", "messages": MSGS})).status == 200
        db = h.db
    # the lifespan has ended: every record is on disk
    from tests.helpers import read_sqlite_records

    assert len(read_sqlite_records(db.path)) == 25


# --- streamed -------------------------------------------------------------------------------


def stream_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt", "messages": MSGS, "stream": True, **extra}


async def test_stream_usage_hidden_unless_asked(gw: Harness) -> None:
    res = await gw.chat(stream_body())
    assert res.status == 200 and res.headers["content-type"].startswith("text/event-stream")
    assert res.complete
    # the gateway asked for usage on the client's behalf ...
    assert gw.upstream.last.body["stream_options"] == {"include_usage": True}
    assert gw.upstream.last.body["model"] == "gpt-4o-mini"
    # ... and kept the usage chunk to itself; everything else is relayed unchanged
    upstream_events = chat_chunks("gpt-4o-mini", usage=usage_dict(11, 3))
    assert res.events() == [*upstream_events[:-1], "[DONE]"]
    assert all("usage" not in e for e in res.events()[:-1])
    rec = await gw.record()
    assert_well_formed(rec)
    assert rec["stream"] is True and rec["usage_estimated"] is False
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (11, 3)
    assert 0 < rec["ttft_ms"] <= rec["latency_ms"]
    assert rec["request_id"] == "chatcmpl-456" and rec["model_id"] == "gpt-4o-mini"
    assert rec["request"] == stream_body()  # what the client sent, not what went upstream
    response = rec["response"]
    assert response["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
    ]
    assert response["object"] == "chat.completion" and response["usage"]["completion_tokens"] == 3


async def test_stream_usage_passed_when_asked(gw: Harness) -> None:
    res = await gw.chat(stream_body(stream_options={"include_usage": True, "vendor_flag": 1}))
    assert gw.upstream.last.body["stream_options"] == {"include_usage": True, "vendor_flag": 1}
    events = res.events()
    assert events == [*chat_chunks("gpt-4o-mini", usage=usage_dict(11, 3)), "[DONE]"]
    assert events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == 11
    rec = await gw.record()
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (11, 3)


async def test_stream_include_usage_false_is_overridden_upstream_only(gw: Harness) -> None:
    res = await gw.chat(stream_body(stream_options={"include_usage": False}))
    assert gw.upstream.last.body["stream_options"] == {"include_usage": True}
    assert all("usage" not in e for e in res.events()[:-1])
    assert (await gw.record())["completion_tokens"] == 3


@pytest.mark.parametrize("asked", [False, True])
async def test_usage_on_a_content_chunk(gw: Harness, asked: bool) -> None:
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(9, 4), usage_on_last_content=True)
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*chunks)])
    extra = {"stream_options": {"include_usage": True}} if asked else {}
    res = await gw.chat(stream_body(**extra))
    events = res.events()
    assert events[-1] == "[DONE]" and len(events) == len(chunks) + 1
    if asked:
        assert events[:-1] == chunks
    else:  # the usage is stripped, the content and finish reason are kept
        assert "usage" not in events[-2] and events[-2]["choices"] == chunks[-1]["choices"]
        assert events[:-2] == chunks[:-1]
    rec = await gw.record()
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["usage_estimated"]) == (9, 4, False)


async def test_usage_null_on_every_chunk_is_harmless(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(5, 3))
    for c in chunks[:-1]:
        c["usage"] = None  # as OpenAI sends with include_usage
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*chunks)])
    events = (await gw.chat(stream_body())).events()
    assert len(events) == len(chunks) and all(not e.get("usage") for e in events[:-1])
    assert (await gw.record())["completion_tokens"] == 3


async def test_stream_without_usage_is_estimated(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", ["The quick", " brown fox", " jumps."])
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*chunks)])
    res = await gw.chat(stream_body(stream_options={"include_usage": True}))
    assert res.events() == [*chunks, "[DONE]"]
    rec = await gw.record()
    assert rec["usage_estimated"] is True and rec["status"] == "success"
    assert rec["completion_tokens"] == tokens.count_text("The quick brown fox jumps.", "gpt-4o-mini") > 0
    assert rec["prompt_tokens"] == tokens.count_chat_prompt(MSGS, "gpt-4o-mini")
    assert rec["response"]["choices"][0]["message"]["content"] == "The quick brown fox jumps."


async def test_stream_split_across_network_chunks(gw: Harness) -> None:
    raw = sse(*chat_chunks("gpt-4o-mini", usage=usage_dict(7, 3)), sep=b"\r\n\r\n")
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # splits CRLFs and JSON alike
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=pieces)
    res = await gw.chat(stream_body(stream_options={"include_usage": True}))
    assert res.events() == [*chat_chunks("gpt-4o-mini", usage=usage_dict(7, 3)), "[DONE]"]
    rec = await gw.record()
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (7, 3)
    assert rec["response"]["choices"][0]["message"]["content"] == "Hello!"


async def test_stream_comments_and_keepalives_are_relayed(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(7, 3))
    raw = b": OPENROUTER PROCESSING\n\n" + sse(*chunks[:2], done=False) + b": ping\n\n" + sse(*chunks[2:])
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[raw])
    res = await gw.chat(stream_body())
    assert res.body.startswith(b": OPENROUTER PROCESSING\n\n") and b": ping\n\n" in res.body
    assert (await gw.record())["completion_tokens"] == 3


async def test_stream_last_event_without_blank_line(gw: Harness) -> None:
    raw = sse(*chat_chunks("gpt-4o-mini", usage=usage_dict(7, 3)), done=False) + b"data: [DONE]\n"
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[raw])
    res = await gw.chat(stream_body())
    assert res.events()[-1] == "[DONE]"
    rec = await gw.record()
    assert rec["status"] == "success" and rec["completion_tokens"] == 3


async def test_stream_completions(gw: Harness) -> None:
    res = await gw.request("POST", "/v1/completions", {"model": "gpt", "prompt": "Once", "stream": True})
    assert gw.upstream.last.body["stream_options"] == {"include_usage": True}
    texts = [e["choices"][0]["text"] for e in res.events()[:-1]]
    assert texts == ["one", " two", ""] and res.events()[-1] == "[DONE]"
    rec = await gw.record()
    assert rec["call_type"] == "completion" and (rec["prompt_tokens"], rec["completion_tokens"]) == (3, 2)
    assert rec["response"]["choices"] == [{"index": 0, "text": "one two", "finish_reason": "stop"}]
    assert rec["response"]["object"] == "text_completion"


async def test_stream_tool_calls_reassembled(gw: Harness) -> None:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
        chunk({}, "tool_calls"),
        {**head, "choices": [], "usage": usage_dict(20, 9)},
    ]
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*chunks)])
    res = await gw.chat(stream_body())
    assert res.status == 200
    rec = await gw.record()
    (choice,) = rec["response"]["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert rec["ttft_ms"] is not None  # a tool call is content the client got
