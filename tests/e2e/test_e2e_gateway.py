"""End to end: the real server (a subprocess) in front of the fake upstream, driven by the official
``openai`` client, with records read back through the usage API.

Most tests share one server (module scope) and tell their records apart by a unique tag sent in
``x-modelmeter-tags``; the ones that need their own server (secrets in the logs, restarts, signals)
start one with the ``start_server`` fixture.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import signal
import time
import urllib.error
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from modelmeter.metering import tokens
from modelmeter.metering.pricing import GENAI_SOURCE
from tests.fakes.upstream import FakeUpstream
from tests.helpers import (
    ServerProcess,
    closed_port_url,
    http_json,
    read_sqlite_records,
    run_cli,
    sqlite_url,
    wait_for,
    write_config,
)

KEY_ENV = "MM_E2E_UPSTREAM_KEY"
SECRET = "sk-e2e-upstream-secret-51f0c2a9"
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}]
PROMPT = (3 + 2) + (3 + 3)  # the fake counts 3 + words per message
TEXT7 = "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
MAX_BODY = 65536
M = Decimal(10) ** 6


def deployments(fake: FakeUpstream) -> list[dict[str, Any]]:
    base = fake.base_url
    return [
        {"name": "gpt", "model": "gpt-4o-mini", "provider": "openai", "api_base": base, "api_key_env": KEY_ENV},
        {"name": "emb", "model": "text-embedding-3-small", "provider": "openai", "api_base": base},
        {
            "name": "cached",
            "model": "fake-cached",
            "provider": "acme",
            "api_base": base,
            "price": {"input": 1.0, "cached_input": 0.25, "output": 2.0},
        },
        {"name": "mystery", "model": "fake-model", "provider": "acme", "api_base": base},
        {
            "name": "nousage",
            "model": "no-usage",
            "provider": "acme",
            "api_base": base,
            "price": {"input": 1.0, "output": 3.0},
        },
        {"name": "slow", "model": "slow-stream", "provider": "acme", "api_base": base},
        {"name": "cut", "model": "cut-stream", "provider": "acme", "api_base": base},
        {"name": "fail", "model": "fail-500", "provider": "acme", "api_base": base},
        {"name": "limited", "model": "rate-limited", "provider": "acme", "api_base": base},
        {"name": "hang", "model": "hang", "provider": "acme", "api_base": base, "timeout": 1.0},
        {"name": "down", "model": "gpt-4o-mini", "provider": "openai", "api_base": closed_port_url()},
        {"name": "stats", "model": "gpt-4o-mini", "provider": "openai", "api_base": base},
    ]


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("e2e")
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "mm.db"),
        max_body_bytes=MAX_BODY,
        deployments=deployments(fake_upstream),
    )
    with ServerProcess(config, env={KEY_ENV: SECRET}, log_dir=tmp / "server") as proc:
        yield proc


def new_tag() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def client_for(server: ServerProcess, tag: str | None = None, **kw: Any) -> openai.OpenAI:
    headers = {"x-modelmeter-tags": tag} if tag else {}
    return openai.OpenAI(
        base_url=server.base_url, api_key="sk-client-e2e", max_retries=0, timeout=30, default_headers=headers, **kw
    )


def record_of(server: ServerProcess, deployment: str, tag: str, n: int = 1) -> dict[str, Any]:
    """The newest record carrying ``tag``, whole (with bodies); waits for ``n`` such records."""
    rows = server.wait_for_records(deployment, n, tag=tag)
    return server.record(rows[0]["id"])


def dec(x: float) -> Decimal:
    return Decimal(repr(x))


def assert_record_basics(rec: dict[str, Any]) -> None:
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"):
        assert isinstance(rec[name], int) and rec[name] >= 0
    assert rec["total_tokens"] == rec["prompt_tokens"] + rec["completion_tokens"]
    assert rec["client_ip"] == "127.0.0.0"
    assert rec["overhead_ms"] >= 0 and rec["latency_ms"] > 0
    if rec["ttft_ms"] is not None:
        assert 0 <= rec["ttft_ms"] <= rec["latency_ms"]
    assert rec["start_time"].endswith("Z") and rec["start_time"] <= rec["end_time"]
    assert sum((dec(c["cost"]) for c in rec["cost_breakdown"]), Decimal(0)) == dec(rec["spend"])
    assert SECRET not in orjson.dumps(rec).decode()


def gpt_spend(prompt: int, completion: int) -> Decimal:
    return Decimal(prompt) * Decimal("0.15") / M + Decimal(completion) * Decimal("0.6") / M


# --- successful calls -------------------------------------------------------------------------


def test_models(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    ids = [m.id for m in client_for(server).models.list()]
    assert ids == [d["name"] for d in deployments(fake_upstream)]


def test_chat(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    tag = new_tag()
    r = client_for(server, tag).chat.completions.create(
        model="gpt",
        messages=MSGS,
        max_tokens=5,
        temperature=0.2,
        seed=3,
        user="alice",
        metadata={"team": "search"},
        extra_body={"vendor_option": {"x": [1, 2]}},
    )
    assert r.choices[0].message.content == "tok0 tok1 tok2 tok3 tok4" and r.model == "gpt-4o-mini"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (PROMPT, 5)
    seen = fake_upstream.stats()["last_by_path"]["/v1/chat/completions"]
    assert seen["body"]["model"] == "gpt-4o-mini" and seen["headers"]["authorization"] == f"Bearer {SECRET}"
    for key, value in {
        "messages": MSGS,
        "max_tokens": 5,
        "temperature": 0.2,
        "seed": 3,
        "user": "alice",
        "metadata": {"team": "search"},
        "vendor_option": {"x": [1, 2]},
    }.items():
        assert seen["body"][key] == value, key
    assert "stream_options" not in seen["body"]

    rec = record_of(server, "gpt", tag)
    assert_record_basics(rec)
    assert (rec["deployment"], rec["model"], rec["model_id"]) == ("gpt", "gpt", "gpt-4o-mini")
    assert rec["provider"] == "openai"
    assert (rec["call_type"], rec["status"], rec["http_status"], rec["error"]) == ("chat", "success", 200, None)
    assert rec["api_base"] == fake_upstream.base_url and rec["request_id"] == r.id
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (r.usage.prompt_tokens, r.usage.completion_tokens)
    assert rec["usage_estimated"] is False and rec["stream"] is False
    assert rec["ttft_ms"] == rec["latency_ms"]
    assert dec(rec["spend"]) == gpt_spend(PROMPT, 5) and rec["price_source"] == GENAI_SOURCE
    assert rec["metadata"] == {"team": "search", "user": "alice", "tags": [tag]}
    assert rec["request"]["messages"] == MSGS and rec["request"]["model"] == "gpt"
    assert rec["response"]["id"] == r.id
    assert rec["response"]["choices"][0]["message"]["content"] == r.choices[0].message.content


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_streamed(server: ServerProcess, fake_upstream: FakeUpstream, include_usage: bool) -> None:
    tag = new_tag()
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(client_for(server, tag).chat.completions.create(model="gpt", messages=MSGS, stream=True, **extra))
    seen = fake_upstream.stats()["last_by_path"]["/v1/chat/completions"]
    assert seen["body"]["stream_options"] == {"include_usage": True}  # always asked for upstream
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT7
    usage_chunks = [c for c in chunks if c.usage]
    rec = record_of(server, "gpt", tag)
    if include_usage:
        assert len(usage_chunks) == 1 and chunks[-1].choices == [] and chunks[-1].usage is not None
        assert (rec["prompt_tokens"], rec["completion_tokens"]) == (
            chunks[-1].usage.prompt_tokens,
            chunks[-1].usage.completion_tokens,
        )
    else:
        assert usage_chunks == [] and all(c.choices for c in chunks)  # the usage chunk stayed with us
    assert_record_basics(rec)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["usage_estimated"]) == (PROMPT, 7, False)
    assert rec["stream"] is True and rec["status"] == "success" and rec["request_id"] == chunks[0].id
    assert 0 < rec["ttft_ms"] <= rec["latency_ms"]
    assert dec(rec["spend"]) == gpt_spend(PROMPT, 7)
    choice = rec["response"]["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": TEXT7} and choice["finish_reason"] == "stop"
    assert rec["request"] == {"model": "gpt", "messages": MSGS, "stream": True, **extra}


def test_completions(server: ServerProcess) -> None:
    tag = new_tag()
    client = client_for(server, tag)
    r = client.completions.create(model="gpt", prompt="one two three", max_tokens=4)
    assert r.choices[0].text == "tok0 tok1 tok2 tok3"
    chunks = list(client.completions.create(model="gpt", prompt="one two", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == TEXT7 and all(not c.usage for c in chunks)
    streamed, whole = server.wait_for_records("gpt", 2, tag=tag)
    assert (whole["call_type"], whole["prompt_tokens"], whole["completion_tokens"]) == ("completion", 3, 4)
    assert (streamed["call_type"], streamed["prompt_tokens"], streamed["completion_tokens"]) == ("completion", 2, 7)
    assert streamed["stream"] is True and dec(streamed["spend"]) == gpt_spend(2, 7)
    body = server.record(streamed["id"])["response"]
    assert body["choices"][0]["text"] == TEXT7 and body["choices"][0]["finish_reason"] == "stop"


def test_embeddings(server: ServerProcess) -> None:
    tag = new_tag()
    r = client_for(server, tag).embeddings.create(model="emb", input=["a b", "c"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 384 and r.usage.prompt_tokens == 3
    rec = record_of(server, "emb", tag)
    assert_record_basics(rec)
    assert (rec["call_type"], rec["prompt_tokens"], rec["completion_tokens"]) == ("embedding", 3, 0)
    assert dec(rec["spend"]) == Decimal(3) * Decimal("0.02") / M
    assert rec["request"]["input"] == ["a b", "c"] and rec["ttft_ms"] == rec["latency_ms"]


def test_cached_tokens_priced_by_override(server: ServerProcess) -> None:
    tag = new_tag()
    r = client_for(server, tag).chat.completions.create(model="cached", messages=MSGS)
    cached = r.usage.prompt_tokens_details.cached_tokens
    assert cached == PROMPT // 2 > 0
    rec = record_of(server, "cached", tag)
    assert rec["cached_tokens"] == cached and rec["price_source"] == "override"
    expected = (Decimal(PROMPT - cached) * 1 + Decimal(cached) * Decimal("0.25") + Decimal(7) * 2) / M
    assert dec(rec["spend"]) == expected
    assert {c["component"]: c["tokens"] for c in rec["cost_breakdown"]} == {
        "input": PROMPT - cached,
        "cached_input": cached,
        "output": 7,
    }


def test_unknown_model_costs_nothing(server: ServerProcess) -> None:
    tag = new_tag()
    client_for(server, tag).chat.completions.create(model="mystery", messages=MSGS)
    rec = record_of(server, "mystery", tag)
    assert rec["spend"] == 0 and rec["price_source"] == "unknown" and rec["prompt_tokens"] == PROMPT


@pytest.mark.parametrize("stream", [False, True])
def test_no_usage_is_estimated(server: ServerProcess, stream: bool) -> None:
    tag = new_tag()
    client = client_for(server, tag)
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="nousage", messages=MSGS, stream=True, stream_options={"include_usage": True}
            )
        )
        assert all(c.usage is None for c in chunks)
    else:
        assert client.chat.completions.create(model="nousage", messages=MSGS).usage is None
    rec = record_of(server, "nousage", tag)
    assert rec["usage_estimated"] is True and rec["status"] == "success"
    assert rec["prompt_tokens"] == tokens.count_chat_prompt(MSGS, "no-usage") > 0
    assert rec["completion_tokens"] == tokens.count_text(TEXT7, "no-usage") > 0
    assert dec(rec["spend"]) == (Decimal(rec["prompt_tokens"]) + 3 * Decimal(rec["completion_tokens"])) / M


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deployment", "status", "exc"),
    [
        ("fail", 500, openai.InternalServerError),
        ("limited", 429, openai.RateLimitError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_pass_through(
    server: ServerProcess, deployment: str, status: int, exc: type, stream: bool
) -> None:
    tag = new_tag()
    with pytest.raises(exc) as info:
        client_for(server, tag).chat.completions.create(model=deployment, messages=MSGS, stream=stream)
    assert info.value.status_code == status
    if status == 429:
        assert info.value.response.headers["retry-after"] == "1"
        assert info.value.body["code"] == "rate_limit_exceeded"
    rec = record_of(server, deployment, tag)
    assert (rec["status"], rec["http_status"]) == ("error", status)
    assert rec["error"] == info.value.body["message"] and rec["response"]["error"]["message"] == rec["error"]
    assert rec["prompt_tokens"] == rec["completion_tokens"] == 0 and rec["stream"] is stream


def test_upstream_timeout(server: ServerProcess) -> None:
    tag = new_tag()
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client_for(server, tag).chat.completions.create(model="hang", messages=MSGS)
    assert 0.9 < time.monotonic() - t0 < 5
    assert info.value.status_code == 504 and info.value.body["code"] == "upstream_timeout"
    rec = record_of(server, "hang", tag)
    assert (rec["status"], rec["http_status"]) == ("error", 504) and rec["latency_ms"] >= 900


def test_upstream_unreachable(server: ServerProcess) -> None:
    tag = new_tag()
    with pytest.raises(openai.APIStatusError) as info:
        client_for(server, tag).chat.completions.create(model="down", messages=MSGS, stream=True)
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_connect"
    assert "127.0.0.1" in info.value.body["message"]
    rec = record_of(server, "down", tag)
    assert (rec["status"], rec["http_status"], rec["stream"]) == ("error", 502, True)


def test_client_disconnects_mid_stream(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    tag = new_tag()
    before = fake_upstream.stats()["disconnects"].get("/v1/chat/completions", 0)
    stream = client_for(server, tag).chat.completions.create(model="slow", messages=MSGS, max_tokens=30, stream=True)
    it = iter(stream)
    got = [next(it), next(it)]
    stream.close()  # hang up: 28 tokens (8 s) still to come
    assert got[1].choices[0].delta.content == "tok0"
    rec = record_of(server, "slow", tag)
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 499, "client_disconnected")
    assert rec["completion_tokens"] > 0 and rec["usage_estimated"] is True  # what was produced
    assert rec["latency_ms"] < 5000 and rec["ttft_ms"] <= rec["latency_ms"]
    assert rec["response"]["choices"][0]["message"]["content"].startswith("tok0")
    # the gateway dropped its upstream call too: the fake saw its client go away
    wait_for(
        lambda: fake_upstream.stats()["disconnects"].get("/v1/chat/completions", 0) > before,
        5,
        message="the fake upstream seeing the disconnect",
    )


def test_stream_cut_by_the_upstream(server: ServerProcess) -> None:
    tag = new_tag()
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:  # in-band error event, not a connection error
        for chunk in client_for(server, tag).chat.completions.create(model="cut", messages=MSGS, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert not isinstance(info.value, openai.APIConnectionError)
    assert got == ["", "tok0", " tok1", " tok2"]
    rec = record_of(server, "cut", tag)
    assert (rec["status"], rec["http_status"]) == ("error", 502) and "broke off" in rec["error"]
    assert rec["completion_tokens"] == tokens.count_text("tok0 tok1 tok2", "cut-stream") > 0
    assert rec["response"]["choices"][0]["message"]["content"] == "tok0 tok1 tok2"


def test_stream_cut_ends_cleanly_at_the_http_level(server: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "POST",
        "/v1/chat/completions",
        orjson.dumps({"model": "cut", "messages": MSGS, "stream": True}),
        {"content-type": "application/json"},
    )
    resp = conn.getresponse()
    body = resp.read()  # raises IncompleteRead if the chunked body did not end properly
    conn.close()
    assert resp.status == 200 and b"tok2" in body and b"[DONE]" not in body
    last = body.strip().split(b"\n\n")[-1]
    assert orjson.loads(last.removeprefix(b"data: "))["error"]["code"] == "upstream_502"


BAD = [
    (b"{oops", 400, "invalid_json"),
    (b"[]", 400, "invalid_json"),
    (b'{"messages": []}', 400, "missing_required_parameter"),
    (b'{"model": "gpt"}', 400, "missing_required_parameter"),
    (b'{"model": "gpt", "messages": [{"content": "x"}]}', 400, "invalid_type"),
    (b'{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "stream": 1}', 400, "invalid_type"),
    (b'{"model": "nope", "messages": []}', 404, "model_not_found"),
    (
        b'{"model": "gpt", "messages": [{"role": "user", "content": "' + b"x" * MAX_BODY + b'"}]}',
        413,
        "request_too_large",
    ),
    (
        b'{"model": "gpt", "extra": ' + b"[" * 500 + b"]" * 500 + b', "messages": [{"role": "user"}]}',
        400,
        "invalid_json",
    ),
]


def test_bad_input_never_crashes(server: ServerProcess) -> None:
    for body, status, code in BAD:
        got, answer = server.api("POST", "/v1/chat/completions", body)
        assert got == status, (body[:60], got, answer)
        assert set(answer) == {"error"} and set(answer["error"]) == {"message", "type", "param", "code"}
        assert answer["error"]["code"] == code
    assert server.api("POST", "/v1/embeddings", {"model": "emb", "input": "x", "stream": True})[0] == 400
    assert server.api("GET", "/v1/chat/completions")[0] == 405
    assert server.api("POST", "/v1/nothing-here", {})[0] == 404
    assert server.proc is not None and server.proc.poll() is None
    # the good request still works
    r = client_for(server).chat.completions.create(model="gpt", messages=MSGS)
    assert r.choices[0].message.content == TEXT7


# --- the usage API ---------------------------------------------------------------------------


def test_usage_api(server: ServerProcess) -> None:
    client = client_for(server)
    for n in (1, 2, 3):
        client.chat.completions.create(model="stats", messages=MSGS, max_tokens=n)
    assert server.api("POST", "/v1/chat/completions", {"model": "stats"})[0] == 400  # recorded, failed
    rows = server.wait_for_records("stats", 4)
    assert [r["status"] for r in rows] == ["error", "success", "success", "success"]  # newest first

    status, usage = server.api("GET", "/api/deployments/stats/usage?window=1h")
    assert status == 200
    assert (usage["requests"], usage["succeeded"], usage["failed"], usage["success_rate"]) == (4, 3, 1, 0.75)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (3 * PROMPT, 6)
    assert usage["total_tokens"] == 3 * PROMPT + 6
    assert dec(usage["spend"]) == gpt_spend(3 * PROMPT, 6)
    assert 0 < usage["p50_latency_ms"] <= usage["p95_latency_ms"] <= usage["p99_latency_ms"]
    assert usage["avg_latency_ms"] > 0 and usage["avg_ttft_ms"] > 0

    status, series = server.api("GET", "/api/deployments/stats/usage/timeseries?window=1h")
    assert status == 200 and series["bucket_seconds"] > 0
    assert sum(b["requests"] for b in series["buckets"]) == 4 and sum(b["errors"] for b in series["buckets"]) == 1
    assert sum(b["completion_tokens"] for b in series["buckets"]) == 6

    # keyset pages, newest first by (start_time, id)
    status, first = server.api("GET", "/api/deployments/stats/requests?window=1h&limit=3")
    assert status == 200 and len(first["data"]) == 3 and first["next_cursor"]
    status, second = server.api(
        "GET", f"/api/deployments/stats/requests?window=1h&limit=3&cursor={first['next_cursor']}"
    )
    assert status == 200 and len(second["data"]) == 1 and second["next_cursor"] is None
    paged = first["data"] + second["data"]
    assert [r["id"] for r in paged] == [r["id"] for r in rows]
    keys = [(r["start_time"], r["id"]) for r in paged]
    assert keys == sorted(keys, reverse=True)
    status, errors = server.api("GET", "/api/deployments/stats/requests?window=1h&status=error")
    assert status == 200 and [r["http_status"] for r in errors["data"]] == [400]
    assert len(server.records("stats", status="success")) == 3

    for query, param in (
        ("limit=201", "limit"),
        ("limit=0", "limit"),
        ("cursor=%25%25garbage", "cursor"),
        ("status=meh", "status"),
        ("window=2h", "window"),
    ):
        status, err = server.api("GET", f"/api/deployments/stats/requests?{query}")
        assert status == 400, (query, err)
        assert set(err["error"]) == {"message", "type", "param", "code"} and err["error"]["param"] == param, err
    status, err = server.api("GET", "/api/requests/does-not-exist")
    assert status == 404 and err["error"]["code"] == "request_not_found"
    status, err = server.api("GET", "/api/deployments/nope/usage?window=1h")
    assert status == 404 and set(err) == {"error"}


# --- secrets --------------------------------------------------------------------------------


def test_upstream_key_never_reaches_records_api_or_logs(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Any
) -> None:
    config = make_config(
        deployments=[
            {"name": "keyed", "model": "gpt-4o-mini", "api_base": fake_upstream.base_url, "api_key_env": KEY_ENV},
            {"name": "keyed-fail", "model": "fail-500", "api_base": fake_upstream.base_url, "api_key_env": KEY_ENV},
        ]
    )
    server = start_server(config, env={KEY_ENV: SECRET}, args=["--log-level", "debug"])
    client = client_for(server)
    r = client.chat.completions.create(model="keyed", messages=MSGS)
    assert fake_upstream.stats()["last"]["headers"]["authorization"] == f"Bearer {SECRET}"
    list(client.chat.completions.create(model="keyed", messages=MSGS, stream=True))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="keyed-fail", messages=MSGS)
    rows = server.wait_for_records("keyed", 2) + server.wait_for_records("keyed-fail", 1)
    texts = [orjson.dumps(server.record(row["id"])).decode() for row in rows]
    assert r.id in texts[1]
    for path in (
        "/api/deployments",
        "/api/deployments/keyed",
        "/api/deployments/keyed/requests?window=1h",
        "/api/deployments/keyed/requests/export?window=1h&format=jsonl",
        "/v1/models",
        "/readyz",
    ):
        status, body = server.api("GET", path)
        assert status == 200, path
        texts.append(body if isinstance(body, str) else orjson.dumps(body).decode())
    assert server.stop() is not None
    texts += [server.stdout, server.stderr]
    assert all(SECRET not in t for t in texts)
    assert KEY_ENV in texts[3]  # the variable's name is shown, never its value


# --- run-time deployments -------------------------------------------------------------------


def test_runtime_deployments_survive_a_restart(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Any
) -> None:
    config = make_config(deployments=[{"name": "gpt", "model": "gpt-4o-mini", "api_base": fake_upstream.base_url}])
    server = start_server(config)
    definition = {
        "name": "rt",
        "api_base": fake_upstream.base_url,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "price": {"input": 2.0, "output": 4.0},
    }
    status, dep = server.api("POST", "/api/deployments", definition)
    assert status == 201 and dep["name"] == "rt" and dep["source"] == "api"
    assert dep["price"] == {"input": 2.0, "output": 4.0}
    status, err = server.api("POST", "/api/deployments", definition)
    assert status == 409 and err["error"]["code"] == "deployment_conflict"
    status, err = server.api("POST", "/api/deployments", {"name": "bad", "provider": "openai"})
    assert status == 400 and "api_base" in err["error"]["message"]
    status, err = server.api("POST", "/api/deployments", {"name": "bad", "api_base": "http://x", "api_key": "sk-1"})
    assert status == 400

    # the CLI talks to the same API
    added = run_cli(
        "deploy",
        "add",
        "rt2",
        "--api-base",
        fake_upstream.base_url,
        "--model",
        "fake-model",
        "--price",
        '{"input": 1, "output": 1}',
        "--url",
        server.url,
    )
    assert added.returncode == 0 and "added rt2" in added.stdout, added.stderr
    listed = run_cli("deploy", "list", "--json", "--url", server.url)
    assert listed.returncode == 0, listed.stderr
    by_name = {d["name"]: d for d in orjson.loads(listed.stdout)}
    assert set(by_name) == {"gpt", "rt", "rt2"} and by_name["rt2"]["reachable"] is True
    assert by_name["gpt"]["source"] == "config" and by_name["rt2"]["source"] == "api"
    assert "rt2" in run_cli("deploy", "list", "--url", server.url).stdout
    client = client_for(server)
    assert client.chat.completions.create(model="rt2", messages=MSGS).choices[0].message.content == TEXT7
    removed = run_cli("deploy", "remove", "rt2", "--url", server.url)
    assert removed.returncode == 0 and "removed rt2" in removed.stdout
    refused = run_cli("deploy", "remove", "gpt", "--url", server.url)
    assert refused.returncode != 0 and "409" in refused.stderr
    assert server.api("DELETE", "/api/deployments/gpt")[0] == 409
    assert server.api("DELETE", "/api/deployments/nope")[0] == 404

    r = client.chat.completions.create(model="rt", messages=MSGS, max_tokens=2)
    rec = server.wait_for_records("rt", 1)[0]
    assert rec["request_id"] == r.id
    assert dec(rec["spend"]) == (Decimal(PROMPT) * 2 + Decimal(2) * 4) / M

    # restart on the same database: rt is back, rt2 stays removed, the records are kept
    assert server.stop() is not None
    server = start_server(config)
    status, listed_after = server.api("GET", "/api/deployments")
    assert status == 200 and {d["name"] for d in listed_after["data"]} == {"gpt", "rt"}
    assert [m.id for m in client_for(server).models.list()] == ["gpt", "rt"]
    client_for(server).chat.completions.create(model="rt", messages=MSGS)
    assert len(server.wait_for_records("rt", 2)) == 2
    assert server.api("DELETE", "/api/deployments/rt")[0] == 204
    with pytest.raises(openai.NotFoundError):
        client_for(server).chat.completions.create(model="rt", messages=MSGS)


# --- stopping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_in_flight_requests_and_flushes(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Any, sig: int
) -> None:
    n = 16
    config = make_config(deployments=[{"name": "slow", "model": "slow-stream", "api_base": fake_upstream.base_url}])
    server = start_server(config)
    before = fake_upstream.stats()["models"].get("slow-stream", 0)
    client = client_for(server)

    def call(i: int) -> str:  # each takes ~0.6 s upstream (3 tokens, 0.3 s apart)
        if i % 2:
            return "".join(
                c.choices[0].delta.content or ""
                for c in client.chat.completions.create(model="slow", messages=MSGS, max_tokens=3, stream=True)
                if c.choices
            )
        r = client.chat.completions.create(model="slow", messages=MSGS, max_tokens=3)
        return r.choices[0].message.content or ""

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(call, i) for i in range(n)]
        wait_for(
            lambda: fake_upstream.stats()["models"].get("slow-stream", 0) - before >= n,
            10,
            message="all requests in flight upstream",
        )
        server.send_signal(sig)

        # it stops taking requests at once ...
        def refused() -> bool:
            try:
                http_json("GET", f"{server.url}/healthz", timeout=1)
            except (urllib.error.URLError, ConnectionError):
                return True
            return False

        wait_for(refused, 2, interval=0.01, message="new connections refused")
        # ... and finishes those in flight
        results = [f.result(timeout=30) for f in futures]
    assert results == ["tok0 tok1 tok2"] * n
    rc = server.wait(30)
    rows = read_sqlite_records(Path(make_config.db_path))  # straight from the file
    assert len(rows) == n
    assert all(r["status"] == "success" and r["completion_tokens"] == 3 for r in rows)
    assert sum(r["stream"] for r in rows) == n // 2
    assert rc == 0, f"`modelmeter serve` exited {rc} on {signal.Signals(sig).name}"
