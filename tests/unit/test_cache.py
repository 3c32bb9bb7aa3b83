"""The response cache (per deployment ``cache_ttl``) and the cap on stored body sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.helpers import CannedResponse, MemoryUpstream, UpstreamCall, default_answer, running_app, sqlite_url

from modelmeter.gateway.cache import ResponseCache, cache_key

BASE = "http://upstream.test/v1"
MSGS = [{"role": "user", "content": "Say hello."}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached_app(tmp_path: Path, upstream: MemoryUpstream | None = None, ttl: Any = "10m", **settings: Any) -> Any:
    deps = [
        {"name": "gpt", "model": "gpt-4o-mini", "api_base": BASE, "cache_ttl": ttl},
        {"name": "plain", "model": "gpt-4o-mini", "api_base": BASE},
    ]
    return running_app(sqlite_url(tmp_path / "c.db"), deps, upstream, **settings)


async def test_an_identical_request_is_answered_from_the_cache(tmp_path: Path) -> None:
    async with cached_app(tmp_path) as h:
        first = await h.chat({"model": "gpt", "messages": MSGS, "temperature": 0})
        assert first.status == 200 and first.headers["x-modelmeter-cache"] == "miss"
        # the same request, its keys in another order
        raw = b'{"temperature": 0, "messages": [{"content": "Say hello.", "role": "user"}], "model": "gpt"}'
        second = await h.request("POST", "/v1/chat/completions", raw)
        assert second.status == 200 and second.headers["x-modelmeter-cache"] == "hit"
        assert second.body == first.body
        assert len(h.upstream.calls) == 1
        miss, hit = await h.records(2)
        assert (miss["cache_hit"], hit["cache_hit"]) == (False, True)
        assert miss["spend"] > 0 and hit["spend"] == 0
        assert hit["price_source"] == "response cache (no upstream call)"
        assert hit["retries"] == 0 and hit["status"] == "success" and hit["http_status"] == 200
        assert (hit["prompt_tokens"], hit["completion_tokens"]) == (11, 3)  # what the cache saved
        assert hit["cached_tokens"] == 0  # not provider prompt caching
        assert hit["response"] == miss["response"]


async def test_different_requests_streams_and_other_deployments_miss(tmp_path: Path) -> None:
    async with cached_app(tmp_path) as h:
        for _ in range(2):
            assert "x-modelmeter-cache" not in (await h.chat({"model": "plain", "messages": MSGS})).headers
            res = await h.chat({"model": "gpt", "messages": MSGS, "stream": True})
            assert res.events()[-1] == "[DONE]" and "x-modelmeter-cache" not in res.headers
        assert len(h.upstream.calls) == 4
        await h.chat({"model": "gpt", "messages": MSGS})
        other = await h.chat({"model": "gpt", "messages": [{"role": "user", "content": "Bye."}]})
        assert other.headers["x-modelmeter-cache"] == "miss"
        emb = {"model": "gpt", "input": "hi"}
        await h.request("POST", "/v1/embeddings", emb)
        assert (await h.request("POST", "/v1/embeddings", emb)).headers["x-modelmeter-cache"] == "hit"
        assert len(h.upstream.calls) == 7


async def test_only_200_answers_are_cached(tmp_path: Path) -> None:
    count = 0

    def respond(call: UpstreamCall) -> CannedResponse:
        nonlocal count
        count += 1
        if count == 1:
            return CannedResponse(400, {"error": {"message": "bad", "type": "invalid_request_error"}})
        return default_answer(call)

    async with cached_app(tmp_path, MemoryUpstream(respond)) as h:
        assert (await h.chat({"model": "gpt", "messages": MSGS})).status == 400
        assert (await h.chat({"model": "gpt", "messages": MSGS})).headers["x-modelmeter-cache"] == "miss"
        assert (await h.chat({"model": "gpt", "messages": MSGS})).headers["x-modelmeter-cache"] == "hit"
        assert len(h.upstream.calls) == 2


async def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    async with cached_app(tmp_path, ttl="30s") as h:
        h.app.gateway.cache.clock = clock
        await h.chat({"model": "gpt", "messages": MSGS})
        clock.now += 29
        assert (await h.chat({"model": "gpt", "messages": MSGS})).headers["x-modelmeter-cache"] == "hit"
        clock.now += 2
        assert (await h.chat({"model": "gpt", "messages": MSGS})).headers["x-modelmeter-cache"] == "miss"
        assert len(h.upstream.calls) == 2


def test_the_cache_is_an_lru_bounded_in_entries_and_bytes() -> None:
    clock = Clock()
    cache = ResponseCache(max_entries=2, max_bytes=1000, clock=clock)
    cache.put("a", b"1" * 10, {}, 60)
    cache.put("b", b"2" * 10, {}, 60)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", b"3" * 10, {}, 60)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.put("big", b"x" * 495, {}, 60)  # 990 of 1000 bytes (counted twice): the others go
    assert len(cache) == 1 and cache.bytes == 990
    cache.put("huge", b"x" * 600, {}, 60)  # larger than the whole cache: not kept
    assert cache.get("huge") is None and cache.get("big") is not None
    clock.now += 61
    assert cache.get("big") is None and len(cache) == 0 and cache.bytes == 0


def test_the_key_ignores_key_order_but_not_values() -> None:
    a = cache_key("gpt", "/v1/chat/completions", {"model": "gpt", "messages": MSGS, "n": 1})
    b = cache_key("gpt", "/v1/chat/completions", {"n": 1, "messages": MSGS, "model": "gpt"})
    assert a == b
    assert a != cache_key("gpt", "/v1/chat/completions", {"model": "gpt", "messages": MSGS, "n": 2})
    assert a != cache_key("gpt", "/v1/completions", {"model": "gpt", "messages": MSGS, "n": 1})
    assert a != cache_key("gpt2", "/v1/chat/completions", {"model": "gpt", "messages": MSGS, "n": 1})


# --- the cap on stored bodies ------------------------------------------------------------------


async def test_large_bodies_are_stored_truncated_and_marked(tmp_path: Path) -> None:
    big = "x" * 5000
    async with cached_app(tmp_path, max_stored_body_bytes=1000) as h:
        await h.chat({"model": "plain", "messages": [{"role": "user", "content": big}], "metadata": {"team": "a"}})
        await h.chat({"model": "plain", "messages": MSGS})
        cut, whole = await h.records(2)
    assert isinstance(cut["request"], str)
    assert len(cut["request"].encode()) == 1000
    assert (
        cut["request"]
        == orjson.dumps(
            {"model": "plain", "messages": [{"role": "user", "content": big}], "metadata": {"team": "a"}}
        ).decode()[:1000]
    )
    assert isinstance(cut["response"], dict)  # small enough: whole
    assert cut["metadata"] == {"team": "a", "bodies_truncated": True}
    assert whole["request"]["messages"] == MSGS and "bodies_truncated" not in whole["metadata"]


@pytest.mark.parametrize("where", ["server", "deployment"])
async def test_store_bodies_false_still_wins(tmp_path: Path, where: str) -> None:
    deps = [
        {
            "name": "plain",
            "model": "gpt-4o-mini",
            "api_base": BASE,
            **({"store_bodies": False} if where == "deployment" else {}),
        }
    ]
    settings: dict[str, Any] = {"max_stored_body_bytes": 100}
    if where == "server":
        settings["store_bodies"] = False
    async with running_app(sqlite_url(tmp_path / "s.db"), deps, **settings) as h:
        await h.chat({"model": "plain", "messages": [{"role": "user", "content": "y" * 500}]})
        rec = await h.record()
    assert rec["request"] is None and rec["response"] is None
    assert "bodies_truncated" not in rec["metadata"]
