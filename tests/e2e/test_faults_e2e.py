"""Upstream faults end to end: the real server against the fake upstream's misbehaving models —
retries (flaky, 5xx, 429 with Retry-After), the timeout between stream chunks, and the response
cache."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, http_json, sqlite_url, write_config

MSGS = [{"role": "user", "content": "Say hello."}]
RUN = uuid.uuid4().hex[:8]  # the fake counts requests per model: names of our own
MODELS = {
    "flaky": f"e2e-{RUN}-flaky-2",
    "fail": f"e2e-{RUN}-fail-500",
    "limited": f"e2e-{RUN}-rate-limited",
    "slow": f"e2e-{RUN}-slow-stream",
    "cache": f"e2e-{RUN}-answers",
}


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("faults")
    base = fake_upstream.base_url
    deployments: list[dict[str, Any]] = [
        {"name": "flaky", "model": MODELS["flaky"], "api_base": base},
        {"name": "fail", "model": MODELS["fail"], "api_base": base, "max_retries": 1},
        {"name": "limited", "model": MODELS["limited"], "api_base": base, "max_retries": 1},
        {"name": "slow", "model": MODELS["slow"], "api_base": base, "chunk_timeout": 0.1},
        {
            "name": "cached",
            "model": MODELS["cache"],
            "api_base": base,
            "cache_ttl": "10m",
            "price": {"input": 1, "output": 2},
        },
    ]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    with ServerProcess(config, log_dir=tmp / "server") as srv:
        yield srv


@pytest.fixture
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)


def model_calls(fake: FakeUpstream, name: str) -> int:
    return int(fake.stats()["models"].get(MODELS[name], 0))


def test_a_flaky_upstream_is_retried_to_success(
    server: ServerProcess, client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    out = client.chat.completions.create(model="flaky", messages=MSGS)  # type: ignore[arg-type]
    assert out.choices[0].message.content
    assert model_calls(fake_upstream, "flaky") == 3
    [rec] = server.wait_for_records("flaky", 1)
    assert rec["status"] == "success" and rec["retries"] == 2


def test_a_failing_upstream_is_passed_through_after_its_retries(server: ServerProcess) -> None:
    status, body = http_json("POST", f"{server.base_url}/chat/completions", {"model": "fail", "messages": MSGS})
    assert status == 500 and body["error"]["type"] == "server_error"
    [rec] = server.wait_for_records("fail", 1)
    assert (rec["status"], rec["http_status"], rec["retries"]) == ("error", 500, 1)


def test_rate_limits_honour_retry_after(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    t = time.monotonic()
    status, body = http_json("POST", f"{server.base_url}/chat/completions", {"model": "limited", "messages": MSGS})
    elapsed = time.monotonic() - t
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert elapsed >= 1.0  # Retry-After: 1
    assert model_calls(fake_upstream, "limited") == 2
    [rec] = server.wait_for_records("limited", 1)
    assert (rec["http_status"], rec["retries"]) == (429, 1)


def test_a_stalled_stream_ends_with_an_error(server: ServerProcess, client: openai.OpenAI) -> None:
    t = time.monotonic()
    stream = client.chat.completions.create(model="slow", messages=MSGS, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert "no chunk" in str(info.value)
    assert time.monotonic() - t < 2  # not the 7 x 300 ms of the whole stream
    [rec] = server.wait_for_records("slow", 1)
    assert rec["status"] == "error" and rec["error"].startswith("upstream_timeout")
    assert rec["completion_tokens"] >= 0


def test_identical_requests_are_answered_from_the_cache(
    server: ServerProcess, client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    first = client.chat.completions.with_raw_response.create(model="cached", messages=MSGS)  # type: ignore[arg-type]
    second = client.chat.completions.with_raw_response.create(model="cached", messages=MSGS)  # type: ignore[arg-type]
    assert first.headers["x-modelmeter-cache"] == "miss"
    assert second.headers["x-modelmeter-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert model_calls(fake_upstream, "cache") == 1
    hit, miss = server.wait_for_records("cached", 2)
    assert (miss["cache_hit"], hit["cache_hit"]) == (False, True)
    assert miss["spend"] > 0 and hit["spend"] == 0
    assert hit["prompt_tokens"] == miss["prompt_tokens"] > 0
    assert hit["price_source"] == "response cache (no upstream call)"
