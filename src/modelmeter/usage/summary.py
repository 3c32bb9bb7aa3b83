"""The four cards and the charts of a window: totals, latency percentiles, time buckets."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from modelmeter.storage import partitions
from modelmeter.storage.database import Database
from modelmeter.storage.histogram import bin_of, percentile_from_bins
from modelmeter.storage.rollups import HOUR, MINUTE, ROW_COLUMNS, SUM_COLUMNS, accumulate, empty_sums
from modelmeter.units import PICO, iso
from modelmeter.usage import rollup_reads
from modelmeter.usage.window import Window


def summary(
    db: Database,
    deployment: str,
    window: Window,
    tag: str | None = None,
    cache: rollup_reads.BinsCache | None = None,
) -> dict[str, Any]:
    """The cards: from rollups (never a scan of the log), or from the tagged rows for a tag."""
    if tag:
        sums, bins = _tagged_totals(db, deployment, window, tag)
        return _cards(deployment, window, sums, bins)
    t = rollup_reads.totals(db, deployment, window.start_us, window.end_us, cache=cache)
    return _cards(deployment, window, t.sums, t.bins)


def _cards(deployment: str, window: Window, sums: Mapping[str, float], bins: Mapping[Any, int]) -> dict[str, Any]:
    n = int(sums["requests"])
    ok = int(sums["succeeded"])
    result: dict[str, Any] = {
        "deployment": deployment,
        "start": iso(window.start_us),
        "end": iso(window.end_us),
        "requests": n,
        "succeeded": ok,
        "failed": n - ok,
        "success_rate": ok / n if n else None,
        "prompt_tokens": int(sums["prompt_tokens"]),
        "completion_tokens": int(sums["completion_tokens"]),
        "total_tokens": int(sums["total_tokens"]),
        "cached_tokens": int(sums["cached_tokens"]),
        "reasoning_tokens": int(sums["reasoning_tokens"]),
        "spend": int(sums["spend_pusd"]) / PICO,
        "avg_latency_ms": _round(sums["latency_sum"] / n) if n else None,
        "avg_ttft_ms": _round(sums["ttft_sum"] / sums["ttft_count"]) if sums["ttft_count"] else None,
    }
    for q in (50, 95, 99):
        result[f"p{q}_latency_ms"] = percentile_from_bins(bins, q / 100)
    return result


# The figure of each card, compared with the previous window of the same length.
CARD_FIGURES = ("requests", "total_tokens", "spend", "avg_latency_ms")


def summary_with_previous(
    db: Database,
    deployment: str,
    window: Window,
    tag: str | None = None,
    cache: rollup_reads.BinsCache | None = None,
) -> dict[str, Any]:
    """The cards, with the same figures for the window just before (``previous``) and each card's
    relative change (``change``; None when the previous figure is 0 or missing)."""
    before = window.previous()
    if tag:
        result = summary(db, deployment, window, tag)
        prev = summary(db, deployment, before, tag)
    else:  # both windows read together
        now, was = rollup_reads.totals_many(
            db, deployment, [(window.start_us, window.end_us), (before.start_us, before.end_us)], cache=cache
        )
        result = _cards(deployment, window, now.sums, now.bins)
        prev = _cards(deployment, before, was.sums, was.bins)
    prev.pop("deployment")
    result["previous"] = prev
    result["change"] = {f: _change(result[f], prev[f]) for f in CARD_FIGURES}
    return result


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return (now - before) / before


_TAGGED_COLS = ", ".join(f"r.{c}" for c in ROW_COLUMNS)


def _tagged_from(db: Database) -> str:
    return (
        f"FROM record_tags t JOIN records r ON r.id = t.id{partitions.same_day(db, 'r', 't')} "
        "WHERE t.deployment = :dep AND t.tag = :tag AND t.start_us >= :ws AND t.start_us < :we"
    )


def tagged_rows(db: Database, deployment: str, start_us: int, end_us: int, tag: str) -> Iterator[dict[str, Any]]:
    """The rows of one tag in [start, end) (``ROW_COLUMNS`` and start_us): a tag is a small slice."""
    for row in db.fetchall(
        f"SELECT r.start_us, {_TAGGED_COLS} {_tagged_from(db)}",
        {"dep": deployment, "tag": tag, "ws": start_us, "we": end_us},
    ):
        yield dict(zip(("start_us", *ROW_COLUMNS), row, strict=True))


def _tagged_totals(db: Database, deployment: str, window: Window, tag: str) -> tuple[dict[str, float], Counter[int]]:
    """The cards of one tag (e.g. a benchmark run), from its rows: a tag is a small slice."""
    sums = empty_sums()
    bins: Counter[int] = Counter()
    for row in db.fetchall(
        f"SELECT {_TAGGED_COLS} {_tagged_from(db)}",
        {"dep": deployment, "tag": tag, "ws": window.start_us, "we": window.end_us},
    ):
        r = dict(zip(ROW_COLUMNS, row, strict=True))
        accumulate(sums, r)
        bins[bin_of(r["latency_ms"])] += 1
    return sums, bins


def timeseries(
    db: Database,
    deployment: str,
    window: Window,
    tag: str | None = None,
    cache: rollup_reads.PercentileCache | None = None,
) -> dict[str, Any]:
    size = window.bucket_seconds()
    origin = window.bucket_origin_us(size)
    size_us = size * 1_000_000
    count = math.ceil((window.end_us - origin) / size_us)
    if tag:
        sums, bins = _tagged_buckets(db, deployment, window, tag, origin, size_us)
        p95 = {k: percentile_from_bins(b, 0.95) for k, b in bins.items()}
    else:
        sums, p95 = rollup_reads.bucketed(db, deployment, origin, size_us, window.end_us, cache=cache)
    buckets: list[dict[str, Any]] = []
    for k in range(count):
        s = sums.get(k) or dict.fromkeys(SUM_COLUMNS, 0)
        n = int(s["requests"] or 0)
        buckets.append(
            {
                "start": iso(origin + k * size_us),
                "requests": n,
                "errors": n - int(s["succeeded"] or 0),
                "prompt_tokens": int(s["prompt_tokens"] or 0),
                "completion_tokens": int(s["completion_tokens"] or 0),
                "total_tokens": int(s["total_tokens"] or 0),
                "spend": int(s["spend_pusd"] or 0) / PICO,
                "avg_latency_ms": _round(s["latency_sum"] / n) if n else None,
                "p95_latency_ms": p95.get(k),
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


def _tagged_buckets(
    db: Database, deployment: str, window: Window, tag: str, origin: int, size_us: int
) -> tuple[dict[int, dict[str, float]], dict[int, Counter[int]]]:
    sums: dict[int, dict[str, float]] = {}
    bins: dict[int, Counter[int]] = {}
    for row in db.fetchall(
        f"SELECT (r.start_us - :origin) / :size, {_TAGGED_COLS} {_tagged_from(db)}",
        {"dep": deployment, "tag": tag, "ws": origin, "we": window.end_us, "origin": origin, "size": size_us},
    ):
        k = int(row[0])
        r = dict(zip(ROW_COLUMNS, row[1:], strict=True))
        accumulate(sums.setdefault(k, empty_sums()), r)
        bins.setdefault(k, Counter())[bin_of(r["latency_ms"])] += 1
    return sums, bins


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def empty_day() -> dict[str, Any]:
    return {"requests": 0, "failed": 0, "error_rate": None, "spend": 0.0}


def last_day_by_deployment(db: Database, now_us: int | None = None) -> dict[str, dict[str, Any]]:
    """Requests, errors and spend of the last 24 hours for every deployment, from the rollups
    (whole hours, whole minutes, and the raw rows of the minute the day starts in)."""
    import time

    now_us = now_us if now_us is not None else int(time.time() * 1e6)
    totals: dict[str, list[int]] = {}
    parts = rollup_reads.segments(now_us - 86400 * 1_000_000, now_us + 1)
    queries = [
        (
            f"SELECT deployment, SUM(requests), SUM(requests - succeeded), SUM(spend_pusd) FROM {table} "
            "WHERE bucket_us >= :a AND bucket_us < :b GROUP BY deployment",
            parts[name],
        )
        for name, table in (("hour", HOUR.table), ("minute", MINUTE.table))
    ]
    queries.append(
        (
            "SELECT deployment, COUNT(*), SUM(CASE WHEN status = 'success' THEN 0 ELSE 1 END), "
            "SUM(spend_pusd) FROM records WHERE start_us >= :a AND start_us < :b GROUP BY deployment",
            parts["raw"],
        )
    )
    for sql, ranges in queries:
        for a, b in ranges:
            for name, *values in db.fetchall(sql, {"a": a, "b": b}):
                acc = totals.setdefault(name, [0, 0, 0])
                for i, v in enumerate(values):
                    acc[i] += int(v or 0)
    return {
        name: {"requests": n, "failed": failed, "error_rate": failed / n if n else None, "spend": spend / PICO}
        for name, (n, failed, spend) in totals.items()
        if n
    }
