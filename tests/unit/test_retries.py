"""Retries of failed upstream requests, and the timeout between a stream's chunks.

The relay's sleep is replaced by one that records its delays, so no test waits on a backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import (
    CannedResponse,
    MemoryUpstream,
    UpstreamCall,
    chat_chunks,
    default_answer,
    running_app,
    sqlite_url,
    sse,
    usage_dict,
)

from modelmeter.config import ConfigError, Deployment
from modelmeter.gateway import relay
from modelmeter.upstreams.client import UpstreamError

BASE = "http://upstream.test/v1"
MSGS = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(relay, "_sleep", fake_sleep)
    monkeypatch.setattr(relay, "_random", lambda: 0.5)
    return slept


def failing(n: int, answer: Any) -> MemoryUpstream:
    """The first ``n`` calls get ``answer`` (a response or an exception), then the default."""
    count = 0

    def respond(call: UpstreamCall) -> CannedResponse | BaseException:
        nonlocal count
        count += 1
        if count <= n:
            return answer() if callable(answer) else answer
        return default_answer(call)

    return MemoryUpstream(respond)


async def app(tmp_path: Path, upstream: MemoryUpstream, **dep: Any) -> Any:
    return running_app(
        sqlite_url(tmp_path / "r.db"), [{"name": "gpt", "model": "gpt-4o-mini", "api_base": BASE, **dep}], upstream
    )


def busy() -> CannedResponse:
    return CannedResponse(503, {"error": {"message": "overloaded", "type": "server_error"}})


async def test_5xx_is_retried_with_backoff_and_counted(tmp_path: Path, delays: list[float]) -> None:
    async with await app(tmp_path, failing(2, busy)) as h:
        res = await h.chat({"model": "gpt", "messages": MSGS})
        assert res.status == 200, res.body
        assert len(h.upstream.calls) == 3
        rec = await h.record()
        assert rec["status"] == "success" and rec["retries"] == 2
        assert rec["prompt_tokens"] == 11
    # full jitter around base 0.1 s doubling: random() = 0.5 gives half of 0.1, then of 0.2
    assert delays == pytest.approx([0.05, 0.1])
    assert all(r.closed for r in h.upstream.responses[:2])


async def test_the_last_failure_is_passed_through(tmp_path: Path, delays: list[float]) -> None:
    async with await app(tmp_path, failing(10, busy), max_retries=1) as h:
        res = await h.chat({"model": "gpt", "messages": MSGS})
        assert res.status == 503 and res.json()["error"]["message"] == "overloaded"
        assert len(h.upstream.calls) == 2
        rec = await h.record()
        assert (rec["status"], rec["http_status"], rec["retries"]) == ("error", 503, 1)
    assert len(delays) == 1


async def test_max_retries_0_disables_them(tmp_path: Path, delays: list[float]) -> None:
    async with await app(tmp_path, failing(1, busy), max_retries=0) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 503
        assert len(h.upstream.calls) == 1 and delays == []
        assert (await h.record())["retries"] == 0


async def test_429_honours_retry_after(tmp_path: Path, delays: list[float]) -> None:
    def limited() -> CannedResponse:
        return CannedResponse(
            429, {"error": {"message": "slow down", "type": "requests"}}, headers={"retry-after": "3"}
        )

    async with await app(tmp_path, failing(1, limited)) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 200
        assert (await h.record())["retries"] == 1
    assert delays == [3.0]


async def test_retry_after_is_capped_and_never_beyond_the_timeout(tmp_path: Path, delays: list[float]) -> None:
    def limited(after: str) -> Any:
        return lambda: CannedResponse(429, {"error": {"message": "slow down"}}, headers={"retry-after": after})

    async with await app(tmp_path, failing(1, limited("3600"))) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 200
    assert delays == [relay.RETRY_AFTER_CAP_S]
    delays.clear()
    # the wait would end after the deployment's timeout: the 429 is passed through at once
    async with await app(tmp_path, failing(5, limited("20")), timeout=5) as h:
        res = await h.chat({"model": "gpt", "messages": MSGS})
        assert res.status == 429 and res.headers["retry-after"] == "20"
        assert len(h.upstream.calls) == 1
        assert (await h.record())["retries"] == 0
    assert delays == []


@pytest.mark.parametrize("kind", ["connect", "protocol"])
async def test_connect_and_protocol_errors_are_retried(tmp_path: Path, delays: list[float], kind: str) -> None:
    async with await app(tmp_path, failing(1, lambda: UpstreamError(kind, "nope"))) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 200
        assert (await h.record())["retries"] == 1


async def test_timeouts_and_4xx_are_not_retried(tmp_path: Path, delays: list[float]) -> None:
    async with await app(tmp_path, failing(1, lambda: UpstreamError("timeout", "slow"))) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 504
        assert len(h.upstream.calls) == 1
    bad = CannedResponse(400, {"error": {"message": "bad", "type": "invalid_request_error"}})
    async with await app(tmp_path, failing(1, bad)) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 400
        assert len(h.upstream.calls) == 1
    assert delays == []


async def test_a_started_stream_is_never_retried(tmp_path: Path, delays: list[float]) -> None:
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(11, 3))

    def broken() -> CannedResponse:
        return CannedResponse(
            200, chunks=[sse(*chunks[:2], done=False)], error=UpstreamError("protocol", "connection reset")
        )

    async with await app(tmp_path, failing(1, broken)) as h:
        res = await h.chat({"model": "gpt", "messages": MSGS, "stream": True})
        assert res.status == 200 and res.complete
        assert "error" in res.events()[-1]
        assert len(h.upstream.calls) == 1
        rec = await h.record()
        assert rec["status"] == "error" and rec["retries"] == 0
    assert delays == []


async def test_a_stream_refused_before_its_first_byte_is_retried(tmp_path: Path, delays: list[float]) -> None:
    async with await app(tmp_path, failing(1, busy)) as h:
        res = await h.chat(
            {"model": "gpt", "messages": MSGS, "stream": True, "stream_options": {"include_usage": True}}
        )
        assert res.status == 200 and res.events()[-1] == "[DONE]"
        rec = await h.record()
        assert rec["status"] == "success" and rec["retries"] == 1


async def test_backoff_counts_as_upstream_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay, "BACKOFF_BASE_S", 0.2)
    monkeypatch.setattr(relay, "_random", lambda: 1.0)
    async with await app(tmp_path, failing(1, busy)) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 200
        rec = await h.record()
        assert rec["retries"] == 1 and rec["latency_ms"] >= 200
        assert rec["overhead_ms"] < 100


def test_backoff_is_exponential_with_full_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay, "_random", lambda: 1.0)
    assert [relay.backoff_delay(a) for a in range(8)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    monkeypatch.setattr(relay, "_random", lambda: 0.0)
    assert relay.backoff_delay(3) == 0.0
    assert relay.retry_after_seconds("1") == 1.0
    assert relay.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert relay.retry_after_seconds(None) is None and relay.retry_after_seconds("-1") is None


def test_deployment_settings() -> None:
    dep = Deployment.from_mapping({"name": "a", "api_base": BASE})
    assert (dep.max_retries, dep.chunk_timeout, dep.cache_ttl) == (2, 60.0, None)
    dep = Deployment.from_mapping(
        {"name": "a", "api_base": BASE, "max_retries": 0, "chunk_timeout": 0.5, "cache_ttl": "10m"}
    )
    assert (dep.max_retries, dep.chunk_timeout, dep.cache_ttl) == (0, 0.5, 600.0)
    for ttl, seconds in (("30s", 30.0), ("2h", 7200.0), (45, 45.0), ("1.5m", 90.0), ("20", 20.0)):
        assert Deployment.from_mapping({"name": "a", "api_base": BASE, "cache_ttl": ttl}).cache_ttl == seconds
    for bad in (
        {"max_retries": -1},
        {"chunk_timeout": 0},
        {"cache_ttl": "soon"},
        {"cache_ttl": "-5s"},
        {"max_retries": "many"},
    ):
        with pytest.raises(ConfigError):
            Deployment.from_mapping({"name": "a", "api_base": BASE, **bad})


# --- the timeout between chunks ---------------------------------------------------------------


class Stalling(CannedResponse):
    """Sends its first ``after`` chunks, then nothing for a long time."""

    def __init__(self, chunks: list[bytes], after: int) -> None:
        super().__init__(200, chunks=chunks)
        self.after = after

    async def chunks(self) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(self._chunks):
            if i == self.after:
                await asyncio.sleep(30)
            yield chunk


async def test_a_stalled_stream_ends_with_an_error_and_its_tokens_so_far(tmp_path: Path) -> None:
    chunks = chat_chunks("gpt-4o-mini", pieces=("one", " two", " three"), usage=usage_dict(11, 3))
    events = [sse(c, done=False) for c in chunks] + [sse(done=True)]
    upstream = MemoryUpstream(lambda call: Stalling(events, after=2))
    async with await app(tmp_path, upstream, chunk_timeout=0.05) as h:
        res = await asyncio.wait_for(h.chat({"model": "gpt", "messages": MSGS, "stream": True}), 3)
        assert res.status == 200 and res.complete
        last = res.events()[-1]
        assert last["error"]["code"] == "upstream_timeout"
        assert h.upstream.responses[0].closed
        rec = await h.record()
        assert rec["status"] == "error" and rec["http_status"] == 504
        assert rec["error"].startswith("upstream_timeout")
        assert rec["completion_tokens"] >= 1  # "one" was relayed: estimated from the text so far


async def test_a_steady_stream_is_not_cut(tmp_path: Path) -> None:
    def steady(call: UpstreamCall) -> CannedResponse:
        chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(11, 3))
        return CannedResponse(200, chunks=[sse(c, done=False) for c in chunks] + [sse(done=True)], delay=0.01)

    async with await app(tmp_path, MemoryUpstream(steady), chunk_timeout=0.2) as h:
        res = await h.chat({"model": "gpt", "messages": MSGS, "stream": True})
        assert res.events()[-1] == "[DONE]"
        assert (await h.record())["status"] == "success"
