"""Insight panels of the Usage tab, from rollups (never a scan of the log; a tag's rows for a tag):
the latency and time-to-first-token distributions, output speed and errors by type over time."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from modelmeter.storage import histogram
from modelmeter.storage.database import Database
from modelmeter.storage.rollups import ERROR_CLASSES, accumulate, empty_sums
from modelmeter.units import iso
from modelmeter.usage import rollup_reads
from modelmeter.usage.summary import tagged_rows
from modelmeter.usage.window import Window

# A distribution's bars: GROUP histogram bins each (1.01**35 = 1.42, about 6.6 bars per decade).
GROUP = 35
QUANTILES = (50, 95, 99)


def bar_of(bin_index: int) -> int:
    return bin_index // GROUP


def bar_edges(bar: int) -> tuple[float, float]:
    """[low, high) in ms of a bar: bin i >= 1 holds [0.01 * 1.01**(i-1), 0.01 * 1.01**i); bin 0 below."""
    first, last = bar * GROUP, bar * GROUP + GROUP - 1
    low = 0.0 if first == 0 else histogram.BIN_FLOOR_MS * histogram.BIN_RATIO ** (first - 1)
    return round(low, 6), round(histogram.BIN_FLOOR_MS * histogram.BIN_RATIO**last, 6)


def describe(bins: Mapping[Any, int]) -> dict[str, Any]:
    """A histogram as the panel shows it: count, p50/p95/p99 and the bars that have requests."""
    bars: Counter[int] = Counter()
    for index, n in bins.items():
        bars[bar_of(int(index))] += n
    out: dict[str, Any] = {"count": sum(bars.values())}
    for q in QUANTILES:
        out[f"p{q}_ms"] = histogram.percentile_from_bins(bins, q / 100)
    out["bars"] = [
        {"low_ms": low, "high_ms": high, "count": bars[b]} for b in sorted(bars) for low, high in [bar_edges(b)]
    ]
    return out


def distributions(
    db: Database,
    deployment: str,
    window: Window,
    tag: str | None = None,
    cache: rollup_reads.BinsCache | None = None,
) -> dict[str, Any]:
    """Latency (every request) and TTFT (requests with a first token) histograms of the window."""
    if tag:
        latency: Counter[str] = Counter()
        ttft: Counter[str] = Counter()
        for r in tagged_rows(db, deployment, window.start_us, window.end_us, tag):
            latency[str(histogram.bin_of(r["latency_ms"]))] += 1
            if r["ttft_ms"] is not None:
                ttft[str(histogram.bin_of(r["ttft_ms"]))] += 1
        lat_bins, ttft_bins = dict(latency), dict(ttft)
    else:
        t = rollup_reads.totals(db, deployment, window.start_us, window.end_us, ttft=True, cache=cache)
        lat_bins, ttft_bins = t.bins, t.ttft_bins
    return {
        "deployment": deployment,
        "start": iso(window.start_us),
        "end": iso(window.end_us),
        "latency": describe(lat_bins),
        "ttft": describe(ttft_bins),
    }


def throughput(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, Any]:
    """Output speed per chart bucket: output tokens per second of request time (all output tokens
    over the sum of the requests' durations) and its inverse, milliseconds of request time per
    output token. Both are ratios of exact sums, so any bucket and window adds up."""
    size, origin, count, sums = chart_sums(db, deployment, window, tag)
    size_us = size * 1_000_000
    buckets = []
    for k in range(count):
        s = sums.get(k) or {}
        tokens = int(s.get("completion_tokens", 0))
        seconds = float(s.get("latency_sum", 0.0)) / 1000
        buckets.append(
            {
                "start": iso(origin + k * size_us),
                "requests": int(s.get("requests", 0)),
                "completion_tokens": tokens,
                "request_seconds": round(seconds, 6),
                "output_tokens_per_s": round(tokens / seconds, 3) if seconds > 0 else None,
                "ms_per_output_token": round(seconds * 1000 / tokens, 3) if tokens else None,
            }
        )
    return {
        "deployment": deployment,
        "bucket_seconds": size,
        "tz": str(window.tz),
        "start": iso(origin),
        "end": iso(window.end_us),
        "buckets": buckets,
    }


def chart_sums(
    db: Database, deployment: str, window: Window, tag: str | None
) -> tuple[int, int, int, dict[int, dict[str, float]]]:
    """The timeseries' buckets (size, origin, count) and their sums, from rollups or a tag's rows."""
    size = window.bucket_seconds()
    origin = window.bucket_origin_us(size)
    size_us = size * 1_000_000
    count = math.ceil((window.end_us - origin) / size_us)
    if not tag:
        return size, origin, count, rollup_reads.bucket_sums(db, deployment, origin, size_us, window.end_us)
    sums: dict[int, dict[str, float]] = {}
    for r in tagged_rows(db, deployment, origin, window.end_us, tag):
        accumulate(sums.setdefault((r["start_us"] - origin) // size_us, empty_sums()), r)
    return size, origin, count, sums


ERROR_NAMES = {c: c.removeprefix("err_") for c in ERROR_CLASSES}


def errors(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, Any]:
    """Failed requests by class per chart bucket, and the window's totals by class."""
    size, origin, count, sums = chart_sums(db, deployment, window, tag)
    size_us = size * 1_000_000
    buckets = []
    totals = dict.fromkeys(ERROR_NAMES.values(), 0)
    for k in range(count):
        s = sums.get(k) or {}
        n = int(s.get("requests", 0))
        by_class = {name: int(s.get(col, 0)) for col, name in ERROR_NAMES.items()}
        for name, v in by_class.items():
            totals[name] += v
        buckets.append(
            {"start": iso(origin + k * size_us), "requests": n, "errors": n - int(s.get("succeeded", 0)), **by_class}
        )
    return {
        "deployment": deployment,
        "bucket_seconds": size,
        "tz": str(window.tz),
        "start": iso(origin),
        "end": iso(window.end_us),
        "classes": list(ERROR_NAMES.values()),
        "totals": totals,
        "buckets": buckets,
    }
