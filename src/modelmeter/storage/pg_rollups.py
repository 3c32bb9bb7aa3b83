"""PostgreSQL: a batch's rollup buckets added with their histograms merged in Python.

``mm_bins_add`` (migration 0005) merges two histograms in SQL with ``jsonb_each_text`` and a
GROUP BY: ~1.5 ms for two of ~750 bins, and a batch adds ~20 buckets with two histograms each,
which made the rollups half of the writer's time once records went in with COPY. Here the bucket
rows the batch touches are locked (SELECT … FOR UPDATE), merged in Python (tens of µs) and written
back whole.

Two steps, each in the writers' common order (key order, bytewise as Python sorts), so writers
cannot deadlock: first every bucket the batch touches gets a row (an empty one, ``ON CONFLICT DO
NOTHING``, which waits for a writer that is inserting the same bucket), then all of them are locked
and updated. (Locking the existing rows first and inserting the missing ones after deadlocked: a
bucket another writer committed between our lock and our insert was locked by that writer's next
batch while it waited for a bucket we had inserted.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelmeter.storage import histogram

_LOCK = (
    "SELECT deployment, bucket_us, latency_bins, ttft_bins FROM {table} "
    "WHERE (deployment, bucket_us) IN (SELECT * FROM unnest(%s::text[], %s::bigint[])) "
    'ORDER BY deployment COLLATE "C", bucket_us FOR UPDATE'
)


def _merged(stored: Any, more: Mapping[int, int]) -> str | None:
    bins = histogram.decode(stored)
    if more:
        histogram.merge(bins, {str(k): n for k, n in more.items()})
    return orjson.dumps(bins).decode() if bins else None  # str keys already, as sqlite_bins_add


def _ensure_sql(table: str, sum_columns: tuple[str, ...]) -> str:
    cols = ", ".join(sum_columns)
    zeros = ", ".join("0" for _ in sum_columns)
    return (
        f"INSERT INTO {table} (deployment, bucket_us, {cols}) "
        f"SELECT d, b, {zeros} FROM unnest(%s::text[], %s::bigint[]) AS k(d, b) "
        'ORDER BY d COLLATE "C", b ON CONFLICT (deployment, bucket_us) DO NOTHING'
    )


def upsert(tx: Any, table: str, sum_columns: tuple[str, ...], buckets: list[dict[str, Any]]) -> None:
    """Add ``buckets`` (``rollups.aggregate`` / ``coarsen``, sorted by key) to ``table``."""
    if not buckets:
        return
    keys = ([b["deployment"] for b in buckets], [b["bucket_us"] for b in buckets])
    tx.execute(_ensure_sql(table, sum_columns), keys)
    stored = {(r[0], r[1]): (r[2], r[3]) for r in tx.execute(_LOCK.format(table=table), keys).fetchall()}
    for b in buckets:
        old = stored[(b["deployment"], b["bucket_us"])]
        b["latency_bins"] = _merged(old[0], b["bins"])
        b["ttft_bins"] = _merged(old[1], b["ttft"])
    sets = ", ".join(f"{c} = {c} + %({c})s" for c in sum_columns)
    tx.executemany(
        f"UPDATE {table} SET {sets}, latency_bins = CAST(%(latency_bins)s AS jsonb), "
        "ttft_bins = CAST(%(ttft_bins)s AS jsonb) "
        "WHERE deployment = %(deployment)s AND bucket_us = %(bucket_us)s",
        buckets,
    )
