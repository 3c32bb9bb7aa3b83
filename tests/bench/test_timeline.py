"""The latency timeline a report stores for the comparison's overlay: per-second p50 of the
successful requests, by the second they were sent, counted from the run's first request."""

from __future__ import annotations

import random
import statistics

from modelmeter.bench.metrics import RequestResult
from modelmeter.bench.timeline import MAX_POINTS, latency_timeline


def result(start: float, e2e: float, ok: bool = True) -> RequestResult:
    return RequestResult(ok=ok, start=start, e2e=e2e)


def test_per_second_p50_from_the_first_request() -> None:
    rng = random.Random(7)
    t0 = 1000.0  # perf_counter values: only differences count
    results = [result(t0 + rng.uniform(0, 5), rng.uniform(0.01, 0.5)) for _ in range(200)]
    results.append(result(t0 - 0.5, 9.0, ok=False))  # a failure still starts the clock, never counts
    tl = latency_timeline(results)
    first = t0 - 0.5
    expected: dict[int, list[float]] = {}
    for r in results:
        if r.ok:
            expected.setdefault(int(r.start - first), []).append(r.e2e * 1000)
    assert tl["bucket_s"] == 1
    assert tl["t_s"] == sorted(expected)
    assert tl["requests"] == [len(expected[t]) for t in tl["t_s"]]
    assert sum(tl["requests"]) == 200
    for t, p50 in zip(tl["t_s"], tl["p50_ms"], strict=True):
        assert abs(p50 - statistics.median(expected[t])) < 0.001


def test_a_long_run_gets_wider_buckets_and_no_requests_no_points() -> None:
    long = [result(float(s), 0.1 + s / 10_000) for s in range(0, 3 * MAX_POINTS)]
    tl = latency_timeline(long)
    assert tl["bucket_s"] == 3 and len(tl["t_s"]) <= MAX_POINTS
    assert tl["t_s"][:2] == [0, 3] and tl["requests"][0] == 3
    assert latency_timeline([result(0.0, 1.0, ok=False)])["t_s"] == []
    assert latency_timeline([])["p50_ms"] == []
