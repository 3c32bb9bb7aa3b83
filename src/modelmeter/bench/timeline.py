"""A run's latency over time, stored with its report so that runs can be overlaid on one chart
(the Runs page's comparison): the p50 end-to-end latency of the successful requests sent in each
bucket of seconds since the run's first request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

from modelmeter.bench.metrics import RequestResult, percentile

MAX_POINTS = 600  # a long run gets wider buckets: a report stays small whatever the duration


class LatencyTimeline(TypedDict):
    bucket_s: int  # width of a bucket; t_s is its start
    t_s: list[int]  # seconds since the run's first request was sent (buckets without requests left out)
    p50_ms: list[float]  # p50 end-to-end latency of the successful requests sent in the bucket
    requests: list[int]  # how many there were


def latency_timeline(results: Sequence[RequestResult]) -> LatencyTimeline:
    ok = [r for r in results if r.ok]
    if not ok:
        return {"bucket_s": 1, "t_s": [], "p50_ms": [], "requests": []}
    origin = min(r.start for r in results)
    span = max(r.start for r in ok) - origin
    bucket = max(1, math.ceil(span / MAX_POINTS))
    buckets: dict[int, list[float]] = {}
    for r in ok:
        buckets.setdefault(int((r.start - origin) // bucket), []).append(r.e2e * 1000.0)
    keys = sorted(buckets)
    return {
        "bucket_s": bucket,
        "t_s": [k * bucket for k in keys],
        "p50_ms": [round(percentile(sorted(buckets[k]), 50), 3) for k in keys],
        "requests": [len(buckets[k]) for k in keys],
    }
