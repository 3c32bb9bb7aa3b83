"""Reading rollups for a window: whole UTC days from the day table (the main rollups' totals), full
hours from the hour tables, full minutes from the minute tables, and the raw rows of the partial
minutes at the edges, so any window sums exactly; chart buckets from the coarsest resolution that
divides them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmeter.storage import histogram
from modelmeter.storage.database import Database
from modelmeter.storage.rollups import (
    DAY,
    HOUR,
    MINUTE,
    RESOLUTIONS,
    ROW_COLUMNS,
    SUM_COLUMNS,
    Resolution,
    accumulate_many,
    empty_sums,
)


@dataclass
class Totals:
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SUM_COLUMNS, 0))
    bins: histogram.Bins = field(default_factory=dict)
    ttft_bins: histogram.Bins = field(default_factory=dict)  # only when asked for (``ttft=True``)

    def add_sums(self, row: tuple[Any, ...] | None) -> None:
        if row is None:
            return
        for col, value in normalise(row).items():
            self.sums[col] += value


_FLOAT_COLUMNS = ("latency_sum", "ttft_sum")


def normalise(row: tuple[Any, ...]) -> dict[str, float]:
    """SUM() of a PostgreSQL BIGINT is NUMERIC (a Decimal): back to int, floats to float."""
    return {
        col: (float(v or 0) if col in _FLOAT_COLUMNS else int(v or 0)) for col, v in zip(SUM_COLUMNS, row, strict=True)
    }


def _ceil(t: int, size: int) -> int:
    return -(-t // size) * size


def _floor(t: int, size: int) -> int:
    return t // size * size


def segments(start_us: int, end_us: int, days: bool = False) -> dict[str, list[tuple[int, int]]]:
    """Split [start, end) into raw, minute and hour ranges that do not overlap; with ``days``, the
    whole UTC days of the hour range into a day range (for the tables that have days: the main
    rollups, and the top-N rows' day sums)."""
    out: dict[str, list[tuple[int, int]]] = {"raw": [], "minute": [], "hour": [], "day": []}
    ms, me = _ceil(start_us, MINUTE.size_us), _floor(end_us, MINUTE.size_us)
    if ms >= me:
        out["raw"] = [(start_us, end_us)]
        return out
    out["raw"] = [r for r in ((start_us, ms), (me, end_us)) if r[0] < r[1]]
    hs, he = _ceil(ms, HOUR.size_us), _floor(me, HOUR.size_us)
    if hs >= he:
        out["minute"] = [(ms, me)]
        return out
    out["minute"] = [r for r in ((ms, hs), (he, me)) if r[0] < r[1]]
    ds, de = _ceil(hs, DAY.size_us), _floor(he, DAY.size_us)
    if not days or ds >= de:
        out["hour"] = [(hs, he)]
        return out
    out["hour"] = [r for r in ((hs, ds), (de, he)) if r[0] < r[1]]
    out["day"] = [(ds, de)]
    return out


_SUMS_SQL = ", ".join(f"SUM({c})" for c in SUM_COLUMNS)
_ROW_SQL = ", ".join(ROW_COLUMNS)


def union_sql(
    spans: Sequence[tuple[str, int, int]],
    cols: str,
    where: str,
    params: dict[str, Any],
    labels: Sequence[str] | None = None,
) -> str:
    """``SELECT cols FROM table WHERE where`` and the time in [a, b), for each (table, a, b) span, as
    one UNION ALL: one round trip, and each span an index range (SQLite scanned every row of the
    deployment for an OR of them). With ``labels`` (ours, never a caller's text), each row starts
    with its span's label, as ``t``."""
    selects = []
    for i, (table, a, b) in enumerate(spans):
        params |= {f"a{i}": a, f"b{i}": b}
        time = "start_us" if table == "records" else "bucket_us"
        label = f"'{labels[i]}' AS t, " if labels else ""
        selects.append(f"SELECT {label}{cols} FROM {table} WHERE {where} AND {time} >= :a{i} AND {time} < :b{i}")
    return " UNION ALL ".join(selects)


class BinsCache:
    """The merged histograms of a range of rollup rows, remembered with the range's request count.

    Rollups only grow, so a range whose count has not changed has the same histograms: a refresh
    of a week reads the sums (one row) and reuses the merged hours instead of decoding 168 JSON
    histograms again. Per process; bounded (the oldest half is dropped when full)."""

    def __init__(self, max_entries: int = 2_000) -> None:
        self._max = max_entries
        self._entries: dict[tuple[Any, ...], tuple[int, histogram.Bins, histogram.Bins]] = {}

    def get(self, key: tuple[Any, ...], count: int) -> tuple[histogram.Bins, histogram.Bins] | None:
        hit = self._entries.get(key)
        return (hit[1], hit[2]) if hit is not None and hit[0] == count else None

    def put(self, key: tuple[Any, ...], count: int, bins: histogram.Bins, ttft_bins: histogram.Bins) -> None:
        if len(self._entries) >= self._max:
            for old in list(self._entries)[: self._max // 2]:
                self._entries.pop(old, None)
        self._entries[key] = (count, bins, ttft_bins)


def totals(
    db: Database, deployment: str, start_us: int, end_us: int, ttft: bool = False, cache: BinsCache | None = None
) -> Totals:
    """Sums and the latency histogram of [start, end); the TTFT histogram too if ``ttft``."""
    return totals_many(db, deployment, [(start_us, end_us)], ttft, cache)[0]


def totals_many(
    db: Database,
    deployment: str,
    windows: Sequence[tuple[int, int]],
    ttft: bool = False,
    cache: BinsCache | None = None,
) -> list[Totals]:
    """``totals`` of each [start, end) of ``windows`` (e.g. a window and the one before it), read
    together: the rollups' sums of every window and table in one statement, the edges' raw rows in
    another, then the histograms of the tables whose request count changed. On PostgreSQL each
    round trip is most of a small read's time."""
    outs = [Totals() for _ in windows]
    parts = [segments(a, b, days=True) for a, b in windows]
    spans = [(res, k, a, b) for k, p in enumerate(parts) for res in (DAY, HOUR, MINUTE) for a, b in p[res.name]]
    if spans:
        params: dict[str, Any] = {"dep": deployment}
        rows = union_sql(
            [(res.table, a, b) for res, _, a, b in spans],
            ", ".join(SUM_COLUMNS),
            "deployment = :dep",
            params,
            [f"{k} {res.name}" for res, k, _, _ in spans],
        )
        for label, *sums in db.fetchall(f"SELECT t, {_SUMS_SQL} FROM ({rows}) AS r GROUP BY t", params):
            k, name = label.split()
            out, res = outs[int(k)], _BY_NAME[name]
            out.add_sums(tuple(sums))
            _add_bins(db, out, res, deployment, parts[int(k)][res.name], int(sums[0] or 0), ttft, cache)
    edges = [(k, a, b) for k, p in enumerate(parts) for a, b in p["raw"]]
    if edges:
        _add_raw(db, outs, deployment, edges, ttft)
    return outs


_BY_NAME = {res.name: res for res in RESOLUTIONS}


def _add_raw(db: Database, outs: list[Totals], deployment: str, edges: list[tuple[int, int, int]], ttft: bool) -> None:
    """The raw rows of the partial minutes at the windows' edges ((window, start, end) each), added
    as the writer adds a batch to its rollups (``rollups.accumulate_many``): the same sums."""
    params: dict[str, Any] = {"dep": deployment}
    spans = [("records", a, b) for _, a, b in edges]
    sql = union_sql(spans, _ROW_SQL, "deployment = :dep", params, [str(k) for k, _, _ in edges])
    rows: dict[int, list[dict[str, Any]]] = {}
    for k, *row in db.fetchall(sql, params):
        rows.setdefault(int(k), []).append(dict(zip(ROW_COLUMNS, row, strict=True)))
    for k, group in rows.items():
        out, sums = outs[k], empty_sums()
        latency, first = accumulate_many(sums, group)
        for col, value in sums.items():
            out.sums[col] += value
        for bins, times in ((out.bins, latency), (out.ttft_bins, first if ttft else [])):
            for ms in times:
                index = str(histogram.bin_of(ms))
                bins[index] = bins.get(index, 0) + 1


def _add_bins(
    db: Database,
    out: Totals,
    res: Resolution,
    deployment: str,
    ranges: list[tuple[int, int]],
    count: int,
    ttft: bool = False,
    cache: BinsCache | None = None,
) -> None:
    """The histograms of ``res``'s rows in ``ranges`` (``count`` requests), from the cache while
    that count is unchanged."""
    key = (deployment, res.name, tuple(ranges), ttft)
    hit = cache.get(key, count) if cache else None
    if hit is None:
        lat: histogram.Bins = {}
        first: histogram.Bins = {}
        params: dict[str, Any] = {"dep": deployment}
        cols = "latency_bins, ttft_bins" if ttft else "latency_bins, NULL"
        spans = [(res.table, a, b) for a, b in ranges]
        for bins, ttft_bins in db.fetchall(union_sql(spans, cols, "deployment = :dep", params), params):
            histogram.merge(lat, histogram.decode(bins))
            if ttft_bins is not None:
                histogram.merge(first, histogram.decode(ttft_bins))
        hit = (lat, first)
        if cache:
            cache.put(key, count, lat, first)
    histogram.merge(out.bins, hit[0])
    histogram.merge(out.ttft_bins, hit[1])


class PercentileCache:
    """Percentiles of whole past chart buckets, remembered with the bucket's request count.

    Rollups only grow, so a bucket whose count has not changed has the same histogram: a refresh
    computes the percentile of the buckets that changed (in practice the newest) and reuses the rest.
    Per process; bounded (the oldest half is dropped when full)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._entries: dict[tuple[Any, ...], tuple[int, float | None]] = {}

    def get(self, key: tuple[Any, ...], count: int) -> tuple[bool, float | None]:
        hit = self._entries.get(key)
        return (True, hit[1]) if hit is not None and hit[0] == count else (False, None)

    def put(self, key: tuple[Any, ...], count: int, value: float | None) -> None:
        if len(self._entries) >= self._max:
            for old in list(self._entries)[: self._max // 2]:
                self._entries.pop(old, None)
        self._entries[key] = (count, value)


def _resolution_for(origin_us: int, size_us: int) -> Resolution:
    return next(r for r in reversed(RESOLUTIONS) if size_us % r.size_us == 0 and origin_us % r.size_us == 0)


def _whole_bucket_sums(db: Database, res: Resolution, params: dict[str, Any]) -> dict[int, dict[str, float]]:
    where = "deployment = :dep AND bucket_us >= :a AND bucket_us < :b"
    return {
        int(row[0]): normalise(row[1:])
        for row in db.fetchall(
            f"SELECT (bucket_us - :origin) / :size AS k, {_SUMS_SQL} FROM {res.table} WHERE {where} GROUP BY k",
            params,
        )
    }


def bucket_sums(
    db: Database, deployment: str, origin_us: int, size_us: int, end_us: int
) -> dict[int, dict[str, float]]:
    """Only the sums per chart bucket over [origin, end) (no histograms): whole buckets from the
    coarsest rollup that fits, the newest, partial one from finer data."""
    res = _resolution_for(origin_us, size_us)
    full_end = _floor(end_us, res.size_us)
    sums = _whole_bucket_sums(
        db, res, {"dep": deployment, "a": origin_us, "b": full_end, "origin": origin_us, "size": size_us}
    )
    if full_end < end_us:
        k = (full_end - origin_us) // size_us
        sums[k] = totals(db, deployment, origin_us + k * size_us, end_us).sums
    return sums


def bucketed(
    db: Database,
    deployment: str,
    origin_us: int,
    size_us: int,
    end_us: int,
    q: float = 0.95,
    cache: PercentileCache | None = None,
) -> tuple[dict[int, dict[str, float]], dict[int, float | None]]:
    """Sums and the q-th latency percentile per chart bucket over [origin, end) (origin minute-aligned).

    Whole buckets come from the coarsest rollup that fits; their histograms are read only for
    buckets the cache does not hold, and the newest, partial bucket is finished from finer data."""
    res = _resolution_for(origin_us, size_us)
    full_end = _floor(end_us, res.size_us)
    params = {"dep": deployment, "a": origin_us, "b": full_end, "origin": origin_us, "size": size_us}
    where = "deployment = :dep AND bucket_us >= :a AND bucket_us < :b"
    sums = _whole_bucket_sums(db, res, params)

    def key(k: int) -> tuple[Any, ...]:
        return (deployment, res.name, size_us, origin_us + k * size_us, q)

    pct: dict[int, float | None] = {}
    stale: set[int] = set()
    for k, bucket in sums.items():
        known, value = cache.get(key(k), int(bucket["requests"])) if cache else (False, None)
        if known:
            pct[k] = value
        else:
            stale.add(k)
    if stale:
        params["a"] = origin_us + min(stale) * size_us
        bins: dict[int, histogram.Bins] = {}
        for k, row_bins in db.fetchall(
            f"SELECT (bucket_us - :origin) / :size, latency_bins FROM {res.table} WHERE {where}", params
        ):
            if int(k) in stale:
                histogram.merge(bins.setdefault(int(k), {}), histogram.decode(row_bins))
        for k in stale:
            pct[k] = histogram.percentile_from_bins(bins.get(k, {}), q)
            if cache:
                cache.put(key(k), int(sums[k]["requests"]), pct[k])
    if full_end < end_us:
        k = (full_end - origin_us) // size_us
        last_start = origin_us + k * size_us
        tail = totals(db, deployment, last_start, end_us)
        sums[k] = tail.sums
        pct[k] = histogram.percentile_from_bins(tail.bins, q)
    return sums, pct
