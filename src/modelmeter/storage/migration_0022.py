"""0022_rollup_day, frozen: the rollups get a day resolution (``rollup_day``, UTC days), filled
from the hourly rows already stored (a day is the sum of its 24 hours: every column adds up, the
histograms bin by bin). A week's cards and distributions then read 7 rows and the hours at either
end instead of 168 hours.

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.storage.database import Database

_DAY_US_0022 = 86_400_000_000
# rollup_hour's sum columns at 0022 (from 0003, 0015 and 0018).
_SUMS_0022 = (
    "requests",
    "succeeded",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "spend_pusd",
    "err_rate_limited",
    "err_hangup",
    "err_timeout",
    "err_client",
    "err_upstream",
    "err_other",
    "cost_input_pusd",
    "cost_cached_pusd",
    "cost_cache_write_pusd",
    "cost_output_pusd",
    "cost_reasoning_pusd",
    "cache_write_tokens",
    "cached_saved_pusd",
    "cache_hits",
    "cache_hit_saved_pusd",
    "cache_hit_prompt_tokens",
    "cache_hit_cached_tokens",
    "retried",
    "rescued",
    "retry_attempts",
)
_FLOATS_0022 = ("latency_sum", "ttft_sum")


def statements_0022() -> tuple[str, ...]:
    ints = ",\n            ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in (*_SUMS_0022, "ttft_count"))
    floats = ",\n            ".join(f"{c} DOUBLE PRECISION NOT NULL DEFAULT 0" for c in _FLOATS_0022)
    return (
        f"""CREATE TABLE rollup_day (
            deployment TEXT NOT NULL,
            bucket_us BIGINT NOT NULL,
            {ints},
            {floats},
            latency_bins /*JSON*/,
            ttft_bins /*JSON*/,
            PRIMARY KEY (deployment, bucket_us)
        )/*WITHOUT_ROWID*/""",
    )


def backfill_0022(db: Database, tx: Any) -> None:
    """Each day's sums in SQL, then its two histograms summed in Python, a deployment at a time."""
    cols = (*_SUMS_0022, "ttft_count", *_FLOATS_0022)
    day = f"bucket_us - bucket_us % {_DAY_US_0022}"
    tx.execute(
        f"INSERT INTO rollup_day (deployment, bucket_us, {', '.join(cols)}) "
        f"SELECT deployment, {day}, {', '.join(f'SUM({c})' for c in cols)} FROM rollup_hour GROUP BY deployment, {day}"
    )
    deployments = [r[0] for r in tx.execute("SELECT DISTINCT deployment FROM rollup_hour").fetchall()]
    update = (
        f"UPDATE rollup_day SET latency_bins = {db.json_param('lat')}, ttft_bins = {db.json_param('ttft')} "
        "WHERE deployment = :d AND bucket_us = :b"
    )
    for dep in deployments:
        days: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
        for bucket, lat, ttft in tx.execute(
            db.sql(
                "SELECT bucket_us, CAST(latency_bins AS TEXT), CAST(ttft_bins AS TEXT) FROM rollup_hour "
                "WHERE deployment = :d"
            ),
            {"d": dep},
        ).fetchall():
            got = days.setdefault(int(bucket) - int(bucket) % _DAY_US_0022, ({}, {}))
            for into, text in zip(got, (lat, ttft), strict=True):
                for k, n in (orjson.loads(text) if text else {}).items():
                    into[k] = into.get(k, 0) + int(n)
        rows = [
            {
                "d": dep,
                "b": b,
                "lat": orjson.dumps(lat).decode() if lat else None,
                "ttft": orjson.dumps(ttft).decode() if ttft else None,
            }
            for b, (lat, ttft) in days.items()
        ]
        if rows:
            db.executemany(tx, update, rows)
