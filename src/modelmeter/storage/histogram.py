"""Latency histograms: logarithmic bins, and their compact form in a rollup row.

Bins have ratio 1.01; a percentile is reported as the geometric middle of its bin, at most 0.5% from
the exact nearest-rank value. A rollup bucket keeps its histogram as one JSON object
``{"bin": count}`` in the bucket's own row (a week of hours is 168 rows to read, not one row per
bin). Writers merge histograms additively in the database with ``mm_bins_add``: an SQL function in
PostgreSQL (migration 0005) and the Python function below registered on each SQLite connection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

BIN_RATIO = 1.01
BIN_FLOOR_MS = 0.01  # latencies below this share bin 0
_LOG_RATIO = math.log(BIN_RATIO)

Bins = dict[str, int]  # bin index (as its JSON key) -> count


def bin_of(latency_ms: float) -> int:
    if latency_ms <= BIN_FLOOR_MS:
        return 0
    return int(math.log(latency_ms / BIN_FLOOR_MS) / _LOG_RATIO) + 1


def bin_value(index: int) -> float:
    """The geometric middle of a bin: within half a bin's width of anything in it."""
    if index <= 0:
        return BIN_FLOOR_MS
    return BIN_FLOOR_MS * BIN_RATIO ** (index - 0.5)


def percentile_from_bins(bins: Mapping[Any, int], q: float) -> float | None:
    """Nearest-rank percentile from bin counts (keys are bin indexes, as ints or JSON keys)."""
    total = sum(bins.values())
    if total == 0:
        return None
    rank = max(math.ceil(q * total), 1)
    seen = 0
    for index in sorted(bins, key=int):
        seen += bins[index]
        if seen >= rank:
            return round(bin_value(int(index)), 3)
    return None


def encode(bins: Mapping[int, int]) -> str:
    return orjson.dumps(bins, option=orjson.OPT_NON_STR_KEYS).decode()


def decode(value: str | bytes | Mapping[str, int] | None) -> Bins:
    """A stored histogram: JSON text from SQLite, or already parsed from PostgreSQL's jsonb."""
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        parsed: Bins = orjson.loads(value)
        return parsed
    return dict(value)


def merge(into: Bins, more: Mapping[str, int]) -> Bins:
    get = into.get
    for key, n in more.items():
        into[key] = get(key, 0) + n
    return into


def sqlite_bins_add(a: str | None, b: str | None) -> str | None:
    """``mm_bins_add(a, b)`` for SQLite: the sum of two stored histograms."""
    if a is None or b is None:
        return a if b is None else b
    return orjson.dumps(merge(decode(a), decode(b))).decode()


def sqlite_bins_net(a: str | None, b: str | None) -> str | None:
    """``mm_bins_net(a, b)`` for SQLite: the sum of two histograms, either of which may take bins
    away (negative counts); bins that come to zero are dropped, and none left is NULL (PostgreSQL
    has the same function from migration 0021)."""
    summed = merge(decode(a), decode(b))
    net = {k: n for k, n in summed.items() if n}
    return orjson.dumps(net).decode() if net else None


# The same for PostgreSQL, created by migration 0005; jsonb_each_text reads both, SUM adds by bin.
POSTGRES_BINS_ADD = """CREATE OR REPLACE FUNCTION mm_bins_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE (
    SELECT jsonb_object_agg(k, n) FROM (
      SELECT k, SUM(v::bigint) AS n FROM (
        SELECT key AS k, value AS v FROM jsonb_each_text(a)
        UNION ALL SELECT key, value FROM jsonb_each_text(b)) AS both_bins
      GROUP BY k) AS summed) END
$$"""
