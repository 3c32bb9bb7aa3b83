"""The day resolution of the rollups (migration 0022): a day row equals the sum of its 24 hours in
every column and histogram bin, as the writer keeps it and as the upgrade fills it; windows and
charts that read whole days from it equal the raw rows; retention keeps a day until all of it is
past the cut."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmeter.storage import histogram, migrations
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.storage.rollups import DAY_US, HOUR_US, SUM_COLUMNS
from modelmeter.usage import rollup_reads
from modelmeter.usage.window import Window

from .test_rollups import chart_matches_rows, check
from .test_storage import make_row

NOW = datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC).timestamp()


def four_days(db: Database, n: int = 3000, seed: int = 4) -> list[dict]:
    rnd = random.Random(seed)
    rows = [
        make_row(
            NOW - rnd.uniform(0, 4 * 86400),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 500),
            completion=rnd.randint(0, 300),
        )
        for _ in range(n)
    ]
    rows.sort(key=lambda r: r["start_us"])
    for i in range(0, len(rows), 200):
        insert_rows(db, rows[i : i + 200])
    return rows


def rows_of(db: Database, table: str) -> dict[int, dict[str, Any]]:
    cols = (*SUM_COLUMNS, "latency_bins", "ttft_bins")
    out = {}
    for bucket, *values in db.fetchall(
        f"SELECT bucket_us, {', '.join(cols[:-2])}, CAST(latency_bins AS TEXT), CAST(ttft_bins AS TEXT) "
        f"FROM {table} WHERE deployment = 'gpt'"
    ):
        row = dict(zip(cols, values, strict=True))
        row["latency_bins"] = histogram.decode(row["latency_bins"])
        row["ttft_bins"] = histogram.decode(row["ttft_bins"])
        out[int(bucket)] = row
    return out


def hours_summed_by_day(db: Database) -> dict[int, dict[str, Any]]:
    days: dict[int, dict[str, Any]] = {}
    for bucket, row in sorted(rows_of(db, "rollup_hour").items()):
        day = days.setdefault(
            bucket - bucket % DAY_US, {c: 0 for c in SUM_COLUMNS} | {"latency_bins": {}, "ttft_bins": {}}
        )
        for c in SUM_COLUMNS:
            day[c] += row[c]
        histogram.merge(day["latency_bins"], row["latency_bins"])
        histogram.merge(day["ttft_bins"], row["ttft_bins"])
    return days


def assert_days_equal_hours(db: Database) -> None:
    want, got = hours_summed_by_day(db), rows_of(db, "rollup_day")
    assert len(want) == 5 and set(got) == set(want)  # four days back from mid-day: five UTC days
    for day, row in want.items():
        for c in SUM_COLUMNS:  # counts exactly; the latency sums (floats) added in another order
            want_c = pytest.approx(row[c], rel=1e-9) if isinstance(row[c], float) else row[c]
            assert got[day][c] == want_c, (day, c)
        assert got[day]["latency_bins"] == row["latency_bins"] and got[day]["ttft_bins"] == row["ttft_bins"]


def test_the_writer_keeps_each_day_the_sum_of_its_hours(db: Database) -> None:
    four_days(db)
    assert_days_equal_hours(db)


def test_windows_and_daily_charts_over_whole_days_equal_the_raw_rows(db: Database) -> None:
    rows = four_days(db)
    end = int(NOW * 1e6) + 1
    day0 = end - end % DAY_US
    for start, stop in (
        (end - 4 * DAY_US, end),  # three whole days in the middle
        (day0 - 3 * DAY_US, day0),  # whole days only
        (day0 - 2 * DAY_US - 5 * HOUR_US - 17_000_001, day0 - 3 * HOUR_US - 123_456_789),  # every edge kind
    ):
        parts = rollup_reads.segments(start, stop, days=True)
        assert (parts["day"] and parts["hour"]) or start % DAY_US == 0
        check(db, rows, Window(start, stop, ZoneInfo("UTC")))
    # 60 days in UTC: one-day buckets, each read from its day row.
    window = Window(end - 60 * DAY_US, end, ZoneInfo("UTC"))
    assert window.bucket_seconds() == 86400
    assert chart_matches_rows(db, rows, window) == 5


def test_the_0022_upgrade_fills_the_days_from_the_hours(db: Database) -> None:
    four_days(db)
    want = rows_of(db, "rollup_day")
    with db.transaction() as tx:  # back to 0021, the hourly rows as they are
        tx.execute("DROP TABLE rollup_day")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0022_rollup_day'")
    assert migrations.migrate(db) == ["0022_rollup_day"]
    got = rows_of(db, "rollup_day")
    assert set(got) == set(want)
    for day in want:
        assert {c: got[day][c] for c in SUM_COLUMNS if isinstance(want[day][c], int)} == {
            c: want[day][c] for c in SUM_COLUMNS if isinstance(want[day][c], int)
        }
        assert got[day]["latency_bins"] == want[day]["latency_bins"] and got[day]["ttft_bins"] == want[day]["ttft_bins"]
    assert_days_equal_hours(db)


def test_retention_keeps_the_cuts_day_whole(db: Database) -> None:
    four_days(db)
    day0 = int(NOW * 1e6) - int(NOW * 1e6) % DAY_US
    cut = day0 - 2 * DAY_US + 7 * HOUR_US  # seven hours into the day before yesterday
    prune(db, Retention(rollups_days=1.0), now=(cut + DAY_US) / 1e6)
    assert min(rows_of(db, "rollup_day")) == day0 - 2 * DAY_US
    assert min(rows_of(db, "rollup_hour")) == cut


@given(st.integers(0, 40 * DAY_US), st.integers(1, 30 * DAY_US))
def test_segments_cover_the_window_once(start: int, length: int) -> None:
    plain = rollup_reads.segments(start, start + length)
    assert plain["day"] == []
    parts = rollup_reads.segments(start, start + length, days=True)
    spans = sorted(r for name in ("raw", "minute", "hour", "day") for r in parts[name])
    assert spans[0][0] == start and spans[-1][1] == start + length
    assert all(p[1] == q[0] for p, q in pairwise(spans)) and all(a < b for a, b in spans)
    assert all(a % DAY_US == 0 and b % DAY_US == 0 for a, b in parts["day"])
    # The day split only moves whole days out of the hour range.
    merged = sorted(parts["hour"] + parts["day"])
    joined = [merged[0]] if merged else []
    for a, b in merged[1:]:
        joined = [*joined[:-1], (joined[-1][0], b)] if joined[-1][1] == a else [*joined, (a, b)]
    assert joined == plain["hour"]
