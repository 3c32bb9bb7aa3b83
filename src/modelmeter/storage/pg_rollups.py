"""PostgreSQL: a batch's rollup buckets added with their histograms merged in Python.

``mm_bins_add`` (migration 0005) merges two histograms in SQL with ``jsonb_each_text`` and a
GROUP BY: ~1.5 ms for two of ~750 bins, and a batch adds ~20 buckets with two histograms each,
which made the rollups half of the writer's time once records went in with COPY. Here the bucket
rows the batch touches are locked (SELECT … FOR UPDATE), merged in Python (tens of µs) and written
back whole. Buckets not there yet go through the usual upsert, whose ``mm_bins_add`` still adds
correctly if another writer inserted the same bucket meanwhile: the sums stay exact with several
writers. Rows are locked in the writers' common order (key order, bytewise as Python sorts), so
writers cannot deadlock on them.
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


def upsert(tx: Any, table: str, sum_columns: tuple[str, ...], insert_sql: str, buckets: list[dict[str, Any]]) -> None:
    """Add ``buckets`` (``rollups.aggregate`` / ``coarsen``, sorted by key) to ``table``:
    existing rows updated with merged histograms, new ones inserted with ``insert_sql``."""
    if not buckets:
        return
    found = tx.execute(
        _LOCK.format(table=table),
        ([b["deployment"] for b in buckets], [b["bucket_us"] for b in buckets]),
    ).fetchall()
    stored = {(r[0], r[1]): (r[2], r[3]) for r in found}
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for b in buckets:
        old = stored.get((b["deployment"], b["bucket_us"]))
        if old is None:
            b["latency_bins"] = histogram.encode(b["bins"])
            b["ttft_bins"] = histogram.encode(b["ttft"]) if b["ttft"] else None
            inserts.append(b)
        else:
            b["latency_bins"] = _merged(old[0], b["bins"])
            b["ttft_bins"] = _merged(old[1], b["ttft"])
            updates.append(b)
    if updates:
        sets = ", ".join(f"{c} = {c} + %({c})s" for c in sum_columns)
        tx.executemany(
            f"UPDATE {table} SET {sets}, latency_bins = CAST(%(latency_bins)s AS jsonb), "
            "ttft_bins = CAST(%(ttft_bins)s AS jsonb) "
            "WHERE deployment = %(deployment)s AND bucket_us = %(bucket_us)s",
            updates,
        )
    if inserts:
        tx.executemany(insert_sql, inserts)
