"""The fleet: every deployment's figures for one window in one answer, for the Models page.

Read from the rollups grouped by deployment (whole hours, whole minutes, the raw rows of the partial
minutes at the window's edges), so a window of any length costs a handful of indexed queries
whatever the number of records, and each deployment's figures are the ones its Usage tab shows.
The totals are summed from the integer sums (picodollars), so they equal the deployments' sums.
"""

from __future__ import annotations

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


def grouped_totals(db: Database, names: Sequence[str], start_us: int, end_us: int) -> dict[str, Sums]:
    """The sums of [start, end) of each named deployment (zeros for one without requests): the
    rollups' whole days, hours and minutes in one statement, the edges' raw rows in another."""
    out = {name: _empty() for name in names}
    if not names:
        return out
    in_sql, params = in_list("d", names)
    where = f"deployment IN ({in_sql})"
    parts = segments(start_us, end_us, days=True)
    rollups = [(res.table, a, b) for res in (DAY, HOUR, MINUTE) for a, b in parts[res.name]]
    for spans, cols, sums_sql in (
        (rollups, f"deployment, {', '.join(SUM_COLUMNS)}", _SUMS_SQL),
        ([("records", a, b) for a, b in parts["raw"]], _RAW_COLUMNS, _RAW_SQL),
    ):
        if spans:
            p = dict(params)
            rows = union_sql(spans, cols, where, p)
            for dep, *sums in db.fetchall(f"SELECT deployment, {sums_sql} FROM ({rows}) AS r GROUP BY deployment", p):
                _add(out[dep], sums)
    return out


# What a sparkline needs of a bucket: reading only these is a third quicker than every sum.
SPARK_COLUMNS = ("requests", "succeeded", "spend_pusd")
_SPARK_SQL = ", ".join(f"SUM({c})" for c in SPARK_COLUMNS)


def grouped_buckets(
    db: Database, names: Sequence[str], origin_us: int, size_us: int, end_us: int
) -> dict[str, dict[int, Sums]]:
    """Each deployment's ``SPARK_COLUMNS`` per chart bucket over [origin, end): whole buckets from the
    coarsest rollup that fits, the newest, partial one from finer data (as ``rollup_reads.bucket_sums``)."""
    out: dict[str, dict[int, Sums]] = {name: {} for name in names}
    if not names:
        return out
    in_sql, params = in_list("d", names)
    res = _resolution_for(origin_us, size_us)
    full_end = _floor(end_us, res.size_us)
    for dep, k, *row in db.fetchall(
        f"SELECT deployment, (bucket_us - :origin) / :size AS k, {_SPARK_SQL} FROM {res.table} "
        f"WHERE deployment IN ({in_sql}) AND bucket_us >= :origin AND bucket_us < :b GROUP BY deployment, k",
        {**params, "origin": origin_us, "size": size_us, "b": full_end},
    ):
        bucket = out[dep].setdefault(int(k), _empty())
        for col, value in zip(SPARK_COLUMNS, row, strict=True):
            bucket[col] += int(value or 0)
    if full_end < end_us:
        last = (full_end - origin_us) // size_us
        tail = grouped_totals(db, names, origin_us + last * size_us, end_us)
        for dep, sums in tail.items():
            out[dep][last] = sums  # the whole bucket: it replaces the part the query above read
    return out


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
    per = grouped_totals(db, names, window.start_us, window.end_us)
    before = grouped_totals(db, names, window.previous().start_us, window.start_us)
    size = window.bucket_seconds()
    origin = window.bucket_origin_us(size)
    size_us = size * 1_000_000
    count = math.ceil((window.end_us - origin) / size_us)
    buckets = grouped_buckets(db, names, origin, size_us, window.end_us)
    total = _sum_all(per)
    totals = figures(total)
    previous = figures(_sum_all(before))
    now: dict[str, Any] = dict(totals)
    was: dict[str, Any] = dict(previous)
    spend_pusd = int(total["spend_pusd"])
    deployments = []
    for name in names:
        s = per[name]
        series = [buckets[name].get(k) or _empty() for k in range(count)]
        deployments.append(
            {
                "deployment": name,
                **figures(s),
                "spend_share": int(s["spend_pusd"]) / spend_pusd if spend_pusd else None,
                "series": {
                    "requests": [int(b["requests"]) for b in series],
                    "errors": [int(b["requests"]) - int(b["succeeded"]) for b in series],
                    "spend": [int(b["spend_pusd"]) / PICO for b in series],
                },
            }
        )
    return {
        "start": iso(window.start_us),
        "end": iso(window.end_us),
        "tz": str(window.tz),
        "bucket_seconds": size,
        "buckets": [iso(origin + k * size_us) for k in range(count)],
        "totals": totals,
        "previous": {"start": iso(window.previous().start_us), "end": iso(window.start_us), **previous},
        "change": {f: _change(now[f], was[f]) for f in CHANGE_FIGURES},
        "deployments": deployments,
    }
