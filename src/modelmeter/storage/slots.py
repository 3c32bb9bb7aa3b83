"""The slot indexer: indexes of the log built ten seconds of records at a time, not record by record.

An index on a random or high-cardinality value (request ids, API keys, sessions, end users) makes
nearly every stored record dirty a page of its own. Instead, a background task (every minute)
copies the records of each ten seconds that ended over two minutes ago into the index tables, in
one sorted statement each (``storage.request_ids``, keyed by quarter hour; ``storage.record_filters``),
and moves a mark, ``request_ids_until`` (its name from when it indexed request ids only). Reads use
the index tables before the mark and the raw rows after it (about the last three minutes). A record
stored after its time was indexed (a call longer than the grace, or rows from the spool after an
outage) is indexed by the writer that stores it, so nothing depends on timing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage import record_filters, request_ids
from modelmeter.storage.database import Database

SLOT_US = request_ids.SLOT_US
# Records are indexed this long after they started: most calls that started then have been stored
# (later ones go through the writer's late path, which costs a random-order write each).
GRACE_US = 2 * 60 * 1_000_000
SETTING = "request_ids_until"  # server_settings: records before this (UTC µs) are indexed
# Indexed in steps of this (a transaction each: the writer waits for one at a time). It was a quarter
# hour: the newest ~20 minutes were then read from the raw rows, a scan of a busy deployment's
# records for every page of a rare key's log.
STEP_US = 10 * 1_000_000
_READ = "SELECT value FROM server_settings WHERE name = :n"


def floor_slot(us: int) -> int:
    return us - us % SLOT_US


def initial_until(now_us: int | None = None) -> int:
    """Where the mark may go now: the last step that ended ``GRACE_US`` ago."""
    now_us = now_us if now_us is not None else int(time.time() * 1e6)
    return (now_us - GRACE_US) // STEP_US * STEP_US


def until(db: Database, tx: Any, *, lock: str = "") -> int:
    """The mark: records before it are indexed. ``lock``: PostgreSQL row lock (FOR SHARE / FOR UPDATE), so a
    writer and the indexer agree on it; SQLite's write transactions are serialised anyway."""
    suffix = f" {lock}" if lock and db.dialect == "postgresql" else ""
    row = tx.execute(db.sql(_READ + suffix), {"n": SETTING}).fetchone()
    return int(row[0]) if row else 0


def read_until(db: Database) -> int:
    """The mark, outside a transaction (readers)."""
    row = db.fetchone(_READ, {"n": SETTING})
    return int(row[0]) if row else 0


def set_until(db: Database, tx: Any, value: int) -> None:
    tx.execute(
        db.sql(
            "INSERT INTO server_settings (name, value) VALUES (:n, :v) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ),
        {"n": SETTING, "v": str(value)},
    )


def index_range(db: Database, tx: Any, start_us: int, end_us: int) -> None:
    """Copy the records of [start, end) into every slot index."""
    span = {"a": start_us, "b": end_us}
    tx.execute(db.sql(request_ids.COPY), span)
    tx.execute(db.sql(record_filters.copy_sql(db.dialect)), span)


def index_slots(db: Database, now_us: int | None = None) -> int:
    """Index every step that is over, ``STEP_US`` of records a transaction (the writer waits for
    each: ~10 µs a record, so 1.5 s at a sustained 15,000 records/s); a stretch with no records is
    passed in one step. Returns the transactions that moved the mark."""
    target = initial_until(now_us)
    steps = 0
    while True:
        with db.transaction() as tx:
            start = until(db, tx, lock="FOR UPDATE")
            if start == 0:  # never set (migration 0007 sets it): start at the oldest record
                oldest = tx.execute("SELECT MIN(start_us) FROM records").fetchone()[0]
                start = floor_slot(int(oldest)) if oldest is not None else target
            if start >= target:
                if start > until(db, tx):
                    set_until(db, tx, start)
                return steps
            first = tx.execute(
                db.sql("SELECT MIN(start_us) FROM records WHERE start_us >= :s"), {"s": start}
            ).fetchone()[0]
            end = target
            if first is not None and first < target:
                end = min(max(start, first - first % STEP_US) + STEP_US, target)
                index_range(db, tx, start, end)
            set_until(db, tx, end)
        steps += 1


def add_late(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """In the writer's transaction: index rows whose slot the indexer has already done."""
    if not rows:
        return
    indexed = until(db, tx, lock="FOR SHARE")
    late = [r for r in rows if r["start_us"] < indexed]
    if late:
        request_ids.add(db, tx, late)
        record_filters.add(db, tx, late)
