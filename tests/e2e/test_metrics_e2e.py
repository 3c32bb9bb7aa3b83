"""``GET /metrics`` parses with ``prometheus_client``'s own parser, and its per-deployment counters
and histograms equal the usage API's summary of the same calls.

One server, one worker (the counters are per process), SQLite. The load driver is the reliability
suite's (``tests/reliability/support.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, wait_for
from tests.reliability.support import chat_or_fail, run_load, wait_until_stored

pytestmark = pytest.mark.timeout(120)

N = 300
TOKEN_TYPES = ("prompt", "completion", "cached", "reasoning")
# (sample name, labels as sorted pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def deployments(base_url: str) -> list[dict[str, Any]]:
    """A priced model whose fake usage has cached and reasoning tokens (so no token type is always
    0), and one whose upstream always answers 500 (no retries: one call, one record)."""
    return [
        {
            "name": "chat",
            "model": "fake-cached-reasoning",
            "provider": "acme",
            "api_base": base_url,
            "price": {"input": 1.5, "cached_input": 0.5, "output": 6.0},
        },
        {"name": "fail", "model": "fail-500", "provider": "acme", "api_base": base_url, "max_retries": 0},
    ]


def scrape(server: ServerProcess) -> Samples:
    status, text = server.api("GET", "/metrics")
    assert status == 200, text
    assert isinstance(text, str), text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``; absent series count as 0
    (a counter series only appears once something incremented it)."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= set(lbl))


def test_metrics_match_usage_api(fake_upstream: FakeUpstream, make_config: Any, start_server: Any) -> None:
    server = start_server(make_config(deployments=deployments(fake_upstream.base_url)))
    status, _ = server.api("GET", "/metrics", auth=False)
    assert status == 401

    load = asyncio.run(run_load(server.url, N, chat_or_fail, concurrency=32, run_id="metrics"))
    fails = sum(chat_or_fail(i).deployment == "fail" for i in range(N))
    assert Counter(o.status for o in load.outcomes) == {200: N - fails, 500: fails}, load.summary()
    assert all(o.answered for o in load.outcomes), load.summary()

    wait_until_stored(str(make_config.db_path), N, timeout=30)
    # The writer commits a batch before its listener feeds /metrics: wait for that too. On a
    # timeout the assertions below show what /metrics holds.
    with contextlib.suppress(TimeoutError):
        wait_for(
            lambda: total(scrape(server), "modelmeter_requests_total") >= N,
            timeout=10,
            message="/metrics counting every stored call",
        )
    samples = scrape(server)

    for dep in ("chat", "fail"):
        status, summary = server.api("GET", f"/api/deployments/{dep}/usage?window=1h")
        assert status == 200, summary
        requests = total(samples, "modelmeter_requests_total", deployment=dep)
        succeeded = total(samples, "modelmeter_requests_total", deployment=dep, status="success")
        assert summary["requests"] > 0, summary
        assert (requests, succeeded, requests - succeeded) == (
            summary["requests"],
            summary["succeeded"],
            summary["failed"],
        ), (dep, summary)
        tokens = {t: total(samples, "modelmeter_tokens_total", deployment=dep, type=t) for t in TOKEN_TYPES}
        assert tokens == {t: summary[f"{t}_tokens"] for t in TOKEN_TYPES}, (dep, summary)
        assert total(samples, "modelmeter_spend_usd_total", deployment=dep) == pytest.approx(
            summary["spend"], rel=1e-9, abs=1e-12
        ), (dep, summary)
        assert total(samples, "modelmeter_request_latency_seconds_count", deployment=dep) == requests
        # avg_latency_ms is rounded to 0.001 ms: allow that half-unit on each of the requests (and a
        # hair more for float sums: the error can sit exactly on the bound).
        assert total(samples, "modelmeter_request_latency_seconds_sum", deployment=dep) == pytest.approx(
            summary["avg_latency_ms"] * requests / 1000, abs=0.000501 * requests / 1000
        ), (dep, summary)

    # The fake usage makes every token type of "chat" nonzero and prices it, so a series missing
    # from /metrics cannot pass as an agreeing 0.
    assert all(total(samples, "modelmeter_tokens_total", deployment="chat", type=t) > 0 for t in TOKEN_TYPES)
    assert total(samples, "modelmeter_spend_usd_total", deployment="chat") > 0
    assert total(samples, "modelmeter_time_to_first_token_seconds_count", deployment="chat") > 0
    assert total(samples, "modelmeter_recorder_queue_depth") == 0
    assert total(samples, "modelmeter_recorder_records_written") == N
