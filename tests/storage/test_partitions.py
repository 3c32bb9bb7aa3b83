"""PostgreSQL's per-record tables partitioned by day (migration 0020, storage/partitions.py):
retention drops whole days of every per-record table, the rest row by row, and the ledger and the
log read the same before and after; an older database is upgraded with nothing lost."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from modelmeter.storage import partitions
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import MIGRATIONS, migrate
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.storage.row import RECORD_COLUMNS
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import parse_window

from .test_storage import make_row

pytestmark = pytest.mark.postgres

DAY = 86400.0
DAY_US = partitions.DAY_US
PER_RECORD = ("records", "record_bodies", "record_tags", "record_filters", "request_ids")
# request_ids: a quarter hour's index goes once the whole quarter hour is before the cut.
BEFORE = {"request_ids": "slot_us + 900000000 <= :c"}


def rows_at(starts: list[float], tag: str) -> list[dict[str, Any]]:
    rows = [make_row(s, tags=[tag]) for s in starts]
    for i, r in enumerate(rows):
        r["request_id"] = f"chatcmpl-{tag}-{i}"
        r["session_id"] = f"sess-{tag}"
    return rows


def exists(db: Database, table: str) -> bool:
    return db.fetchone("SELECT to_regclass(:t)", {"t": table})[0] is not None


def counts(db: Database, cut_us: int) -> dict[str, tuple[int, int]]:
    """Per table: rows before ``cut_us`` and the others."""
    out = {}
    for table in PER_RECORD:
        before = BEFORE.get(table, "start_us < :c")
        out[table] = db.fetchone(
            f"SELECT COUNT(*) FILTER (WHERE {before}), COUNT(*) FILTER (WHERE NOT ({before})) FROM {table}",
            {"c": cut_us},
        )
    return out


def test_retention_drops_whole_days_then_the_rest_row_by_row(pg: Database) -> None:
    now = time.time()
    now_us = int(now * 1e6)
    assert partitions.ensure(pg, now_us - 6 * DAY_US, now_us) >= 6
    cut_us = now_us - int(2.5 * DAY_US)
    whole = [d for d in partitions.days(pg) if (d + 1) * DAY_US <= cut_us]
    # Three old days (whole partitions), the cut's own day on both sides of the cut, and today.
    old = rows_at([now - k * DAY + i * 30 for k in (5, 4, 3.6) for i in range(40)], "old")
    before_cut = rows_at([cut_us / 1e6 - 600 + i for i in range(25)], "edge")
    kept = rows_at([cut_us / 1e6 + 600 + i for i in range(25)] + [now - 3600 + i for i in range(30)], "new")
    insert_rows(pg, old + before_cut + kept)
    window = parse_window("30d", now=now)
    totals = summary_q.summary(pg, "gpt", window)
    assert totals["requests"] == 200
    assert pg.fetchone("SELECT COUNT(*) FROM records_default")[0] == 0  # each row is in its day's partition
    before = counts(pg, cut_us)
    assert before["records"] == (145, 55) and before["record_bodies"] == (145, 55)
    assert before["record_tags"] == (145, 55) and before["record_filters"] == (145, 55)

    removed = prune(pg, Retention(records_days=2.5), now=now, batch=10)

    assert removed["records"] == 145
    for day in whole:  # dropped, not emptied: nothing is left for a vacuum
        assert not any(exists(pg, partitions.name(t, day)) for t in PER_RECORD), day
    after = counts(pg, cut_us)
    for table in PER_RECORD:
        assert after[table][0] == 0, table
        assert after[table][1] == before[table][1], table
    assert summary_q.summary(pg, "gpt", window) == totals  # the rollups keep the ledger
    one = records_q.one(pg, kept[0]["id"])
    assert one is not None and one["request"] == {"messages": []} and one["response"] == {"ok": True}
    assert records_q.one(pg, before_cut[0]["id"]) is None
    assert partitions.days(pg)[0] == cut_us // DAY_US  # the cut's day stays, emptied up to the cut


def test_an_older_database_is_partitioned_with_nothing_lost(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelmeter.storage import migrations

    db = Database(pg_url)
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", tuple(m for m in MIGRATIONS if m.name < "0020"))
        migrations.migrate(db)
        monkeypatch.undo()
        now = time.time()
        rows = rows_at([now - k * DAY - i * 7 for k in (0, 1, 9) for i in range(30)], "up")
        with db.transaction() as tx:  # the 0019 shapes: bodies without start_us
            db.executemany(
                tx, f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) VALUES (:{', :'.join(RECORD_COLUMNS)})", rows
            )
            db.executemany(
                tx, "INSERT INTO record_bodies (id, request, response) VALUES (:id, :request, :response)", rows
            )
            db.executemany(
                tx,
                "INSERT INTO record_tags (deployment, tag, start_us, id) VALUES (:deployment, 'up', :start_us, :id)",
                rows,
            )
        window = parse_window("30d", now=now)
        log_before = list(records_q.export(db, "gpt", window))
        assert len(log_before) == 90

        assert migrate(db)[:1] == ["0020_partitions"]  # (and those after it)

        assert pg_count(db, "records_default") == 0
        days = {int(r["start_us"]) // DAY_US for r in rows}
        assert days <= set(partitions.days(db))
        for table in ("records", "record_bodies", "record_tags"):
            assert pg_count(db, table) == 90, table
        mismatched = db.fetchone(
            "SELECT COUNT(*) FROM record_bodies b JOIN records r ON r.id = b.id WHERE b.start_us <> r.start_us"
        )[0]
        assert mismatched == 0
        assert list(records_q.export(db, "gpt", window)) == log_before
        got = records_q.one(db, rows[40]["id"])
        assert got is not None and got["request"] == {"messages": []}
        tagged = records_q.page(db, "gpt", window, limit=100, tag="up")["data"]
        assert len(tagged) == 90
        # the writer stores into the partitioned tables
        insert_rows(db, rows_at([now - 60 + i for i in range(5)], "after"))
        assert pg_count(db, "records") == 95
    finally:
        db.close()


def pg_count(db: Database, table: str) -> int:
    return int(db.fetchone(f"SELECT COUNT(*) FROM {table}")[0])


def test_a_day_already_in_the_default_partition_keeps_using_it(pg: Database, caplog: pytest.LogCaptureFixture) -> None:
    far = time.time() + 40 * DAY  # a clock far ahead: no partition for that day yet
    insert_rows(pg, rows_at([far], "far"))
    assert pg_count(pg, "records_default") == 1
    with caplog.at_level(logging.WARNING, logger="modelmeter"):
        assert partitions.ensure(pg, int(far * 1e6), int(far * 1e6)) == 0
    assert "default partition holds rows" in caplog.text
    insert_rows(pg, rows_at([far + 1], "far2"))
    assert pg_count(pg, "records_default") == 2
    # a day with no rows in the default partition gets its partitions
    assert partitions.ensure(pg, int((far + DAY) * 1e6), int((far + DAY) * 1e6)) == 1


def test_sqlite_has_no_partitions(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path}/t.db")
    try:
        migrate(db)
        assert partitions.ensure_ahead(db) == 0 and partitions.drop_before(db, 2**62) == 0
        insert_rows(db, rows_at([time.time()], "s"))
        assert db.fetchone("SELECT start_us IS NOT NULL FROM record_bodies")[0] == 1
    finally:
        db.close()


def test_a_record_is_found_by_id_whatever_time_its_id_names(pg: Database) -> None:
    """A gateway's id starts with its time (read first, in that day's partitions); an imported
    run's ids, or one whose time is days off, are found in every day's."""
    now = time.time()
    partitions.ensure(pg, int((now - 5 * DAY) * 1e6), int(now * 1e6))
    rows = rows_at([now - 3 * DAY, now - 2 * DAY, now - DAY], "ids")
    rows[1]["id"] = "imported-run-7"
    rows[2]["id"] = f"{int((now + 3 * DAY) * 1000):012x}{'0' * 16}"  # its time is 4 days off
    insert_rows(pg, rows)
    assert partitions.near_id_time(pg, rows[0]["id"]) is not None
    assert partitions.near_id_time(pg, rows[1]["id"]) is None
    for r in rows:
        got = records_q.one(pg, r["id"])
        assert got is not None and got["id"] == r["id"], r["id"]
        assert got["request"] == {"messages": []} and got["response"] == {"ok": True}
    assert records_q.one(pg, "0" * 28) is None
