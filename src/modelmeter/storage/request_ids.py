"""Finding records by upstream request id without a random-order index on the log.

Request ids (``chatcmpl-…``) are random. An index on them makes almost every stored record write
a page of its own: measured, 30% of the batch writer's time at 300,000 records, and it grows with
the table. Instead, a background task (``storage.slots``) copies the request ids of the records in
one statement a few seconds' worth at a time into ``request_ids``, keyed by (quarter hour, request
id): that only appends. A search probes each quarter hour of its window that is indexed (wholly or
in part) and scans the raw rows after the indexer's mark (about three minutes). A record stored
after its time was indexed (a long call, or rows from the spool after an outage) is indexed by the
writer that stores it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database, in_list

SLOT_US = 900_000_000  # a quarter hour
_MAX_PROBES = 5_000  # slots probed one by one (52 days); a longer window scans its range of the table

COPY = (
    "INSERT INTO request_ids (slot_us, request_id, id) "
    f"SELECT start_us - start_us % {SLOT_US}, request_id, id FROM records "
    "WHERE start_us >= :a AND start_us < :b AND request_id IS NOT NULL "
    "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING"
)


def add(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """In the writer's transaction: rows whose slot has been indexed already."""
    late = [
        {"s": r["start_us"] - r["start_us"] % SLOT_US, "r": r["request_id"], "i": r["id"]}
        for r in rows
        if r["request_id"] is not None
    ]
    if late:
        db.executemany(
            tx, "INSERT INTO request_ids (slot_us, request_id, id) VALUES (:s, :r, :i) ON CONFLICT DO NOTHING", late
        )


def find(db: Database, deployment: str, request_id: str, start_us: int, end_us: int, indexed: int) -> list[str]:
    """Ids of records with this request id in [start, end) (of any deployment for indexed slots;
    the caller's query filters). ``indexed``: slots before it are indexed (``slots.read_until``)."""
    ids: list[str] = []
    first, last = start_us - start_us % SLOT_US, min(indexed, end_us)
    if first < last:
        slots = range(first, last, SLOT_US)
        if len(slots) <= _MAX_PROBES:
            marks, params = in_list("s", slots)
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
