"""Rollups per dimension value (the call type) per minute and hour, so a window's breakdown reads a
few rows per value instead of scanning the log. Added by the batch writer in the same transaction
as the records (upserts that add, like ``storage.rollups``).

Only low-cardinality dimensions belong here: with 10,000 API keys nearly every record is a row of
its own (an upsert per record and resolution), which took ingest from ~20,000 to ~13,000 records/s;
keys, end users, tags and sessions have bounded hourly top-N rollups instead (``top_rollups``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.rollups import HOUR, MINUTE, Resolution

# Dimension name (as the API takes it) -> the record column it groups by; no value is "".
DIMENSIONS = {"call_type": "call_type"}
DIM_SUMS = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "total_tokens", "spend_pusd")
DIM_RESOLUTIONS = (MINUTE, HOUR)


def table(res: Resolution) -> str:
    return f"rollup_dim_{res.name}"


def aggregate(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The batch's per-minute contribution to each (deployment, dimension, value)."""
    buckets: dict[tuple[str, str, str, int], list[int]] = {}
    size = MINUTE.size_us
    for r in rows:
        t = r["start_us"]
        bucket = t - t % size
        sums = (
            1,
            1 if r["status"] == "success" else 0,
            r["prompt_tokens"],
            r["completion_tokens"],
            r["total_tokens"],
            r["spend_pusd"],
        )
        for dim, col in _DIMS:
            key = (r["deployment"], dim, r[col] or "", bucket)
            b = buckets.get(key)
            if b is None:
                buckets[key] = list(sums)
            else:
                for i, v in enumerate(sums):
                    b[i] += v
    return _rows(buckets)


def coarsen(fine: list[dict[str, Any]], res: Resolution) -> list[dict[str, Any]]:
    buckets: dict[tuple[str, str, str, int], list[int]] = {}
    for f in fine:
        key = (f["deployment"], f["dim"], f["value"], f["bucket_us"] - f["bucket_us"] % res.size_us)
        b = buckets.setdefault(key, [0] * len(DIM_SUMS))
        for i, c in enumerate(DIM_SUMS):
            b[i] += f[c]
    return _rows(buckets)


def _rows(buckets: dict[tuple[str, str, str, int], list[int]]) -> list[dict[str, Any]]:
    # Sorted by key, so concurrent writers lock rows in the same order and cannot deadlock.
    return [
        {
            "deployment": k[0],
            "dim": k[1],
            "value": k[2],
            "bucket_us": k[3],
            **dict(zip(DIM_SUMS, buckets[k], strict=True)),
        }
        for k in sorted(buckets)
    ]


_DIMS = tuple(DIMENSIONS.items())


def add_rows(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add finished record rows to both resolutions, inside the caller's transaction."""
    buckets = aggregate(rows)
    for res in DIM_RESOLUTIONS:
        if res is not MINUTE:
            buckets = coarsen(buckets, res)
        t = table(res)
        cols = ("deployment", "dim", "value", "bucket_us", *DIM_SUMS)
        updates = ", ".join(f"{c} = {t}.{c} + excluded.{c}" for c in DIM_SUMS)
        sql = (
            f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
            f"ON CONFLICT (deployment, dim, value, bucket_us) DO UPDATE SET {updates}"
        )
        db.executemany(tx, sql, buckets)
