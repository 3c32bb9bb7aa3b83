"""Retention: drop old bodies, old raw records and old rollups, in small batches.

Each batch is its own short transaction, so the batch writer is never blocked for long. Rollups are
kept apart from raw records: after raw records are pruned, summaries of old windows stay right.
On PostgreSQL whole days of records go first, as partitions dropped (``storage.partitions``); the
rest (part of a day, the DEFAULT partition) is deleted row by row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from modelmeter.storage import (
    dim_rollups,
    partitions,
    record_filters,
    request_ids,
    top_days,
    top_rollups,
    upstream_rollups,
)
from modelmeter.storage.database import Database, in_list
from modelmeter.storage.rollups import DAY, RESOLUTIONS

DAY_US = 86_400_000_000
BODIES_PRUNED = 2  # records.bodies: 0 never stored, 1 stored, 2 removed by retention


@dataclass(frozen=True)
class Retention:
    bodies_days: float | None = None
    records_days: float | None = None
    rollups_days: float | None = None

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.bodies_days, self.records_days, self.rollups_days))


def _cut(days: float | None, now_us: int) -> int | None:
    return None if days is None else now_us - int(days * DAY_US)


def prune(
    db: Database, retention: Retention, *, now: float | None = None, batch: int = 1000, pause: float = 0.0
) -> dict[str, int]:
    """Apply the policy; returns how many bodies, records and rollup rows were removed."""
    now_us = int((now if now is not None else time.time()) * 1e6)
    done = {"bodies": 0, "records": 0, "rollups": 0}  # (and the request-id index of pruned slots)
    records_cut = _cut(retention.records_days, now_us)
    if records_cut is not None:  # first: the bodies of those days need no deleting one by one
        done["records"] = partitions.drop_before(db, records_cut)
    cut = _cut(retention.bodies_days, now_us)
    if cut is not None:
        while n := _prune_bodies(db, cut, batch):
            done["bodies"] += n
            time.sleep(pause)
    if records_cut is not None:
        while n := _prune_records(db, records_cut, batch):
            done["records"] += n
            time.sleep(pause)
        request_ids.prune(db, records_cut)
    cut = _cut(retention.rollups_days, now_us)
    if cut is not None:
        done["rollups"] = _prune_rollups(db, cut)
    return done


def _prune_bodies(db: Database, cut: int, batch: int) -> int:
    with db.transaction() as tx:
        rows = tx.execute(
            db.sql("SELECT id, start_us FROM records WHERE start_us < :cut AND bodies = 1 ORDER BY start_us LIMIT :n"),
            {"cut": cut, "n": batch},
        ).fetchall()
        if rows:
            marks, params = _ids(rows)
            tx.execute(db.sql(f"DELETE FROM record_bodies WHERE id IN ({marks}){_bodies_span(db)}"), params)
            tx.execute(db.sql(f"UPDATE records SET bodies = {BODIES_PRUNED} WHERE id IN ({marks}){_SPAN}"), params)
    return len(rows)


def _ids(rows: list[Any]) -> tuple[str, dict[str, Any]]:
    """The rows' ids as a parameter list, and their time span (parameters lo and hi)."""
    marks, params = in_list("i", [r[0] for r in rows])
    return marks, params | {"lo": min(r[1] for r in rows), "hi": max(r[1] for r in rows)}


# The time span lets PostgreSQL look for the ids in a day's partition or two, not in each.
_SPAN = " AND start_us >= :lo AND start_us <= :hi"


def _bodies_span(db: Database) -> str:
    # SQLite's bodies stored before migration 0020 have no start_us (and SQLite no partitions).
    return _SPAN if db.dialect == "postgresql" else ""


_PRUNED_COLUMNS = ("id", "deployment", "start_us", "tags", "key_alias", "session_id", "metadata", "status", "call_type")


def _prune_records(db: Database, cut: int, batch: int) -> int:
    with db.transaction() as tx:
        rows = tx.execute(
            db.sql(
                f"SELECT {', '.join(_PRUNED_COLUMNS)} FROM records WHERE start_us < :cut ORDER BY start_us LIMIT :n"
            ),
            {"cut": cut, "n": batch},
        ).fetchall()
        if rows:
            marks, params = _ids([(r[0], r[2]) for r in rows])
            record_filters.remove(db, tx, [dict(zip(_PRUNED_COLUMNS, r, strict=True)) for r in rows])
            tags = [
                {"d": dep, "t": tag, "s": start, "i": rid}
                for rid, dep, start, tag_json, *_ in rows
                if tag_json
                for tag in orjson.loads(tag_json)
            ]
            if tags:
                db.executemany(
                    tx, "DELETE FROM record_tags WHERE deployment = :d AND tag = :t AND start_us = :s AND id = :i", tags
                )
            tx.execute(db.sql(f"DELETE FROM record_bodies WHERE id IN ({marks}){_bodies_span(db)}"), params)
            tx.execute(db.sql(f"DELETE FROM records WHERE id IN ({marks}){_SPAN}"), params)
    return len(rows)


def _prune_rollups(db: Database, cut: int) -> int:
    removed = 0
    # The day rows outlive the others (below): every deployment with rollups left has one.
    deployments = [r[0] for r in db.fetchall(f"SELECT DISTINCT deployment FROM {DAY.table}")]
    # Each table in its own short transaction. Day rows go only once all of their day is past the
    # cut, and the top-N rows a whole day at a time with their day sums, in one transaction (a day
    # sum is the sum of its hourly rows, top_days.py).
    day_cut = cut - cut % DAY_US
    groups = [
        *([(res.table, "bucket_us", day_cut if res is DAY else cut)] for res in RESOLUTIONS),
        *([(dim_rollups.table(res), "bucket_us", cut)] for res in dim_rollups.DIM_RESOLUTIONS),
        *([(upstream_rollups.table(res), "bucket_us", cut)] for res in upstream_rollups.UPSTREAM_RESOLUTIONS),
        [(top_rollups.TABLE, "bucket_us", day_cut), (top_days.TABLE, "day_us", day_cut)],
    ]
    for dep in deployments:
        for group in groups:
            with db.transaction() as tx:
                for name, column, before in group:
                    cur = tx.execute(
                        db.sql(f"DELETE FROM {name} WHERE deployment = :d AND {column} < :cut"),
                        {"d": dep, "cut": before},
                    )
                    removed += max(cur.rowcount or 0, 0)
    return removed
