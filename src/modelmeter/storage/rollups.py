"""Time-bucketed rollups per deployment, so summaries and charts never scan the raw log.

Two resolutions (minute and hour), each with a table of additive sums and a table of latency
histogram bins. The batch writer adds each batch in the same transaction as its records, with
upserts that add to what is there, so several writers (processes, replicas) can share a database.

Latency bins are logarithmic with ratio 1.01; a percentile is reported as the geometric middle of
its bin, at most 0.5% from the exact nearest-rank value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelmeter.storage.database import Database

BIN_RATIO = 1.01
BIN_FLOOR_MS = 0.01  # latencies below this share bin 0
_LOG_RATIO = math.log(BIN_RATIO)
MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000

SUM_COLUMNS = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "total_tokens",
               "cached_tokens", "reasoning_tokens", "spend_pusd", "latency_sum", "ttft_sum", "ttft_count")


@dataclass(frozen=True)
class Resolution:
    name: str
    size_us: int

    @property
    def table(self) -> str:
        return f"rollup_{self.name}"

    @property
    def hist(self) -> str:
        return f"rollup_hist_{self.name}"


MINUTE = Resolution("minute", MINUTE_US)
HOUR = Resolution("hour", HOUR_US)
RESOLUTIONS = (MINUTE, HOUR)


def bin_of(latency_ms: float) -> int:
    if latency_ms <= BIN_FLOOR_MS:
        return 0
    return int(math.log(latency_ms / BIN_FLOOR_MS) / _LOG_RATIO) + 1


def bin_value(index: int) -> float:
    """The geometric middle of a bin: within half a bin's width of anything in it."""
    if index <= 0:
        return BIN_FLOOR_MS
    return BIN_FLOOR_MS * BIN_RATIO ** (index - 0.5)


def percentile_from_bins(bins: Mapping[int, int], q: float) -> float | None:
    """Nearest-rank percentile from histogram bin counts."""
    total = sum(bins.values())
    if total == 0:
        return None
    rank = max(math.ceil(q * total), 1)
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return round(bin_value(index), 3)
    return None


def schema_statements() -> tuple[str, ...]:
    out: list[str] = []
    for res in RESOLUTIONS:
        out.append(
            f"""CREATE TABLE {res.table} (
                deployment TEXT NOT NULL,
                bucket_us BIGINT NOT NULL,
                requests BIGINT NOT NULL,
                succeeded BIGINT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                total_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                spend_pusd BIGINT NOT NULL,
                latency_sum DOUBLE PRECISION NOT NULL,
                ttft_sum DOUBLE PRECISION NOT NULL,
                ttft_count BIGINT NOT NULL,
                PRIMARY KEY (deployment, bucket_us)
            )/*WITHOUT_ROWID*/""")
        out.append(
            f"""CREATE TABLE {res.hist} (
                deployment TEXT NOT NULL,
                bucket_us BIGINT NOT NULL,
                bin SMALLINT NOT NULL,
                n BIGINT NOT NULL,
                PRIMARY KEY (deployment, bucket_us, bin)
            )/*WITHOUT_ROWID*/""")
    return tuple(out)


_ADDED = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "spend_pusd")
ROW_COLUMNS = ("status", *_ADDED, "latency_ms", "ttft_ms")  # what a row needs to be added to a bucket


def empty_sums() -> dict[str, Any]:
    sums: dict[str, Any] = dict.fromkeys(SUM_COLUMNS, 0)
    sums["latency_sum"] = sums["ttft_sum"] = 0.0
    return sums


def accumulate(sums: dict[str, Any], r: Mapping[str, Any]) -> None:
    """Add one record row to a bucket's sums (the writer's rollups and the tag filter's alike)."""
    sums["requests"] += 1
    sums["succeeded"] += r["status"] == "success"
    for col in _ADDED:
        sums[col] += r[col]
    sums["latency_sum"] += r["latency_ms"]
    if r["ttft_ms"] is not None:
        sums["ttft_sum"] += r["ttft_ms"]
        sums["ttft_count"] += 1


def aggregate(rows: Iterable[Mapping[str, Any]], res: Resolution
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batch's additive contribution to each bucket, and to each histogram bin."""
    sums: dict[tuple[str, int], dict[str, Any]] = {}
    hist: Counter[tuple[str, int, int]] = Counter()
    for r in rows:
        bucket = r["start_us"] - r["start_us"] % res.size_us
        key = (r["deployment"], bucket)
        s = sums.get(key)
        if s is None:
            s = sums[key] = {"deployment": key[0], "bucket_us": bucket, **empty_sums()}
        accumulate(s, r)
        hist[(key[0], bucket, bin_of(r["latency_ms"]))] += 1
    # Sorted by key, so concurrent writers lock rows in the same order and cannot deadlock.
    return [sums[k] for k in sorted(sums)], [
        {"deployment": d, "bucket_us": b, "bin": i, "n": hist[(d, b, i)]} for (d, b, i) in sorted(hist)
    ]


def add_rows(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add finished record rows to every resolution, inside the caller's transaction."""
    for res in RESOLUTIONS:
        sums, bins = aggregate(rows, res)
        cols = ("deployment", "bucket_us", *SUM_COLUMNS)
        updates = ", ".join(f"{c} = {res.table}.{c} + excluded.{c}" for c in SUM_COLUMNS)
        db.executemany(tx, f"INSERT INTO {res.table} ({', '.join(cols)}) VALUES "
                           f"({', '.join(':' + c for c in cols)}) "
                           f"ON CONFLICT (deployment, bucket_us) DO UPDATE SET {updates}", sums)
        db.executemany(tx, f"INSERT INTO {res.hist} (deployment, bucket_us, bin, n) VALUES "
                           "(:deployment, :bucket_us, :bin, :n) ON CONFLICT (deployment, bucket_us, bin) "
                           f"DO UPDATE SET n = {res.hist}.n + excluded.n", bins)
