"""The agent front doors end to end (issue 12): /v1/messages (+ count_tokens) through the official
anthropic SDK and /v1/responses through the official openai SDK, pass-through to fake upstreams of
each shape reporting exact usage (tests/fakes/doors.py). Every record's tokens equal the
upstream's, spend is the sum of tokens x each component's rate, and the breakdown adds up to it."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.fakes import doors as fk
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, http_json, sqlite_url, wait_for, write_config

RUN = uuid.uuid4().hex[:8]
# USD per million tokens, one distinct rate per component: a token priced at another component's
# rate shows in the spend.
PRICE = {"input": 3, "cached_input": "0.3", "cache_write": "3.75", "cache_write_1h": 6, "output": 15, "reasoning": 17}
KEY_ENV = "DOORS_FAKE_ANTHROPIC_KEY"
KEY = f"sk-ant-fake-{RUN}"
MSG = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("doors")
    base = fake_upstream.base_url
    deployments: list[dict[str, Any]] = [
        {
            "name": "claude",
            "model": f"claude-{RUN}-cached",
            "provider": "anthropic",
            "api_base": base,
            "api_key_env": KEY_ENV,
            "price": PRICE,
        },
        {
            "name": "claude-fail",
            "model": f"claude-{RUN}-fail-400",
            "provider": "anthropic",
            "api_base": base,
            "price": PRICE,
            "max_retries": 0,
        },
        {
            "name": "claude-slow",
            "model": f"claude-{RUN}-slow-stream",
            "provider": "anthropic",
            "api_base": base,
            "price": PRICE,
        },
        {"name": "resp", "model": f"resp-{RUN}-cached-reasoning", "api": "responses", "api_base": base, "price": PRICE},
        {"name": "chat", "model": "fake-model", "api_base": base, "price": PRICE},
        {
            "name": "claude-broken",
            "model": f"claude-{RUN}-stream-error",
            "provider": "anthropic",
            "api_base": base,
            "price": PRICE,
        },
        {
            "name": "resp-broken",
            "model": f"resp-{RUN}-stream-error",
            "api": "responses",
            "api_base": base,
            "price": PRICE,
        },
    ]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    with ServerProcess(config, log_dir=tmp / "server", env={KEY_ENV: KEY}) as srv:
        yield srv


def claude(server: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="client-key", max_retries=0, timeout=20)


def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)


def record_of(server: ServerProcess, deployment: str, request_id: str | None) -> dict[str, Any]:
    rows = wait_for(
        lambda: [r for r in server.records(deployment) if r["request_id"] == request_id],
        10,
        message=f"the record of {request_id}",
    )
    return server.record(rows[0]["id"])


def expected(**tokens: int) -> Decimal:
    return sum((Decimal(str(PRICE[c])) * n for c, n in tokens.items()), Decimal(0)) / 10**6


def assert_priced(rec: dict[str, Any], **tokens: int) -> None:
    """Each component's tokens and rate as expected; spend == their sum == the breakdown's sum."""
    lines = {c["component"]: c for c in rec["cost_breakdown"]}
    for comp, n in tokens.items():
        assert lines[comp]["tokens"] == n, (comp, lines)
    assert Decimal(str(rec["spend"])) == expected(**tokens) > 0
    assert sum(Decimal(str(c["cost"])) for c in rec["cost_breakdown"]) == Decimal(str(rec["spend"]))


MESSAGES_TOKENS = dict(
    input=fk.INPUT_TOKENS,
    cached_input=fk.CACHE_READ,
    cache_write=fk.CACHE_WRITE_5M,
    cache_write_1h=fk.CACHE_WRITE_1H,
    output=7,
)


def test_messages_whole(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    raw = claude(server).messages.with_raw_response.create(
        model="claude",
        max_tokens=7,
        messages=MSG,
        extra_headers={"anthropic-beta": "fake-beta-1"},  # type: ignore[arg-type]
    )
    msg = raw.parse()
    assert msg.content[0].text == "tok0 tok1 tok2 tok3 tok4 tok5 tok6"  # type: ignore[union-attr]
    assert msg.usage.cache_creation is not None and msg.usage.cache_creation.ephemeral_1h_input_tokens == 40
    sent = fake_upstream.stats()["last_by_path"]["/v1/messages"]
    assert sent["headers"]["x-api-key"] == KEY  # the upstream key, as Anthropic wants it
    assert "authorization" not in sent["headers"]
    assert sent["headers"]["anthropic-version"] and sent["headers"]["anthropic-beta"] == "fake-beta-1"
    assert sent["body"]["model"] == f"claude-{RUN}-cached"
    rec = record_of(server, "claude", raw.headers["x-request-id"])
    assert rec["call_type"] == "messages" and rec["status"] == "success"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS + fk.CACHE_READ + fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert rec["cached_tokens"] == fk.CACHE_READ and rec["completion_tokens"] == 7
    assert_priced(rec, **MESSAGES_TOKENS)
    assert rec["response"]["id"] == msg.id and rec["request"]["messages"] == MSG


def test_messages_streamed(server: ServerProcess) -> None:
    with claude(server).messages.stream(model="claude", max_tokens=7, messages=MSG) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
    rows = wait_for(lambda: [r for r in server.records("claude") if r["stream"]], 10, message="streamed record")
    rec = server.record(rows[0]["id"])
    assert rec["call_type"] == "messages" and rec["status"] == "success" and rec["request_id"] == final.id
    assert rec["prompt_tokens"] == final.usage.input_tokens + fk.CACHE_READ + fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert_priced(rec, **MESSAGES_TOKENS)
    assert rec["response"]["content"] == [{"type": "text", "text": text}]
    assert rec["ttft_ms"] is not None and rec["ttft_ms"] <= rec["latency_ms"]


def test_count_tokens_is_free(server: ServerProcess) -> None:
    got = claude(server).messages.count_tokens(model="claude", messages=MSG)  # type: ignore[arg-type]
    assert got.input_tokens == fk.INPUT_TOKENS
    rec = wait_for(lambda: [r for r in server.records("claude") if r["call_type"] == "count_tokens"], 10)[0]
    assert rec["call_type"] == "count_tokens" and rec["status"] == "success"
    assert Decimal(str(rec["spend"])) == 0 and rec["usage_estimated"] in (0, False)


def test_messages_upstream_error_in_anthropic_shape(server: ServerProcess) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude(server).messages.create(model="claude-fail", max_tokens=7, messages=MSG)  # type: ignore[arg-type]
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    rec = server.wait_for_records("claude-fail", 1)[0]
    assert rec["status"] == "error" and rec["http_status"] == 400 and rec["call_type"] == "messages"


def test_messages_errors_of_ours_in_anthropic_shape(server: ServerProcess) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        claude(server).messages.create(model="nope", max_tokens=7, messages=MSG)  # type: ignore[arg-type]
    assert info.value.body["type"] == "error" and "nope" in info.value.body["error"]["message"]  # type: ignore[index]
    # Token counting in front of a Responses upstream: no translation (test_translated_e2e.py and
    # test_translated_responses_e2e.py have the pairs there are): a clear 400 in Anthropic's shape, recorded.
    with pytest.raises(anthropic.BadRequestError) as info:
        claude(server).messages.count_tokens(model="resp", messages=MSG)  # type: ignore[arg-type]
    assert "translation" in info.value.body["error"]["message"]  # type: ignore[index]
    rec = wait_for(lambda: [r for r in server.records("resp") if r["call_type"] == "count_tokens"], 10)[0]
    assert rec["http_status"] == 400


def test_messages_hang_up_recorded(server: ServerProcess) -> None:
    body = orjson.dumps({"model": "claude-slow", "max_tokens": 7, "stream": True, "messages": MSG})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"}
    conn.request("POST", "/v1/messages", body, headers)
    resp = conn.getresponse()
    assert resp.status == 200
    assert b"message_start" in resp.read1(65536)  # the first events, then hang up
    conn.sock.close()  # type: ignore[union-attr]
    conn.close()
    rec = server.wait_for_records("claude-slow", 1)[0]
    assert rec["status"] == "error" and rec["http_status"] == 499 and rec["call_type"] == "messages"


RESP_TOKENS = dict(input=fk.INPUT_TOKENS, cached_input=fk.CACHE_READ, output=7, reasoning=fk.REASONING)


def test_responses_whole_and_by_id(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    client = oai(server)
    raw = client.responses.with_raw_response.create(model="resp", input="Say hello.", max_output_tokens=7)
    r = raw.parse()
    assert r.output_text == "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
    rec = record_of(server, "resp", raw.headers["x-request-id"])
    assert rec["call_type"] == "responses" and rec["status"] == "success"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS + fk.CACHE_READ and rec["cached_tokens"] == fk.CACHE_READ
    assert rec["completion_tokens"] == 7 + fk.REASONING and rec["reasoning_tokens"] == fk.REASONING
    assert_priced(rec, **RESP_TOKENS)
    # By id: routed to the deployment that served it.
    assert client.responses.retrieve(r.id).id == r.id
    items = client.responses.input_items.list(r.id)
    assert items.data[0].content[0].text == "Say hello."  # type: ignore[union-attr]
    assert client.responses.cancel(r.id).id == r.id
    client.responses.delete(r.id)
    assert fake_upstream.stats()["last"]["method"] == "DELETE"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)  # gone upstream: its 404 passed through


def test_responses_by_id_fallback_model_param(server: ServerProcess) -> None:
    status, body = http_json("GET", f"{server.base_url}/responses/resp_unknown1")
    assert (status == 404 and body["error"]["code"] == "not_found") or status == 404
    status, body = http_json("GET", f"{server.base_url}/responses/resp_unknown1?model=nosuch")
    assert status == 404 and body["error"]["param"] == "model"


def test_responses_streamed(server: ServerProcess) -> None:
    with oai(server).responses.stream(model="resp", input="Say hello.", max_output_tokens=7) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "tok0 tok1 tok2 tok3 tok4 tok5 tok6" == final.output_text
    rows = wait_for(lambda: [r for r in server.records("resp") if r["stream"]], 10, message="streamed record")
    rec = server.record(rows[0]["id"])
    assert rec["call_type"] == "responses" and rec["status"] == "success"
    assert rec["response"]["id"] == final.id and rec["response"]["status"] == "completed"
    assert_priced(rec, **RESP_TOKENS)


def test_responses_error_in_openai_shape(server: ServerProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(server).responses.create(model="claude", input="hi", previous_response_id="resp_x")  # no state there
    assert info.value.code == "untranslatable" and info.value.param == "previous_response_id"


def test_mid_stream_failures_recorded(server: ServerProcess) -> None:
    """An upstream that fails mid-stream says so in the stream: the client sees it, the record is
    an error with the usage reported so far."""
    with (
        pytest.raises(anthropic.APIStatusError),
        claude(server).messages.stream(
            model="claude-broken",
            max_tokens=7,
            messages=MSG,  # type: ignore[arg-type]
        ) as stream,
    ):
        stream.get_final_message()
    rec = server.wait_for_records("claude-broken", 1)[0]
    assert rec["status"] == "error" and "overloaded_error" in rec["error"] and rec["call_type"] == "messages"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS  # message_start's usage

    events = list(oai(server).responses.create(model="resp-broken", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    rec = server.wait_for_records("resp-broken", 1)[0]
    assert rec["status"] == "error" and "server_error" in rec["error"] and rec["call_type"] == "responses"
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS and rec["completion_tokens"] == 7
