"""The fleet: every deployment's figures for one window in one answer, for the Models page.

Read from the rollups grouped by deployment (whole hours, whole minutes, the raw rows of the partial
minutes at the window's edges), so a window of any length costs a handful of indexed queries
whatever the number of records, and each deployment's figures are the ones its Usage tab shows.
The totals are summed from the integer sums (picodollars), so they equal the deployments' sums.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, TypedDict

from modelmeter.storage import panel_sums
from modelmeter.storage.database import Database, in_list
from modelmeter.storage.rollups import DAY, ERROR_CLASS_SQL, ERROR_CLASSES, HOUR, MINUTE, SUM_COLUMNS
from modelmeter.units import PICO, iso
from modelmeter.usage.rollup_reads import _SUMS_SQL, _floor, _resolution_for, normalise, segments, union_sql
from modelmeter.usage.window import Window

Sums = dict[str, float]


class Figures(TypedDict):
    """One deployment's (or the fleet's) figures of a window, as the Usage tab's cards name them."""

    requests: int
    succeeded: int
    failed: int
    error_rate: float | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    spend: float
    avg_latency_ms: float | None


# The figures the strip compares with the previous window of the same length.
CHANGE_FIGURES = ("requests", "total_tokens", "spend", "error_rate")


# The raw rows at a window's edges summed in SQL, in SUM_COLUMNS' order (the panels' sums, which
# need the cost breakdown's JSON, are zeros: the fleet does not show them).
_RAW_COLUMNS = (
    "deployment, status, http_status, prompt_tokens, completion_tokens, total_tokens, cached_tokens, "
    "reasoning_tokens, spend_pusd, latency_ms, ttft_ms"
)
_RAW_SQL = (
    "COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), SUM(prompt_tokens), "
    "SUM(completion_tokens), SUM(total_tokens), SUM(cached_tokens), SUM(reasoning_tokens), "
    "SUM(spend_pusd), SUM(latency_ms), SUM(ttft_ms), COUNT(ttft_ms), "
    + ", ".join(f"SUM(CASE WHEN status <> 'success' AND {ERROR_CLASS_SQL[c]} THEN 1 ELSE 0 END)" for c in ERROR_CLASSES)
    + ", 0" * len(panel_sums.COLUMNS)
)


def _empty() -> Sums:
    return dict.fromkeys(SUM_COLUMNS, 0)


def _add(into: Sums, row: Sequence[Any]) -> None:
    for col, value in normalise(tuple(row)).items():
        into[col] += value


def grouped_totals(db: Database, names: Sequence[str], windows: Sequence[tuple[int, int]]) -> list[dict[str, Sums]]:
    """The sums of each [start, end) of ``windows``, per named deployment (zeros for one without
    requests): every window's rollup rows (whole days, hours, minutes) in one statement, the raw
    rows at their edges in another."""
    outs = [{name: _empty() for name in names} for _ in windows]
    if not names:
        return outs
    in_sql, params = in_list("d", names)
    where = f"deployment IN ({in_sql})"
    parts = [segments(a, b, days=True) for a, b in windows]
    rollups = [(k, res.table, a, b) for k, p in enumerate(parts) for res in (DAY, HOUR, MINUTE) for a, b in p[res.name]]
    edges = [(k, "records", a, b) for k, p in enumerate(parts) for a, b in p["raw"]]
    for spans, cols, sums_sql in (
        (rollups, f"deployment, {', '.join(SUM_COLUMNS)}", _SUMS_SQL),
        (edges, _RAW_COLUMNS, _RAW_SQL),
    ):
        if spans:
            bound = dict(params)
            rows = union_sql([(t, a, b) for _, t, a, b in spans], cols, where, bound, [str(k) for k, *_ in spans])
            sql = f"SELECT t, deployment, {sums_sql} FROM ({rows}) AS r GROUP BY t, deployment"
            for k, dep, *sums in db.fetchall(sql, bound):
                _add(outs[int(k)][dep], sums)
    return outs


# What a sparkline needs of a bucket: reading only these is a third quicker than every sum.
SPARK_COLUMNS = ("requests", "succeeded", "spend_pusd")
_SPARK_SQL = ", ".join(f"SUM({c})" for c in SPARK_COLUMNS)


Spark = tuple[int, int, int]  # a bucket's SPARK_COLUMNS


def grouped_buckets(
    db: Database, names: Sequence[str], origin_us: int, size_us: int, end_us: int
) -> tuple[dict[str, dict[int, Spark]], tuple[int, int] | None]:
    """Each deployment's ``SPARK_COLUMNS`` per whole chart bucket over [origin, end) (buckets with
    requests only), from the coarsest rollup that fits (as ``rollup_reads.bucket_sums``); and the
    newest, partial bucket's [start, end) if there is one, for the caller to read with its other
    ``grouped_totals``."""
    out: dict[str, dict[int, Spark]] = {name: {} for name in names}
    res = _resolution_for(origin_us, size_us)
    full_end = _floor(end_us, res.size_us)
    tail = (origin_us + (full_end - origin_us) // size_us * size_us, end_us) if full_end < end_us else None
    if not names:
        return out, tail
    in_sql, params = in_list("d", names)
    for dep, k, requests, succeeded, spend in db.fetchall(
        f"SELECT deployment, (bucket_us - :origin) / :size AS k, {_SPARK_SQL} FROM {res.table} "
        f"WHERE deployment IN ({in_sql}) AND bucket_us >= :origin AND bucket_us < :b GROUP BY deployment, k",
        {**params, "origin": origin_us, "size": size_us, "b": full_end},
    ):
        out[dep][int(k)] = (int(requests or 0), int(succeeded or 0), int(spend or 0))  # (one row a bucket)
    return out, tail


def _series(buckets: dict[int, Spark], count: int) -> dict[str, list[int] | list[float]]:
    """A deployment's sparklines: requests, errors and spend (USD) a bucket, zeros where it had none."""
    requests, errors, spend = [0] * count, [0] * count, [0.0] * count
    for k, (n, ok, pusd) in buckets.items():
        requests[k], errors[k], spend[k] = n, n - ok, pusd / PICO
    return {"requests": requests, "errors": errors, "spend": spend}


@functools.lru_cache(maxsize=64)
def _bucket_starts(origin_us: int, size_us: int, count: int) -> tuple[str, ...]:
    """The buckets' start times, as the answer gives them: the same on every refresh within a bucket."""
    return tuple(iso(origin_us + k * size_us) for k in range(count))


def figures(sums: Sums) -> Figures:
    n = int(sums["requests"])
    failed = n - int(sums["succeeded"])
    return {
        "requests": n,
        "succeeded": n - failed,
        "failed": failed,
        "error_rate": failed / n if n else None,
        "prompt_tokens": int(sums["prompt_tokens"]),
        "completion_tokens": int(sums["completion_tokens"]),
        "total_tokens": int(sums["total_tokens"]),
        "spend": int(sums["spend_pusd"]) / PICO,
        "avg_latency_ms": round(float(sums["latency_sum"]) / n, 3) if n else None,
    }


def _sum_all(per: dict[str, Sums]) -> Sums:
    total = _empty()
    for sums in per.values():
        for col in SUM_COLUMNS:
            total[col] += sums[col]
    return total


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return (now - before) / before


def fleet(db: Database, names: Sequence[str], window: Window) -> dict[str, Any]:
    """Totals of the window (and of the previous one, with each figure's change), and each
    deployment's figures, share of the spend and sparkline series (requests, errors, spend)."""
    size = window.bucket_seconds()
    origin = window.bucket_origin_us(size)
    size_us = size * 1_000_000
    count = math.ceil((window.end_us - origin) / size_us)
    buckets, tail = grouped_buckets(db, names, origin, size_us, window.end_us)
    # The window, the one before it and the newest bucket's whole sums, read together.
    spans = [(window.start_us, window.end_us), (window.previous().start_us, window.start_us), *([tail] if tail else [])]
    per, before, *newest = grouped_totals(db, names, spans)
    if tail:
        last = (tail[0] - origin) // size_us
        for dep, sums in newest[0].items():  # the whole bucket: it replaces the part the bucket query read
            buckets[dep][last] = (int(sums["requests"]), int(sums["succeeded"]), int(sums["spend_pusd"]))
    total = _sum_all(per)
    totals = figures(total)
    previous = figures(_sum_all(before))
    now: dict[str, Any] = dict(totals)
    was: dict[str, Any] = dict(previous)
    spend_pusd = int(total["spend_pusd"])
    deployments = []
    for name in names:
        s = per[name]
        deployments.append(
            {
                "deployment": name,
                **figures(s),
                "spend_share": int(s["spend_pusd"]) / spend_pusd if spend_pusd else None,
                "series": _series(buckets[name], count),
            }
        )
    return {
        "start": iso(window.start_us),
        "end": iso(window.end_us),
        "tz": str(window.tz),
        "bucket_seconds": size,
        "buckets": list(_bucket_starts(origin, size_us, count)),
        "totals": totals,
        "previous": {"start": iso(window.previous().start_us), "end": iso(window.start_us), **previous},
        "change": {f: _change(now[f], was[f]) for f in CHANGE_FIGURES},
        "deployments": deployments,
    }
