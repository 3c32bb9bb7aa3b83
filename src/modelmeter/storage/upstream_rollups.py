"""Rollups per (routed deployment, minute / hour, upstream that answered): the Usage tab's split by
upstream reads a few rows per upstream instead of every record of the window (``usage.upstreams``).

Only routed calls (records with ``attempts``) are added, so a batch of plain deployments' records
costs one scan of the batch and nothing else. Added by the batch writer in the same transaction as
the records, with upserts that add (as ``storage.rollups``), so several writers can share a database.

Latency is summed in whole microseconds (``latency_us``): records keep latency_ms to 3 decimals, so
the sums are exact integers and a window read from rollups plus raw edges equals one read from the
raw rows alone, to the last digit of the average (float sums in another order would not be).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.rollups import HOUR, MINUTE, Resolution

UPSTREAM_SUMS = ("requests", "succeeded", "rescued", "latency_us", "spend_pusd")
UPSTREAM_RESOLUTIONS = (MINUTE, HOUR)
NONE_SERVED = ""  # the upstream of a call no upstream answered (all failed, or none available)
# What a raw row needs to be added (``sums_of``).
ROW_COLUMNS = ("served_by", "status", "retries", "latency_ms", "spend_pusd")

_Key = tuple[str, str, int]


def table(res: Resolution) -> str:
    return f"rollup_upstream_{res.name}"


def latency_us(latency_ms: float) -> int:
    """latency_ms in whole microseconds, rounded half up: trunc(ms * 1000 + 0.5), the same double
    arithmetic as the SQL of migration 0016's backfill (SQLite CAST, PostgreSQL TRUNC)."""
    return int(latency_ms * 1000 + 0.5) if math.isfinite(latency_ms) else 0


def sums_of(status: str, retries: int, latency_ms: float, spend_pusd: int) -> tuple[int, int, int, int, int]:
    """One routed record's contribution, in ``UPSTREAM_SUMS`` order. Rescued: answered after a
    failed attempt (a success with retries)."""
    ok = status == "success"
    return (1, 1 if ok else 0, 1 if ok and retries > 0 else 0, latency_us(latency_ms), int(spend_pusd))


def add_to(acc: dict[Any, list[int]], key: Any, sums: Iterable[int]) -> None:
    b = acc.get(key)
    if b is None:
        acc[key] = list(sums)
    else:
        for i, v in enumerate(sums):
            b[i] += v


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[_Key, list[int]]:
    """The routed rows' per-minute contribution to each (deployment, upstream, minute)."""
    buckets: dict[_Key, list[int]] = {}
    size = MINUTE.size_us
    for r in rows:
        if r["attempts"] is None:
            continue
        t = r["start_us"]
        key = (r["deployment"], r["served_by"] or NONE_SERVED, t - t % size)
        add_to(buckets, key, sums_of(r["status"], r["retries"], r["latency_ms"], r["spend_pusd"]))
    return buckets


def coarsen(fine: dict[_Key, list[int]], res: Resolution) -> dict[_Key, list[int]]:
    out: dict[_Key, list[int]] = {}
    for (dep, up, bucket), sums in fine.items():
        add_to(out, (dep, up, bucket - bucket % res.size_us), sums)
    return out


def _rows(buckets: dict[_Key, list[int]]) -> list[dict[str, Any]]:
    # In primary-key order, so concurrent writers lock rows in the same order and cannot deadlock.
    return [
        {"deployment": k[0], "upstream": k[1], "bucket_us": k[2], **dict(zip(UPSTREAM_SUMS, buckets[k], strict=True))}
        for k in sorted(buckets, key=lambda k: (k[0], k[2], k[1]))
    ]


_COLS = ("deployment", "upstream", "bucket_us", *UPSTREAM_SUMS)


def _upsert_sql(res: Resolution) -> str:
    t = table(res)
    updates = ", ".join(f"{c} = {t}.{c} + excluded.{c}" for c in UPSTREAM_SUMS)
    return (
        f"INSERT INTO {t} ({', '.join(_COLS)}) VALUES ({', '.join(':' + c for c in _COLS)}) "
        f"ON CONFLICT (deployment, bucket_us, upstream) DO UPDATE SET {updates}"
    )


def add_rows(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add the batch's routed rows to both resolutions, inside the caller's transaction."""
    minutes = aggregate(rows)
    if not minutes:
        return
    for res in UPSTREAM_RESOLUTIONS:
        buckets = minutes if res is MINUTE else coarsen(minutes, res)
        db.executemany(tx, _upsert_sql(res), _rows(buckets))
