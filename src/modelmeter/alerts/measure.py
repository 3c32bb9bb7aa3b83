"""A rule's value now, read from the rollups (never the raw records) and ``virtual_keys``.

The window is whole minutes: from the minute ``window`` before now up to the end of the current
minute, so it is read from minute and hour buckets only (the current minute's bucket is filled as
batches are written). ``Measurement`` carries the exact bounds, for the link in a notification and
for tests that sum the records of the same span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.alerts.rules import AlertRule
from modelmeter.storage import histogram
from modelmeter.storage.database import Database
from modelmeter.storage.rollups import HOUR, MINUTE, SUM_COLUMNS
from modelmeter.units import PICO
from modelmeter.usage.rollup_reads import normalise, segments


@dataclass(frozen=True)
class Measurement:
    value: float | None  # None: nothing to measure (no calls for a rate or a percentile)
    start_us: int
    end_us: int


def bounds(window_s: float, now_us: int) -> tuple[int, int]:
    end = now_us - now_us % MINUTE.size_us + MINUTE.size_us
    start = now_us - int(window_s * 1e6)
    return start - start % MINUTE.size_us, end


def _read(
    db: Database, deployment: str | None, start_us: int, end_us: int, bins_of: str | None
) -> tuple[dict[str, float], histogram.Bins]:
    sums = dict.fromkeys(SUM_COLUMNS, 0.0)
    bins: histogram.Bins = {}
    parts = segments(start_us, end_us)  # aligned bounds: no "raw" part
    cols = ", ".join(f"SUM({c})" for c in SUM_COLUMNS)
    for res in (HOUR, MINUTE):
        for a, b in parts[res.name]:
            params: dict[str, Any] = {"a": a, "b": b, "dep": deployment}
            where = "bucket_us >= :a AND bucket_us < :b" + (" AND deployment = :dep" if deployment else "")
            row = db.fetchone(f"SELECT {cols} FROM {res.table} WHERE {where}", params)
            if row is not None:
                for col, value in normalise(row).items():
                    sums[col] += value
            if bins_of:
                for (stored,) in db.fetchall(f"SELECT {bins_of} FROM {res.table} WHERE {where}", params):
                    histogram.merge(bins, histogram.decode(stored))
    return sums, bins


def key_budget_percent(db: Database, alias: str) -> float | None:
    row = db.fetchone(
        "SELECT budget_pusd, spent_pusd FROM virtual_keys WHERE alias = :a AND revoked_us IS NULL", {"a": alias}
    )
    if row is None or not row[0]:
        return None
    return round(100.0 * int(row[1]) / int(row[0]), 4)


def measure(db: Database, rule: AlertRule, now_us: int) -> Measurement:
    start, end = bounds(rule.window_s, now_us)
    if rule.kind == "key_budget":
        assert rule.target is not None
        return Measurement(key_budget_percent(db, rule.target), start, end)
    deployment = rule.target if rule.scope == "deployment" else None
    bins_of = {"latency_p95": "latency_bins", "ttft_p95": "ttft_bins"}.get(rule.kind)
    sums, bins = _read(db, deployment, start, end, bins_of)
    requests = int(sums["requests"])
    value: float | None
    if rule.kind == "spend":
        value = int(sums["spend_pusd"]) / PICO
    elif rule.kind == "no_traffic":
        value = float(requests)
    elif rule.kind == "error_rate":
        value = round(100.0 * (requests - int(sums["succeeded"])) / requests, 4) if requests else None
    else:
        value = histogram.percentile_from_bins(bins, 0.95)
    return Measurement(value, start, end)
