"""What agents do through the front doors (issue 12's SDK list), through the official openai and
anthropic SDKs against a running gateway that requires virtual keys, and fake upstreams reporting
known usage (tests/fakes/doors.py): tool calls and their results, reasoning usage, background
responses, previous_response_id chains, 5 min and 1 h cache writes, both of Anthropic's ways to send
a key, the errors of ours in each API's shape, and a hang-up mid-stream. Exact ledger checks: tokens
equal the fake's, spend is Σ tokens × each component's rate, the breakdown adds up to it."""

from __future__ import annotations

import http.client
import time
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
from tests.helpers import ServerProcess, sqlite_url, write_config

RUN = uuid.uuid4().hex[:8]
PRICE = {"input": 3, "cached_input": "0.3", "cache_write": "3.75", "cache_write_1h": 6, "output": 15, "reasoning": 17}
KEY_ENV = "AGENTS_FAKE_ANTHROPIC_KEY"
MAX_BODY = 64 * 1024
MSG = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("agents")
    base = fake_upstream.base_url

    def resp(name: str, flags: str = "reasoning") -> dict[str, Any]:
        return {"name": name, "model": f"{name}-{RUN}-{flags}", "api": "responses", "api_base": base, "price": PRICE}

    def claude(name: str, flags: str = "") -> dict[str, Any]:
        model = f"claude-{name}-{RUN}{flags}"
        return {"name": name, "model": model, "provider": "anthropic", "api_base": base, "price": PRICE}

    deployments = [
        resp("resp-tools", "reasoning-tool-call"),
        resp("resp-bg"),
        resp("resp-chain"),
        resp("resp-keys"),
        resp("resp-slow", "slow-stream"),
        claude("claude-tools", "-tool-call"),
        {**claude("claude-cache", "-cached"), "api_key_env": KEY_ENV},
        claude("claude-keys"),
    ]
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "mm.db"),
        require_keys=True,
        max_body_bytes=MAX_BODY,
        deployments=deployments,
    )
    with ServerProcess(config, log_dir=tmp / "server", env={KEY_ENV: f"sk-ant-{RUN}"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    status, created = server.api("POST", "/api/keys", {"alias": "agent"})
    assert status == 201, created
    return str(created["key"])


def oai(server: ServerProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=20)


def claude(server: ServerProcess, **auth: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, max_retries=0, timeout=20, **auth)  # type: ignore[arg-type]


def expected(**tokens: int) -> Decimal:
    return sum((Decimal(str(PRICE[c])) * n for c, n in tokens.items()), Decimal(0)) / 10**6


def assert_priced(rec: dict[str, Any], **tokens: int) -> None:
    """Each component's tokens as the fake reported, each at its own rate; spend == their sum ==
    the breakdown's sum; no other component costs anything."""
    lines = {c["component"]: c for c in rec["cost_breakdown"]}
    for comp, n in tokens.items():
        assert lines[comp]["tokens"] == n, (comp, lines)
        assert Decimal(str(lines[comp]["usd_per_million"])) == Decimal(str(PRICE[comp])), (comp, lines)
    assert Decimal(str(rec["spend"])) == expected(**tokens) > 0
    assert sum(Decimal(str(c["cost"])) for c in rec["cost_breakdown"]) == Decimal(str(rec["spend"]))


def records(server: ServerProcess, deployment: str, n: int, **query: Any) -> list[dict[str, Any]]:
    """The deployment's n records (exactly n), oldest first, whole."""
    rows = server.wait_for_records(deployment, n, **query)
    assert len(server.records(deployment, **query)) == n, (deployment, query)
    return [server.record(r["id"]) for r in reversed(rows)]


def totals(server: ServerProcess, deployment: str) -> tuple[int, Decimal]:
    status, summary = server.api("GET", f"/api/deployments/{deployment}/usage?window=1h")
    assert status == 200, summary
    return summary["total_tokens"], Decimal(str(summary["spend"]))


# -- Responses ----------------------------------------------------------------------------------


def test_responses_function_tool_and_reasoning(server: ServerProcess, key: str) -> None:
    client = oai(server, key)
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}]
    first = client.responses.create(model="resp-tools", input="Weather in Paris?", tools=tools, max_output_tokens=5)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == fk.TOOL_ARGS
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens == fk.REASONING
    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'}
    second = client.responses.create(
        model="resp-tools",
        input=[*first.output, result],
        tools=tools,
        max_output_tokens=5,  # type: ignore[list-item]
    )
    assert second.output_text == 'The tool said: {"temp_c": 21}'  # the fake quotes the tool's result
    recs = records(server, "resp-tools", 2)
    assert [r["response"]["output"][0]["type"] for r in recs] == ["function_call", "message"]
    assert recs[1]["request"]["input"][-1]["type"] == "function_call_output"
    for rec in recs:
        assert rec["call_type"] == "responses" and rec["key_alias"] == "agent" and not rec["usage_estimated"]
        assert rec["prompt_tokens"] == fk.INPUT_TOKENS and rec["completion_tokens"] == 5 + fk.REASONING
        assert rec["reasoning_tokens"] == fk.REASONING
        assert_priced(rec, input=fk.INPUT_TOKENS, output=5, reasoning=fk.REASONING)


def test_background_then_retrieve(server: ServerProcess, key: str) -> None:
    client = oai(server, key)
    made = client.responses.create(model="resp-bg", input="Think hard.", background=True, max_output_tokens=6)
    assert made.status == "queued" and made.usage is None
    seen = [made.status]
    got = made
    for _ in range(20):
        got = client.responses.retrieve(made.id)
        seen.append(got.status)
        if got.status == "completed":
            break
        time.sleep(0.05)
    assert seen == ["queued", *["in_progress"] * fk.BACKGROUND_POLLS, "completed"]
    assert got.output_text == "tok0 tok1 tok2 tok3 tok4 tok5"
    client.responses.retrieve(made.id)  # once more: its usage is not counted again
    create = records(server, "resp-bg", 1, call_type="responses")[0]
    gets = records(server, "resp-bg", fk.BACKGROUND_POLLS + 2, call_type="responses_get")
    # Queued: no usage yet, and none estimated.
    assert create["status"] == "success" and create["total_tokens"] == 0 and not create["usage_estimated"]
    assert Decimal(str(create["spend"])) == 0
    # The retrieve that saw it finished carries its usage, once.
    finished = gets[fk.BACKGROUND_POLLS]
    assert finished["response"]["status"] == "completed" and finished["key_alias"] == "agent"
    assert finished["prompt_tokens"] == fk.INPUT_TOKENS and finished["completion_tokens"] == 6 + fk.REASONING
    assert_priced(finished, input=fk.INPUT_TOKENS, output=6, reasoning=fk.REASONING)
    for rec in [*gets[: fk.BACKGROUND_POLLS], gets[-1]]:
        assert rec["total_tokens"] == 0 and Decimal(str(rec["spend"])) == 0 and not rec["usage_estimated"]
    assert totals(server, "resp-bg") == (finished["total_tokens"], Decimal(str(finished["spend"])))


def test_previous_response_id_chain(server: ServerProcess, key: str, fake_upstream: FakeUpstream) -> None:
    client = oai(server, key)
    first = client.responses.create(model="resp-chain", input="Remember 7.", max_output_tokens=3)
    # No model: the chain continues on the deployment that served its previous response.
    second = client.responses.create(previous_response_id=first.id, input="What number?", max_output_tokens=4)
    assert second.previous_response_id == first.id and second.output_text == "tok0 tok1 tok2 tok3"
    sent = fake_upstream.stats()["last_by_path"]["/v1/responses"]["body"]
    assert sent["model"] == f"resp-chain-{RUN}-reasoning" and sent["previous_response_id"] == first.id
    recs = records(server, "resp-chain", 2)
    assert [r["response"]["id"] for r in recs] == [first.id, second.id]
    assert recs[1]["request"]["previous_response_id"] == first.id
    for rec, n in zip(recs, (3, 4), strict=True):
        assert_priced(rec, input=fk.INPUT_TOKENS, output=n, reasoning=fk.REASONING)
    # A chain whose start this gateway does not know, without a model: a clear 400.
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(previous_response_id="resp_elsewhere", input="hi")
    assert info.value.code == "missing_required_parameter"


def test_hang_up_mid_stream_recorded(server: ServerProcess, key: str) -> None:
    body = orjson.dumps({"model": "resp-slow", "input": "Say hello.", "stream": True, "max_output_tokens": 7})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    conn.request("POST", "/v1/responses", body, headers)
    resp = conn.getresponse()
    assert resp.status == 200
    seen = b""
    while b"response.output_text.delta" not in seen:
        seen += resp.read1(65536)  # the first text, then hang up
    conn.sock.close()  # type: ignore[union-attr]
    conn.close()
    rec = server.record(server.wait_for_records("resp-slow", 1)[0]["id"])
    assert rec["status"] == "error" and rec["http_status"] == 499 and rec["call_type"] == "responses"
    assert rec["key_alias"] == "agent"
    # The usage so far: no final response came, so it is estimated from the request and the text seen.
    assert rec["usage_estimated"] and rec["prompt_tokens"] > 0 and 1 <= rec["completion_tokens"] < 7
    assert rec["response"]["status"] == "in_progress"
    lines = {c["component"]: c["tokens"] for c in rec["cost_breakdown"]}
    assert lines["input"] == rec["prompt_tokens"] and lines["output"] == rec["completion_tokens"]
    assert Decimal(str(rec["spend"])) == expected(input=rec["prompt_tokens"], output=rec["completion_tokens"])


# -- Messages -----------------------------------------------------------------------------------


def test_messages_tool_use_then_result(server: ServerProcess, key: str) -> None:
    client = claude(server, api_key=key)
    tools: Any = [{"name": "get_weather", "description": "Weather of a city", "input_schema": WEATHER}]
    first = client.messages.create(model="claude-tools", max_tokens=5, messages=MSG, tools=tools)  # type: ignore[arg-type]
    use = first.content[0]
    assert first.stop_reason == "tool_use" and use.type == "tool_use" and use.input == fk.TOOL_ARGS
    turns: Any = [
        *MSG,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21 °C"}]},
    ]
    second = client.messages.create(model="claude-tools", max_tokens=5, messages=turns, tools=tools)
    assert second.stop_reason == "end_turn" and second.content[0].text == "The tool said: 21 °C"  # type: ignore[union-attr]
    recs = records(server, "claude-tools", 2)
    assert recs[0]["response"]["content"][0]["type"] == "tool_use"
    assert recs[1]["request"]["messages"][-1]["content"][0]["type"] == "tool_result"
    for rec in recs:
        assert rec["call_type"] == "messages" and rec["key_alias"] == "agent"
        assert rec["prompt_tokens"] == fk.INPUT_TOKENS and rec["completion_tokens"] == 5
        assert_priced(rec, input=fk.INPUT_TOKENS, output=5)


def test_cache_control_5m_and_1h_writes(server: ServerProcess, key: str, fake_upstream: FakeUpstream) -> None:
    system: Any = [
        {"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "Today's notes.", "cache_control": {"type": "ephemeral"}},
    ]
    msg = claude(server, api_key=key).messages.create(model="claude-cache", max_tokens=4, system=system, messages=MSG)  # type: ignore[arg-type]
    cc = msg.usage.cache_creation
    assert cc is not None and (cc.ephemeral_5m_input_tokens, cc.ephemeral_1h_input_tokens) == (80, 40)
    sent = fake_upstream.stats()["last_by_path"]["/v1/messages"]
    assert sent["body"]["system"] == system and sent["headers"]["x-api-key"] == f"sk-ant-{RUN}"
    rec = records(server, "claude-cache", 1)[0]
    writes = fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS + fk.CACHE_READ + writes and rec["cached_tokens"] == fk.CACHE_READ
    # The 5 min and 1 h writes at their own rates (3.75 and 6 per million), each in the breakdown.
    assert_priced(
        rec,
        input=fk.INPUT_TOKENS,
        cached_input=fk.CACHE_READ,
        cache_write=fk.CACHE_WRITE_5M,
        cache_write_1h=fk.CACHE_WRITE_1H,
        output=4,
    )


def test_anthropic_key_as_x_api_key_and_as_bearer(server: ServerProcess, key: str) -> None:
    for auth in ({"api_key": key}, {"auth_token": key}):
        raw = claude(server, **auth).messages.with_raw_response.create(model="claude-keys", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
        assert raw.parse().content[0].text == "tok0 tok1"  # type: ignore[union-attr]
    recs = records(server, "claude-keys", 2, status="success")
    assert [r["key_alias"] for r in recs] == ["agent", "agent"]
    for rec in recs:
        assert_priced(rec, input=fk.INPUT_TOKENS, output=2)


def test_errors_of_ours_in_each_apis_shape(server: ServerProcess) -> None:
    status, tight = server.api("POST", "/api/keys", {"alias": "tight", "rpm": 1})
    assert status == 201, tight
    status, other = server.api("POST", "/api/keys", {"alias": "tight-oai", "rpm": 1})
    assert status == 201, other
    big = [{"role": "user", "content": "x" * (MAX_BODY + 10)}]

    # /v1/messages: Anthropic's shape, the SDK's exception for each status.
    with pytest.raises(anthropic.AuthenticationError) as bad:
        claude(server, api_key="sk-wrong").messages.create(model="claude-keys", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude(server, api_key=tight["key"]).messages.create(model="nope", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError) as large:
        claude(server, api_key=tight["key"]).messages.create(model="claude-keys", max_tokens=2, messages=big)  # type: ignore[arg-type]
    assert large.value.status_code == 413
    assert large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    client = claude(server, auth_token=tight["key"])
    client.messages.create(model="claude-keys", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="claude-keys", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(limited.value.response.headers["retry-after"]) >= 1

    # /v1/responses: OpenAI's shape.
    with pytest.raises(openai.AuthenticationError) as obad:
        oai(server, "sk-wrong").responses.create(model="resp-keys", input="hi")
    assert obad.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as omissing:
        oai(server, other["key"]).responses.create(model="nope", input="hi")
    assert omissing.value.code == "model_not_found"
    with pytest.raises(openai.APIStatusError) as olarge:
        oai(server, other["key"]).responses.create(model="resp-keys", input="x" * (MAX_BODY + 10))
    assert olarge.value.status_code == 413 and olarge.value.code == "request_too_large"
    oclient = oai(server, other["key"])
    oclient.responses.create(model="resp-keys", input="hi", max_output_tokens=2)
    with pytest.raises(openai.RateLimitError) as olimited:
        oclient.responses.create(model="resp-keys", input="hi", max_output_tokens=2)
    assert olimited.value.code == "rate_limit_exceeded"
    assert int(olimited.value.response.headers["retry-after"]) >= 1

    # Recorded where the request named a deployment (a wrong key, a limit); an unknown model or a
    # body too large to read names none.
    for dep, alias in (("claude-keys", "tight"), ("resp-keys", "tight-oai")):
        errors = server.wait_for_records(dep, 2, status="error")
        assert len(server.records(dep, status="error")) == 2
        assert sorted(r["http_status"] for r in errors) == [401, 429]
        assert {r["http_status"]: r["key_alias"] for r in errors} == {401: None, 429: alias}
        for rec in errors:
            assert Decimal(str(server.record(rec["id"])["spend"])) == 0
