"""Rollups per dimension value (API key, call type) per minute and hour, so a window's breakdown
reads a few rows per value instead of scanning the log. Added by the batch writer in the same
transaction as the records (upserts that add, like ``storage.rollups``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.rollups import HOUR, MINUTE, Resolution

# Dimension name (as the API takes it) -> the record column it groups by; no value is "".
DIMENSIONS = {"key": "key_alias", "call_type": "call_type"}
DIM_SUMS = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "total_tokens", "spend_pusd")
DIM_RESOLUTIONS = (MINUTE, HOUR)


def table(res: Resolution) -> str:
    return f"rollup_dim_{res.name}"


def aggregate(rows: Sequence[Mapping[str, Any]], res: Resolution) -> list[dict[str, Any]]:
    buckets: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for r in rows:
        bucket = r["start_us"] - r["start_us"] % res.size_us
        ok = r["status"] == "success"
        for dim, col in DIMENSIONS.items():
            key = (r["deployment"], dim, r[col] or "", bucket)
            b = buckets.get(key)
            if b is None:
                b = buckets[key] = {"deployment": key[0], "dim": dim, "value": key[2], "bucket_us": bucket}
                b.update(dict.fromkeys(DIM_SUMS, 0))
            b["requests"] += 1
            b["succeeded"] += ok
            b["prompt_tokens"] += r["prompt_tokens"]
            b["completion_tokens"] += r["completion_tokens"]
            b["total_tokens"] += r["total_tokens"]
            b["spend_pusd"] += r["spend_pusd"]
    # Sorted by key, so concurrent writers lock rows in the same order and cannot deadlock.
    return [buckets[k] for k in sorted(buckets)]


def add_rows(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add finished record rows to both resolutions, inside the caller's transaction."""
    for res in DIM_RESOLUTIONS:
        t = table(res)
        cols = ("deployment", "dim", "value", "bucket_us", *DIM_SUMS)
        updates = ", ".join(f"{c} = {t}.{c} + excluded.{c}" for c in DIM_SUMS)
        sql = (
            f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
            f"ON CONFLICT (deployment, dim, value, bucket_us) DO UPDATE SET {updates}"
        )
        db.executemany(tx, sql, aggregate(rows, res))
