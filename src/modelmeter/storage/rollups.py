"""Time-bucketed rollups per deployment, so summaries and charts never scan the raw log.

Four resolutions (minute, quarter hour, hour, UTC day): a chart reads the coarsest that fits its
buckets (a day in 15-minute buckets is 96 rows, not 1,440), a window's totals its whole days from
the day rows (a week's histograms are 7 rows and the hours at either end, not 168). A bucket's row
holds additive sums and its latency histogram (``storage.histogram``). The batch writer adds each
batch in the same transaction as its records, with upserts that add to what is there (sums with
``+``, histograms with ``mm_bins_add``), so several writers (processes, replicas) can share a
database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from modelmeter.storage import histogram, panel_sums, pg_rollups
from modelmeter.storage.database import Database

MINUTE_US = 60_000_000
QUARTER_US = 900_000_000
HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000

SUM_COLUMNS = (
    "requests",
    "succeeded",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "spend_pusd",
    "latency_sum",
    "ttft_sum",
    "ttft_count",
    # Failed requests by class (0015), from the HTTP status the client got; see ``error_class``.
    "err_client",
    "err_rate_limited",
    "err_hangup",
    "err_timeout",
    "err_upstream",
    "err_other",
    # The cost, cache and retries panels (0018): see ``panel_sums``.
    *panel_sums.COLUMNS,
)
ERROR_CLASSES = ("err_client", "err_rate_limited", "err_hangup", "err_timeout", "err_upstream", "err_other")
# The same classes in SQL, for the raw rows at a window's edges (each a condition on a failed row).
ERROR_CLASS_SQL = {
    "err_client": "http_status BETWEEN 400 AND 499 AND http_status NOT IN (408, 429, 499)",
    "err_rate_limited": "http_status = 429",
    "err_hangup": "http_status = 499",
    "err_timeout": "http_status IN (408, 504)",
    "err_upstream": "http_status BETWEEN 500 AND 599 AND http_status <> 504",
    "err_other": "(http_status < 400 OR http_status > 599)",
}


def error_class(http_status: int) -> str:
    """A failed request's class: 429 rate-limited, 499 client hang-up, 408/504 timeout, other 4xx
    client errors (the gateway's own rejections among them), other 5xx upstream errors, else other
    (e.g. a stream that broke after its 200)."""
    if http_status == 429:
        return "err_rate_limited"
    if http_status == 499:
        return "err_hangup"
    if http_status in (408, 504):
        return "err_timeout"
    if 400 <= http_status <= 499:
        return "err_client"
    if 500 <= http_status <= 599:
        return "err_upstream"
    return "err_other"


@dataclass(frozen=True)
class Resolution:
    name: str
    size_us: int

    @property
    def table(self) -> str:
        return f"rollup_{self.name}"


MINUTE = Resolution("minute", MINUTE_US)
QUARTER = Resolution("quarter", QUARTER_US)
HOUR = Resolution("hour", HOUR_US)
DAY = Resolution("day", DAY_US)
RESOLUTIONS = (MINUTE, QUARTER, HOUR, DAY)  # finest first: each divides the next

_ADDED = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "spend_pusd")
ROW_COLUMNS = (
    "status",
    "http_status",
    *_ADDED,
    "latency_ms",
    "ttft_ms",
    *panel_sums.ROW_COLUMNS,
)  # what a row needs to be added to a bucket


def empty_sums() -> dict[str, Any]:
    sums: dict[str, Any] = dict.fromkeys(SUM_COLUMNS, 0)
    sums["latency_sum"] = sums["ttft_sum"] = 0.0
    return sums


def accumulate(sums: dict[str, Any], r: Mapping[str, Any]) -> None:
    """Add one record row to a bucket's sums (the writer's rollups and the tag filter's alike)."""
    sums["requests"] += 1
    if r["status"] == "success":
        sums["succeeded"] += 1
    else:
        sums[error_class(r["http_status"])] += 1
    for col in _ADDED:
        sums[col] += r[col]
    sums["latency_sum"] += r["latency_ms"]
    if r["ttft_ms"] is not None:
        sums["ttft_sum"] += r["ttft_ms"]
        sums["ttft_count"] += 1
    panel_sums.add(sums, r)


_GET_ADDED = [itemgetter(c) for c in _ADDED]
_STATUS = itemgetter("status")


def accumulate_many(sums: dict[str, Any], rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
    """``accumulate`` of each of ``rows`` in turn, a column at a time (the writer's batches: the
    loops run in C). The same sums, floats added in the same order. Returns the rows' latencies and
    their times to first token, for the bucket's histograms."""
    sums["requests"] += len(rows)
    succeeded = list(map(_STATUS, rows)).count("success")
    sums["succeeded"] += succeeded
    if succeeded < len(rows):
        for r in rows:
            if r["status"] != "success":
                sums[error_class(r["http_status"])] += 1
    for col, get in zip(_ADDED, _GET_ADDED, strict=True):
        sums[col] += sum(map(get, rows))
    latency = [r["latency_ms"] for r in rows]
    sums["latency_sum"] = sum(latency, sums["latency_sum"])
    ttft = [t for r in rows if (t := r["ttft_ms"]) is not None]
    sums["ttft_sum"] = sum(ttft, sums["ttft_sum"])
    sums["ttft_count"] += len(ttft)
    panel_sums.add_many(sums, rows)
    return latency, ttft


_Buckets = dict[tuple[str, int], dict[str, Any]]


def _bucket_of(buckets: _Buckets, deployment: str, time_us: int, res: Resolution) -> dict[str, Any]:
    bucket = time_us - time_us % res.size_us
    b = buckets.get((deployment, bucket))
    if b is None:
        b = buckets[(deployment, bucket)] = {
            "deployment": deployment,
            "bucket_us": bucket,
            **empty_sums(),
            "bins": Counter(),
            "ttft": Counter(),  # time-to-first-token histogram (0012), for p95 TTFT alerts
        }
    return b


def _sorted(buckets: _Buckets) -> list[dict[str, Any]]:
    # Sorted by key, so concurrent writers lock rows in the same order and cannot deadlock.
    return [buckets[k] for k in sorted(buckets)]


def by_bucket(rows: Iterable[Mapping[str, Any]], size_us: int) -> dict[tuple[str, int], list[Mapping[str, Any]]]:
    """The rows per (deployment, bucket start), in their order."""
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        t = r["start_us"]
        key = (r["deployment"], t - t % size_us)
        group = groups.get(key)
        if group is None:
            groups[key] = [r]
        else:
            group.append(r)
    return groups


def aggregate(rows: Iterable[Mapping[str, Any]], res: Resolution = MINUTE) -> list[dict[str, Any]]:
    """The batch's additive contribution to each bucket: sums, and latency bin counts in "bins"."""
    buckets: _Buckets = {}
    for (deployment, bucket_us), group in by_bucket(rows, res.size_us).items():
        b = _bucket_of(buckets, deployment, bucket_us, res)
        latency, ttft = accumulate_many(b, group)
        b["bins"].update(map(histogram.bin_of, latency))
        b["ttft"].update(map(histogram.bin_of, ttft))
    return _sorted(buckets)


def coarsen(fine: Iterable[Mapping[str, Any]], res: Resolution) -> list[dict[str, Any]]:
    """Finer buckets (from ``aggregate``) summed into ``res``'s buckets: each row is read once."""
    buckets: _Buckets = {}
    for f in fine:
        b = _bucket_of(buckets, f["deployment"], f["bucket_us"], res)
        for col in SUM_COLUMNS:
            b[col] += f[col]
        b["bins"].update(f["bins"])
        b["ttft"].update(f["ttft"])
    return _sorted(buckets)


_COLS = ("deployment", "bucket_us", *SUM_COLUMNS, "latency_bins", "ttft_bins")
_BINS = ("latency_bins", "ttft_bins")


def _upsert_sql(db: Database, res: Resolution) -> str:
    updates = ", ".join(f"{c} = {res.table}.{c} + excluded.{c}" for c in SUM_COLUMNS)
    values = ", ".join(db.json_param(c) if c in _BINS else f":{c}" for c in _COLS)
    return (
        f"INSERT INTO {res.table} ({', '.join(_COLS)}) VALUES ({values}) "
        f"ON CONFLICT (deployment, bucket_us) DO UPDATE SET {updates}, "
        f"latency_bins = mm_bins_add({res.table}.latency_bins, excluded.latency_bins), "
        f"ttft_bins = mm_bins_add({res.table}.ttft_bins, excluded.ttft_bins)"
    )


def add_rows(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add finished record rows to every resolution, inside the caller's transaction."""
    buckets = aggregate(rows, MINUTE)
    for res in RESOLUTIONS:
        if res is not MINUTE:
            buckets = coarsen(buckets, res)
        upsert(db, tx, res, buckets)


def upsert(db: Database, tx: Any, res: Resolution, buckets: list[dict[str, Any]]) -> None:
    """Add buckets (from ``aggregate`` / ``coarsen``) to ``res``'s table."""
    if db.dialect == "postgresql":  # histograms merged in Python: see storage.pg_rollups
        pg_rollups.upsert(tx, res.table, SUM_COLUMNS, buckets)
        return
    for b in buckets:
        b["latency_bins"] = histogram.encode(b["bins"])
        b["ttft_bins"] = histogram.encode(b["ttft"]) if b["ttft"] else None
    db.executemany(tx, _upsert_sql(db, res), buckets)
