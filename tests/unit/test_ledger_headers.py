"""x-request-id and the upstream headers a client gets (issue 11 item 4), at the ASGI boundary:
what an upstream sends can never inject a header, and only the allowlist passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

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

from modelmeter.gateway.response_headers import passed_headers

DEPLOYMENTS = [{"name": "gpt", "model": "gpt-4o-mini", "provider": "openai", "api_base": "http://upstream.test/v1"}]
MSGS = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(sqlite_url(tmp_path / "gw.db"), DEPLOYMENTS, MemoryUpstream()) as h:
        yield h


def test_only_the_allowlisted_headers_pass() -> None:
    upstream = {
        "X-Request-Id": "req_1",
        "X-RateLimit-Remaining-Tokens": "9000",
        "Retry-After": "2",
        "OpenAI-Processing-Ms": "31",
        "openai-version": "2020-10-01",
        "openai-organization": "org-secret",
        "Set-Cookie": "a=b",
        "Server": "cloudflare",
        "x-ratelimit-limit-requests": "bad\r\nvalue",
    }
    assert sorted(passed_headers(upstream)) == [
        (b"openai-processing-ms", b"31"),
        (b"openai-version", b"2020-10-01"),
        (b"retry-after", b"2"),
        (b"x-ratelimit-remaining-tokens", b"9000"),
    ]


async def test_an_answer_id_that_is_no_header_value_is_not_used(gw: Harness) -> None:
    body = chat_completion("gpt-4o-mini", usage=usage_dict(5, 3))
    body["id"] = "chatcmpl-1\r\nx-injected: yes"
    gw.upstream.respond = lambda call: CannedResponse(200, body)
    res = await gw.chat({"model": "gpt", "messages": MSGS})
    assert res.status == 200 and "x-injected" not in res.headers
    rec = await gw.record()
    assert res.headers["x-request-id"] == rec["request_id"] == rec["id"]


async def test_the_upstreams_request_id_wins_and_is_stored(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(5, 3))
    gw.upstream.respond = lambda call: CannedResponse(
        200,
        chunks=[sse(*chunks)],
        headers={"content-type": "text/event-stream", "x-request-id": "req_abc", "x-ratelimit-remaining-requests": "7"},
    )
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.headers["x-request-id"] == "req_abc" and res.headers["x-ratelimit-remaining-requests"] == "7"
    assert (await gw.record())["request_id"] == "req_abc"


async def test_an_error_the_gateway_answers_names_its_record(gw: Harness) -> None:
    res = await gw.chat({"model": "gpt", "messages": MSGS, "max_tokens": -1})
    assert res.status == 400
    rec = await gw.record()
    assert res.headers["x-request-id"] == rec["request_id"] == rec["id"]
