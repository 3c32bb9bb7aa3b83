"""Finding records by upstream request id without a random-order index on the log.

Request ids (``chatcmpl-…``) are random. An index on them makes almost every stored record write
a page of its own: measured, 30% of the batch writer's time at 300,000 records, and it grows with
the table. Instead, once an hour is over (and every call that started in it has surely ended),
its request ids are copied into ``request_ids`` in one statement, keyed by (hour, request id): that
only appends. A search probes each indexed hour of its window and scans the raw rows of the newest
hours, not indexed yet. A record stored after its hour was indexed (e.g. from the spool after an
outage) is indexed by the writer that stores it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database

HOUR_US = 3_600_000_000
# Calls last at most the upstream timeout (600 s by default); records wait a moment in the queue.
GRACE_US = 20 * 60 * 1_000_000
SETTING = "request_ids_until"  # server_settings: hours before this (UTC µs) are indexed
_MAX_PROBES = 5_000  # hours probed one by one; a longer window scans its range of the table


def _floor_hour(us: int) -> int:
    return us - us % HOUR_US


def initial_until(now_us: int | None = None) -> int:
    now_us = now_us if now_us is not None else int(time.time() * 1e6)
    return _floor_hour(now_us - GRACE_US)


def until(db: Database, tx: Any, *, lock: str = "") -> int:
    """The first hour not indexed yet. ``lock``: PostgreSQL row lock (FOR SHARE / FOR UPDATE), so a
    writer and the indexer agree on it; SQLite's write transactions are serialised anyway."""
    suffix = f" {lock}" if lock and db.dialect == "postgresql" else ""
    row = tx.execute(db.sql(f"SELECT value FROM server_settings WHERE name = :n{suffix}"), {"n": SETTING}).fetchone()
    return int(row[0]) if row else 0


def set_until(db: Database, tx: Any, value: int) -> None:
    tx.execute(db.sql("INSERT INTO server_settings (name, value) VALUES (:n, :v) "
                      "ON CONFLICT (name) DO UPDATE SET value = excluded.value"), {"n": SETTING, "v": str(value)})


COPY = ("INSERT INTO request_ids (hour_us, request_id, id) "
         "SELECT start_us - start_us % 3600000000, request_id, id FROM records "
         "WHERE start_us >= :a AND start_us < :b AND request_id IS NOT NULL "
         "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING")


def index_hours(db: Database, now_us: int | None = None) -> int:
    """Index every hour that is over; one short transaction per hour. Returns hours indexed."""
    target = initial_until(now_us)
    done = 0
    while True:
        with db.transaction() as tx:
            start = until(db, tx, lock="FOR UPDATE")
            if start == 0:  # never set (migration 0007 sets it): start at the oldest record
                oldest = tx.execute("SELECT MIN(start_us) FROM records").fetchone()[0]
                start = _floor_hour(int(oldest)) if oldest is not None else target
            if start >= target:
                if start > until(db, tx):
                    set_until(db, tx, start)
                return done
            tx.execute(db.sql(COPY), {"a": start, "b": start + HOUR_US})
            set_until(db, tx, start + HOUR_US)
        done += 1


def add_late(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """In the writer's transaction: index rows whose hour the indexer has already done."""
    if not rows:
        return
    indexed = until(db, tx, lock="FOR SHARE")
    late = [{"h": _floor_hour(r["start_us"]), "r": r["request_id"], "i": r["id"]}
            for r in rows if r["request_id"] is not None and r["start_us"] < indexed]
    if late:
        db.executemany(tx, "INSERT INTO request_ids (hour_us, request_id, id) VALUES (:h, :r, :i) "
                           "ON CONFLICT DO NOTHING", late)


def find(db: Database, deployment: str, request_id: str, start_us: int, end_us: int) -> list[str]:
    """Ids of records with this request id in [start, end) (of any deployment for indexed hours;
    the caller's query filters)."""
    ids: list[str] = []
    row = db.fetchone("SELECT value FROM server_settings WHERE name = :n", {"n": SETTING})
    indexed = int(row[0]) if row else 0
    first, last = _floor_hour(start_us), min(indexed, end_us)
    if first < last:
        hours = range(first, last, HOUR_US)
        if len(hours) <= _MAX_PROBES:
            marks = ", ".join(f":h{i}" for i in range(len(hours)))
            params: dict[str, Any] = {f"h{i}": h for i, h in enumerate(hours)}
            found = db.fetchall(f"SELECT id FROM request_ids WHERE hour_us IN ({marks}) AND request_id = :r",
                                params | {"r": request_id})
        else:
            found = db.fetchall("SELECT id FROM request_ids WHERE hour_us >= :a AND hour_us < :b "
                                "AND request_id = :r", {"a": first, "b": last, "r": request_id})
        ids += [r[0] for r in found]
    if end_us > indexed:
        ids += [r[0] for r in db.fetchall(
            "SELECT id FROM records WHERE deployment = :d AND start_us >= :a AND start_us < :b "
            "AND request_id = :r", {"d": deployment, "a": max(start_us, indexed), "b": end_us, "r": request_id})]
    return ids


def prune(db: Database, cut_us: int) -> int:
    """Drop the index of hours wholly before ``cut_us`` (their records were pruned), an hour at a time."""
    removed = 0
    while True:
        row = db.fetchone("SELECT MIN(hour_us) FROM request_ids")
        if row is None or row[0] is None or int(row[0]) + HOUR_US > cut_us:
            return removed
        with db.transaction() as tx:
            cur = tx.execute(db.sql("DELETE FROM request_ids WHERE hour_us = :h"), {"h": int(row[0])})
            removed += max(cur.rowcount or 0, 0)
