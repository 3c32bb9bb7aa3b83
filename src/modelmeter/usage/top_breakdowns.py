"""A window's breakdown by API key, end user, tag or session, from the hourly top-N rollups
(``storage.top_rollups``): one row per value that was among an hour's top values, and "others".

The rollups are hourly, so these breakdowns cover the whole hours the window touches (UTC hours;
``start``/``end`` in the answer say which). Their rows plus "others" equal those hours' totals
exactly (for tags: each record once per tag it has). A value's row counts its requests in the hours
where it was among the top values (per hour, the TOP_N by requests and the TOP_N by spend); its requests in other
hours are in "others", with the values past ``limit``. With one writer process a listed hour is
exact (``storage.top_values``), so a value listed in every hour it had requests has exact figures.
p95 latency per row comes from the rows' latency histograms (coarse bins: within 2.6%; a whole day's
read summed, ``storage.top_days``); "others" and the total have none (the cards show the window's p95)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modelmeter.storage import histogram, top_days
from modelmeter.storage.database import Database, in_list
from modelmeter.storage.rollups import HOUR
from modelmeter.storage.top_rollups import SUMS, TABLE
from modelmeter.storage.top_values import coarse_value
from modelmeter.units import PICO, iso
from modelmeter.usage import breakdowns
from modelmeter.usage.rollup_reads import segments
from modelmeter.usage.window import Window

SORTS = ("spend", "requests", "tokens", "error_rate", "p95")
MAX_LIMIT = 500


@dataclass
class _Hours:
    """The hours' rows summed per value in SQL; the histograms of the values shown, summed when an
    answer needs them (a row's p95) and kept. ``source`` is where they are read from."""

    sums: dict[str, list[int]] = field(default_factory=dict)
    others: list[int] = field(default_factory=lambda: [0] * len(SUMS))
    merged: dict[str, histogram.Bins] = field(default_factory=dict)
    answers: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # by (sort, limit)
    source: tuple[Database, str, str, int, int] | None = None  # (db, deployment, dim, a, b)

    def requests(self) -> int:
        """Every request the hours hold (listed rows and "others"): what the cache checks."""
        return sum(s[0] for s in self.sums.values()) + self.others[0]

    def histogram(self, value: str) -> histogram.Bins:
        got = self.merged.get(value)
        if got is None:
            self.load([value])
            got = self.merged.setdefault(value, {})
        return got

    def load(self, values: list[str] | None) -> None:
        """Sum the histograms of ``values`` (None: every value) not summed yet, in one read."""
        if self.source is None:
            return
        want = [v for v in (self.sums if values is None else values) if v not in self.merged]
        if not want:
            return
        db, deployment, dim, a, b = self.source
        for value, bins in _histograms(db, deployment, dim, a, b, None if values is None else want).items():
            self.merged[value] = bins
        for v in want:
            self.merged.setdefault(v, {})


class TopCache:
    """Summed hours remembered with their request count: rows only ever add up to more requests
    (a move between a value and "others" comes with the batch that caused it), so an unchanged count
    means unchanged rows and a refresh reads one sum instead of every row. Per process; bounded."""

    def __init__(self, max_entries: int = 64) -> None:
        self._max = max_entries
        self._entries: dict[tuple[Any, ...], tuple[int, _Hours]] = {}

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return key in self._entries

    def get(self, key: tuple[Any, ...], count: int) -> _Hours | None:
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] == count else None

    def put(self, key: tuple[Any, ...], count: int, hours: _Hours) -> None:
        if len(self._entries) >= self._max:
            for old in list(self._entries)[: self._max // 2]:
                self._entries.pop(old, None)
        self._entries[key] = (count, hours)


def hour_span(window: Window) -> tuple[int, int]:
    size = HOUR.size_us
    return window.start_us - window.start_us % size, -(-window.end_us // size) * size


_SUMMED = ", ".join(f"SUM({c})" for c in SUMS)
_WHERE = "deployment = :dep AND dim = :dim AND bucket_us >= :a AND bucket_us < :b"


def _read(db: Database, deployment: str, dim: str, a: int, b: int) -> _Hours:
    # Summed by value in SQL: one row per value instead of one per (hour, value); on PostgreSQL
    # fetching the hourly rows into Python was most of a first call (~8,600 rows for 7 days).
    out = _Hours(source=(db, deployment, dim, a, b))
    rows = db.fetchall(
        f"SELECT other, value, {_SUMMED} FROM {TABLE} WHERE {_WHERE} GROUP BY other, value",
        {"dep": deployment, "dim": dim, "a": a, "b": b},
    )
    for other, value, *rest in rows:
        if other:
            out.others = [int(x) for x in rest]
        else:
            out.sums[value] = [int(x) for x in rest]
    return out


def _histograms(
    db: Database, deployment: str, dim: str, a: int, b: int, values: list[str] | None
) -> dict[str, histogram.Bins]:
    """The listed rows' histograms summed per value (of ``values``, or of every value): whole days
    from their day rows (``storage.top_days``), the hours at either end from the hourly rows."""
    params: dict[str, Any] = {"dep": deployment, "dim": dim}
    only = ""
    if values is not None:
        marks, listed = in_list("v", values)
        params |= listed
        only = f" AND value IN ({marks})"
    split = segments(a, b, days=True)  # [a, b) is whole hours: hour and day ranges only
    parts = []
    for i, (x, y) in enumerate(split["hour"]):
        params |= {f"a{i}": x, f"b{i}": y}
        parts.append(
            f"SELECT value, CAST(latency_bins AS TEXT) FROM {TABLE} WHERE deployment = :dep AND dim = :dim "
            f"AND bucket_us >= :a{i} AND bucket_us < :b{i} AND other = 0 AND latency_bins IS NOT NULL{only}"
        )
    for d0, d1 in split["day"]:
        params |= {"d0": d0, "d1": d1}
        parts.append(
            f"SELECT value, latency_bins FROM {top_days.TABLE} WHERE deployment = :dep AND dim = :dim "
            f"AND day_us >= :d0 AND day_us < :d1 AND latency_bins IS NOT NULL{only}"
        )
    if not parts:
        return {}
    # As text, parsed here: the hourly rows are jsonb on PostgreSQL (psycopg's loader cost ~5 ms more
    # per 8,000 rows), the day rows text. (Summing the bins in SQL with jsonb_each_text was slower:
    # 65-76 ms for 7 days by user when Python's sum of the hourly rows took 37.)
    out: dict[str, histogram.Bins] = {}
    for value, bins in db.fetchall(" UNION ALL ".join(parts), params):
        got = out.get(value)
        if got is None:
            got = out[value] = {}
        histogram.merge(got, histogram.decode(bins))
    return out


def _hours(db: Database, deployment: str, dim: str, a: int, b: int, cache: TopCache | None) -> _Hours:
    if cache is None:
        return _read(db, deployment, dim, a, b)
    key = (deployment, dim, a, b)
    if key not in cache:  # a first read: its count comes with it (no count query first)
        first = _read(db, deployment, dim, a, b)
        cache.put(key, first.requests(), first)
        return first
    found = db.fetchone(
        f"SELECT COALESCE(SUM(requests), 0) FROM {TABLE} WHERE deployment = :dep AND dim = :dim "
        "AND bucket_us >= :a AND bucket_us < :b",
        {"dep": deployment, "dim": dim, "a": a, "b": b},
    )
    count = int(found[0]) if found else 0
    hit = cache.get(key, count)
    if hit is None:
        hit = _read(db, deployment, dim, a, b)
        cache.put(key, hit.requests(), hit)
    return hit


def p95(bins: histogram.Bins) -> float | None:
    """Nearest-rank p95 of a row's histogram (``top_values.coarse_bin`` bins: within 2.6%)."""
    total = sum(bins.values())
    if total <= 0:
        return None
    rank = max(math.ceil(0.95 * total), 1)
    seen = 0
    for index in sorted(bins, key=int):
        seen += bins[index]
        if seen >= rank:
            return round(coarse_value(int(index), histogram.BIN_FLOOR_MS, histogram.BIN_RATIO), 3)
    return None


def _row(value: str, s: list[int], bins: histogram.Bins | None) -> dict[str, Any]:
    n = s[0]
    return {
        "value": value,
        "requests": n,
        "failed": n - s[1],
        "error_rate": (n - s[1]) / n if n else None,
        "prompt_tokens": s[2],
        "completion_tokens": s[3],
        "total_tokens": s[4],
        "spend": s[5] / PICO,
        "p95_ms": p95(bins) if bins else None,
    }


def _sort_key(sort: str, hours: _Hours) -> Any:
    if sort == "p95":
        hours.load(None)
        return lambda v: (-(p95(hours.histogram(v)) or 0.0), v)
    if sort == "error_rate":
        return lambda v: (-(hours.sums[v][0] - hours.sums[v][1]) / hours.sums[v][0], -hours.sums[v][0], v)
    col = {"spend": 5, "requests": 0, "tokens": 4}[sort]
    return lambda v: (-hours.sums[v][col], -hours.sums[v][0], v)


def breakdown(
    db: Database,
    deployment: str,
    window: Window,
    by: str,
    *,
    sort: str = "spend",
    limit: int = 50,
    cache: TopCache | None = None,
) -> dict[str, Any]:
    """The ``limit`` values of dimension ``by`` first by ``sort``; everything else in ``others``."""
    a, b = hour_span(window)
    hours = _hours(db, deployment, by, a, b, cache)
    done = hours.answers.get((sort, limit))
    if done is None:
        done = hours.answers[(sort, limit)] = _answer(hours, sort, limit)
    return {"deployment": deployment, "by": by, "sort": sort, "start": iso(a), "end": iso(b), **done}


def _answer(hours: _Hours, sort: str, limit: int) -> dict[str, Any]:
    values = sorted((v for v, s in hours.sums.items() if s[0]), key=_sort_key(sort, hours))
    shown, rest = values[:limit], values[limit:]
    hours.load(shown)  # the shown rows' histograms, in one read (sorting by p95 read them all)
    rows = [_row(v, hours.sums[v], hours.histogram(v)) for v in shown]
    others = list(hours.others)
    for v in rest:
        for i, x in enumerate(hours.sums[v]):
            others[i] += x
    total = [x + sum(hours.sums[v][i] for v in shown) for i, x in enumerate(others)]
    # No p95 for "others" and the total (the cards have the window's): only rows keep histograms.
    other_row = _row("", others, None) if others[0] else None
    if other_row is not None:
        other_row["values"] = len(rest)  # values past the limit (each hour's unlisted ones uncounted)
    total_row = _row("", total, None)
    total_row.pop("value")
    return {"rows": rows, "others": other_row, "total": total_row}


CSV_COLUMNS = (*breakdowns.CSV_COLUMNS, "p95_ms")  # the call-type breakdown's, and each row's p95
