"""The top-N rows' histograms summed per day (``storage.top_days``): a day row always equals the sum
of its day's hourly rows (through demotions, reloaded lists, two writers, a rolled-back batch,
retention and the 0021 upgrade), and breakdowns that read whole days from them answer exactly
what the hourly rows alone give."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmeter.storage import histogram, migrations, top_days, top_rollups, upstream_rollups
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.storage.rollups import DAY_US
from modelmeter.usage import rollup_reads, top_breakdowns
from modelmeter.usage.window import Window

from .test_top_breakdowns import histograms_at_once, per_row_hours, traffic  # noqa: F401 (a fixture)

DAY = DAY_US
HOUR = 3_600_000_000
T0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC).timestamp()  # traffic()'s start: 09:00 UTC


def hours_by_day(db: Database) -> dict[tuple[str, int, str], histogram.Bins]:
    out: dict[tuple[str, int, str], histogram.Bins] = defaultdict(dict)
    for dim, bucket, value, bins in db.fetchall(
        "SELECT dim, bucket_us, value, CAST(latency_bins AS TEXT) FROM rollup_top_hour "
        "WHERE other = 0 AND latency_bins IS NOT NULL"
    ):
        histogram.merge(out[(dim, int(bucket) - int(bucket) % DAY, value)], histogram.decode(bins))
    return {k: {b: n for b, n in v.items() if n} for k, v in out.items() if any(v.values())}


def day_rows(db: Database) -> dict[tuple[str, int, str], histogram.Bins]:
    rows = db.fetchall(
        f"SELECT dim, day_us, value, CAST(latency_bins AS TEXT) FROM {top_days.TABLE} WHERE latency_bins IS NOT NULL"
    )
    return {(dim, int(day), value): histogram.decode(bins) for dim, day, value, bins in rows}


def assert_mirrored(db: Database) -> None:
    want = hours_by_day(db)
    assert want and day_rows(db) == want
    assert len({day for _, day, _ in want}) == 3  # the traffic spans three UTC days


@pytest.fixture
def removals(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many demoted hour rows took a stored histogram away from a day row."""
    seen: list[int] = []
    real = top_days.Deltas.remove

    def counted(self: top_days.Deltas, dep: str, dim: str, bucket: int, value: str, stored: Any) -> None:
        if stored is not None:
            seen.append(1)
        real(self, dep, dim, bucket, value, stored)

    monkeypatch.setattr(top_days.Deltas, "remove", counted)
    return seen


def three_days(n: int, seed: int) -> list[dict]:
    return traffic(n, seed, hours=52)  # 09:00 on day one to 13:00 on day three


def test_day_rows_equal_the_sum_of_their_hours(db: Database, removals: list[int]) -> None:
    rows = three_days(6000, 5)
    for i in range(0, len(rows), 150):
        insert_rows(db, rows[i : i + 150])
        if i % 1500 == 0:  # reloaded lists: rows in neither list are folded, bins and all
            top_rollups.forget(db)
    assert removals  # demoted rows with histograms: the day rows had bins taken away
    assert_mirrored(db)


def test_two_writers_and_a_rolled_back_batch_keep_the_day_rows_exact(
    db: Database, db_url: str, removals: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = three_days(6000, 9)
    other = Database(db_url)  # its own lists: another writer process
    real = upstream_rollups.add_rows  # runs after the top-N step: its failure rolls the day rows back
    try:
        for n, i in enumerate(range(0, len(rows), 200)):
            writer = (db, other)[n % 2]
            if n == 11:
                monkeypatch.setattr(upstream_rollups, "add_rows", lambda *a: (_ for _ in ()).throw(RuntimeError("x")))
                with pytest.raises(RuntimeError):
                    insert_rows(writer, rows[i : i + 200])
                monkeypatch.setattr(upstream_rollups, "add_rows", real)
            insert_rows(writer, rows[i : i + 200])
    finally:
        other.close()
    assert removals
    assert_mirrored(db)


@pytest.mark.parametrize("by", top_rollups.TOP_DIMENSIONS)
def test_breakdowns_over_whole_days_equal_the_hourly_rows_alone(db: Database, by: str) -> None:
    rows = three_days(5000, 13)
    for i in range(0, len(rows), 250):
        insert_rows(db, rows[i : i + 250])
        if i % 1250 == 0:
            top_rollups.forget(db)
    day1 = int(T0 * 1e6) - int(T0 * 1e6) % DAY
    for a, b in (
        (day1, day1 + 3 * DAY),  # three whole days: day rows only
        (int(T0 * 1e6) + 2 * HOUR, day1 + 2 * DAY + 5 * HOUR),  # ends in hours, a whole day between
        (day1 + DAY + 3 * HOUR, day1 + DAY + 20 * HOUR),  # inside one day: hours only
    ):
        want_hours = per_row_hours(db, by, a, b)
        for sort in top_breakdowns.SORTS:
            for limit in (5, 500):
                want = top_breakdowns._answer(want_hours, sort, limit)
                got = top_breakdowns.breakdown(db, "gpt", Window(a, b, UTC), by, sort=sort, limit=limit)
                assert {k: got[k] for k in ("rows", "others", "total")} == want, (a, b, sort, limit)
        assert sum(r["p95_ms"] is not None for r in got["rows"]) > 5


def test_retention_keeps_a_day_until_all_of_it_is_past(db: Database) -> None:
    rows = three_days(3000, 21)
    for i in range(0, len(rows), 300):
        insert_rows(db, rows[i : i + 300])
    day1 = int(T0 * 1e6) - int(T0 * 1e6) % DAY
    cut = day1 + DAY + 10 * HOUR  # ten hours into day two
    prune(db, Retention(rollups_days=1.0), now=(cut + DAY) / 1e6)
    buckets = {int(r[0]) for r in db.fetchall("SELECT DISTINCT bucket_us FROM rollup_top_hour")}
    assert min(buckets) == day1 + DAY  # day one gone whole, day two kept whole
    assert {int(r[0]) for r in db.fetchall(f"SELECT DISTINCT day_us FROM {top_days.TABLE}")} == {
        day1 + DAY,
        day1 + 2 * DAY,
    }
    assert day_rows(db) == hours_by_day(db)
    minutes = {int(r[0]) for r in db.fetchall("SELECT DISTINCT bucket_us FROM rollup_minute")}
    assert min(minutes) >= cut  # the other rollups still go to the minute


def test_the_0021_upgrade_fills_the_day_rows(db: Database) -> None:
    rows = three_days(3000, 2)
    for i in range(0, len(rows), 300):
        insert_rows(db, rows[i : i + 300])
    want = day_rows(db)
    assert want == hours_by_day(db)
    with db.transaction() as tx:  # back to 0020, the hourly rows as they are
        tx.execute(f"DROP TABLE {top_days.TABLE}")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0021_top_days'")
    assert migrations.migrate(db) == ["0021_top_days"]
    assert day_rows(db) == want


def test_bins_net_is_the_same_sum_in_both_databases(db: Database) -> None:
    cases = [
        ('{"3": 2, "4": 1}', '{"3": -2, "5": 7}', {"4": 1, "5": 7}),
        ('{"3": 2}', '{"3": -2}', None),
        (None, '{"1": 4}', {"1": 4}),
        ('{"1": 4}', None, {"1": 4}),
    ]
    for a, b, want in cases:
        row = db.fetchone("SELECT mm_bins_net(CAST(:a AS TEXT), CAST(:b AS TEXT))", {"a": a, "b": b})
        assert (histogram.decode(row[0]) if row[0] is not None else None) == want


@given(st.integers(0, 20 * DAY), st.integers(1, 20 * 24))
def test_whole_hours_split_into_end_hours_and_whole_days(start_h: int, n_hours: int) -> None:
    """What a breakdown reads: ``segments`` of whole hours gives hour and day ranges only."""
    a = start_h - start_h % HOUR
    b = a + n_hours * HOUR
    parts = rollup_reads.segments(a, b, days=True)
    assert parts["raw"] == parts["minute"] == []
    hours, days = parts["hour"], (parts["day"][0] if parts["day"] else None)
    covered = [(x, y) for x, y in hours] + ([days] if days else [])
    covered.sort()
    assert covered[0][0] == a and covered[-1][1] == b
    assert all(x < y for x, y in covered) and all(p[1] == q[0] for p, q in pairwise(covered))
    if days:
        assert days[0] % DAY == 0 and days[1] % DAY == 0
        assert all(y - x < DAY for x, y in hours)
    else:
        assert b - a < 2 * DAY
