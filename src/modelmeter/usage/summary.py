"""The four cards and the charts of a window: totals, latency percentiles, time buckets."""

from __future__ import annotations

import math
from typing import Any

from modelmeter.metering.record import PICO, iso
from modelmeter.storage.database import Database
from modelmeter.usage.window import Window


def _scope(deployment: str, window: Window, tag: str | None) -> tuple[str, str, dict[str, Any]]:
    params: dict[str, Any] = {"dep": deployment, "ws": window.start_us, "we": window.end_us}
    if tag:
        params["tag"] = tag
        return ("record_tags t JOIN records r ON r.id = t.id",
                "t.deployment = :dep AND t.tag = :tag AND t.start_us >= :ws AND t.start_us < :we",
                params)
    return "records r", "r.deployment = :dep AND r.start_us >= :ws AND r.start_us < :we", params


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(math.ceil(q * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def summary(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, Any]:
    source, where, params = _scope(deployment, window, tag)
    row = db.fetchone(
        "SELECT COUNT(*), SUM(CASE WHEN r.status = 'success' THEN 1 ELSE 0 END), "
        "SUM(r.prompt_tokens), SUM(r.completion_tokens), SUM(r.total_tokens), "
        "SUM(r.cached_tokens), SUM(r.reasoning_tokens), SUM(r.spend_pusd), AVG(r.latency_ms), "
        f"AVG(r.ttft_ms) FROM {source} WHERE {where}", params)
    assert row is not None
    n = int(row[0] or 0)
    ok = int(row[1] or 0)
    result: dict[str, Any] = {
        "deployment": deployment,
        "start": iso(window.start_us),
        "end": iso(window.end_us),
        "requests": n,
        "succeeded": ok,
        "failed": n - ok,
        "success_rate": ok / n if n else None,
        "prompt_tokens": int(row[2] or 0),
        "completion_tokens": int(row[3] or 0),
        "total_tokens": int(row[4] or 0),
        "cached_tokens": int(row[5] or 0),
        "reasoning_tokens": int(row[6] or 0),
        "spend": int(row[7] or 0) / PICO,
        "avg_latency_ms": _round(row[8]),
        "avg_ttft_ms": _round(row[9]),
    }
    for q in (50, 95, 99):
        result[f"p{q}_latency_ms"] = _rank(db, source, where, params, n, q / 100)
    return result


def _rank(db: Database, source: str, where: str, params: dict[str, Any], n: int,
          q: float) -> float | None:
    if n == 0:
        return None
    offset = max(math.ceil(q * n), 1) - 1
    row = db.fetchone(f"SELECT r.latency_ms FROM {source} WHERE {where} "
                      "ORDER BY r.latency_ms LIMIT 1 OFFSET :off", params | {"off": offset})
    return _round(row[0]) if row else None


def timeseries(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, Any]:
    size = window.bucket_seconds()
    origin = window.bucket_origin_us(size)
    size_us = size * 1_000_000
    source, where, params = _scope(deployment, window, tag)
    params |= {"origin": origin, "size": size_us}
    rows = db.fetchall(
        "SELECT (r.start_us - :origin) / :size AS b, r.status, r.prompt_tokens, "
        f"r.completion_tokens, r.spend_pusd, r.latency_ms FROM {source} WHERE {where}", params)
    count = math.ceil((window.end_us - origin) / size_us)
    buckets: list[dict[str, Any]] = [
        {"start": iso(origin + i * size_us), "requests": 0, "errors": 0, "prompt_tokens": 0,
         "completion_tokens": 0, "total_tokens": 0, "spend_pusd": 0, "latencies": []}
        for i in range(count)
    ]
    for b, status, prompt, completion, spend, latency in rows:
        bucket = buckets[int(b)]
        bucket["requests"] += 1
        bucket["errors"] += status != "success"
        bucket["prompt_tokens"] += prompt
        bucket["completion_tokens"] += completion
        bucket["total_tokens"] += prompt + completion
        bucket["spend_pusd"] += spend
        bucket["latencies"].append(latency)
    for bucket in buckets:
        latencies = sorted(bucket.pop("latencies"))
        bucket["spend"] = bucket.pop("spend_pusd") / PICO
        bucket["avg_latency_ms"] = _round(sum(latencies) / len(latencies)) if latencies else None
        bucket["p95_latency_ms"] = _round(percentile(latencies, 0.95))
    return {"deployment": deployment, "bucket_seconds": size, "tz": str(window.tz),
            "start": iso(window.start_us), "end": iso(window.end_us), "buckets": buckets}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def empty_day() -> dict[str, Any]:
    return {"requests": 0, "failed": 0, "error_rate": None, "spend": 0.0}


def last_day_by_deployment(db: Database, now_us: int | None = None) -> dict[str, dict[str, Any]]:
    """Requests, errors and spend of the last 24 hours for every deployment, in one query."""
    import time

    now_us = now_us if now_us is not None else int(time.time() * 1e6)
    rows = db.fetchall(
        "SELECT deployment, COUNT(*), SUM(CASE WHEN status = 'success' THEN 0 ELSE 1 END), "
        "SUM(spend_pusd) FROM records WHERE start_us >= :ws GROUP BY deployment",
        {"ws": now_us - 86400 * 1_000_000})
    return {
        name: {"requests": int(n), "failed": int(failed or 0),
               "error_rate": int(failed or 0) / n if n else None, "spend": int(spend or 0) / PICO}
        for name, n, failed, spend in rows
    }
