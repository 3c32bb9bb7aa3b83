"""Finding records by upstream request id without a random-order index on the log.

Request ids (``chatcmpl-…``) are random. An index on them makes almost every stored record write
a page of its own: measured, 30% of the batch writer's time at 300,000 records, and it grows with
the table. Instead, a background task copies the request ids of each quarter hour that is over into
``request_ids`` in one statement, keyed by (quarter hour, request id): that only appends. A search
probes each indexed quarter hour of its window and scans the raw rows of the newest ones (at most
~20 minutes). A record stored after its quarter hour was indexed (a long call, or rows from the
spool after an outage) is indexed by the writer that stores it, so nothing depends on timing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database

SLOT_US = 900_000_000  # a quarter hour
# A slot is indexed this long after it ends: most calls that started in it have been stored by then
# (later ones go through the writer's late path, which costs a random-order write each).
GRACE_US = 2 * 60 * 1_000_000
SETTING = "request_ids_until"  # server_settings: slots before this (UTC µs) are indexed
_MAX_PROBES = 5_000  # slots probed one by one (52 days); a longer window scans its range of the table


def _floor_slot(us: int) -> int:
    return us - us % SLOT_US


def initial_until(now_us: int | None = None) -> int:
    now_us = now_us if now_us is not None else int(time.time() * 1e6)
    return _floor_slot(now_us - GRACE_US)


def until(db: Database, tx: Any, *, lock: str = "") -> int:
    """The first slot not indexed yet. ``lock``: PostgreSQL row lock (FOR SHARE / FOR UPDATE), so a
    writer and the indexer agree on it; SQLite's write transactions are serialised anyway."""
    suffix = f" {lock}" if lock and db.dialect == "postgresql" else ""
    row = tx.execute(db.sql(f"SELECT value FROM server_settings WHERE name = :n{suffix}"), {"n": SETTING}).fetchone()
    return int(row[0]) if row else 0


def set_until(db: Database, tx: Any, value: int) -> None:
    tx.execute(
        db.sql(
            "INSERT INTO server_settings (name, value) VALUES (:n, :v) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ),
        {"n": SETTING, "v": str(value)},
    )


COPY = (
    "INSERT INTO request_ids (slot_us, request_id, id) "
    f"SELECT start_us - start_us % {SLOT_US}, request_id, id FROM records "
    "WHERE start_us >= :a AND start_us < :b AND request_id IS NOT NULL "
    "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING"
)


def index_slots(db: Database, now_us: int | None = None) -> int:
    """Index every slot that is over; one short transaction per slot. Returns slots indexed."""
    target = initial_until(now_us)
    done = 0
    while True:
        with db.transaction() as tx:
            start = until(db, tx, lock="FOR UPDATE")
            if start == 0:  # never set (migration 0007 sets it): start at the oldest record
                oldest = tx.execute("SELECT MIN(start_us) FROM records").fetchone()[0]
                start = _floor_slot(int(oldest)) if oldest is not None else target
            if start >= target:
                if start > until(db, tx):
                    set_until(db, tx, start)
                return done
            tx.execute(db.sql(COPY), {"a": start, "b": start + SLOT_US})
            set_until(db, tx, start + SLOT_US)
        done += 1


def add_late(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """In the writer's transaction: index rows whose slot the indexer has already done."""
    if not rows:
        return
    indexed = until(db, tx, lock="FOR SHARE")
    late = [
        {"s": _floor_slot(r["start_us"]), "r": r["request_id"], "i": r["id"]}
        for r in rows
        if r["request_id"] is not None and r["start_us"] < indexed
    ]
    if late:
        db.executemany(
            tx, "INSERT INTO request_ids (slot_us, request_id, id) VALUES (:s, :r, :i) ON CONFLICT DO NOTHING", late
        )


def find(db: Database, deployment: str, request_id: str, start_us: int, end_us: int) -> list[str]:
    """Ids of records with this request id in [start, end) (of any deployment for indexed slots;
    the caller's query filters)."""
    ids: list[str] = []
    row = db.fetchone("SELECT value FROM server_settings WHERE name = :n", {"n": SETTING})
    indexed = int(row[0]) if row else 0
    first, last = _floor_slot(start_us), min(indexed, end_us)
    if first < last:
        slots = range(first, last, SLOT_US)
        if len(slots) <= _MAX_PROBES:
            marks = ", ".join(f":s{i}" for i in range(len(slots)))
            params: dict[str, Any] = {f"s{i}": h for i, h in enumerate(slots)}
            found = db.fetchall(
                f"SELECT id FROM request_ids WHERE slot_us IN ({marks}) AND request_id = :r", params | {"r": request_id}
            )
        else:
            found = db.fetchall(
                "SELECT id FROM request_ids WHERE slot_us >= :a AND slot_us < :b AND request_id = :r",
                {"a": first, "b": last, "r": request_id},
            )
        ids += [r[0] for r in found]
    if end_us > indexed:
        ids += [
            r[0]
            for r in db.fetchall(
                "SELECT id FROM records WHERE deployment = :d AND start_us >= :a AND start_us < :b AND request_id = :r",
                {"d": deployment, "a": max(start_us, indexed), "b": end_us, "r": request_id},
            )
        ]
    return ids


def prune(db: Database, cut_us: int) -> int:
    """Drop the index of slots wholly before ``cut_us`` (their records were pruned), a slot at a time."""
    removed = 0
    while True:
        row = db.fetchone("SELECT MIN(slot_us) FROM request_ids")
        if row is None or row[0] is None or int(row[0]) + SLOT_US > cut_us:
            return removed
        with db.transaction() as tx:
            cur = tx.execute(db.sql("DELETE FROM request_ids WHERE slot_us = :s"), {"s": int(row[0])})
            removed += max(cur.rowcount or 0, 0)
