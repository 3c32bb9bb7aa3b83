"""Writing finished record rows: the narrow log row, its bodies and its tags, in one transaction."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import chain
from typing import Any

import orjson

from modelmeter.storage import dim_rollups, pg_copy, rollups, sanitise, slots, spend, top_rollups, upstream_rollups
from modelmeter.storage.database import Database, in_list
from modelmeter.storage.row import RECORD_COLUMNS, RecordRow

__all__ = ["insert_rows", "not_stored"]
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join(':' + c for c in RECORD_COLUMNS)})"
)
_INSERT_BODY = (
    "INSERT INTO record_bodies (id, start_us, request, response, upstream_request, upstream_response) "
    "VALUES (:id, :start_us, :request, :response, :upstream_request, :upstream_response)"
)
_INSERT_TAG = "INSERT INTO record_tags (deployment, tag, start_us, id) VALUES (:deployment, :tag, :start_us, :id)"


def insert_rows(db: Database, rows: Sequence[RecordRow], *, retry: bool = False) -> None:
    """Insert a batch of finished rows, add them to the rollups and their spend to their keys and
    users' budgets, atomically.

    ``retry``: the batch may have been committed already (the connection broke at commit time), so
    rows already stored are left out, and neither they nor their rollups are counted twice.
    Rows are sanitised for the database first (``storage.sanitise``): no value refuses a batch."""
    # rows spooled by a version before 0014 have no served_by/attempts: NULL
    rows = [r if "attempts" in r else {**r, "served_by": None, "attempts": None} for r in rows]
    rows = sanitise.for_database(rows, db.dialect)
    try:
        with db.transaction() as tx:
            if retry:
                rows = _not_stored(db, tx, rows)
                if not rows:
                    return
            _insert(db, tx, rows)
            rollups.add_rows(db, tx, rows)
            dim_rollups.add_rows(db, tx, rows)
            top_rollups.add_rows(db, tx, rows)
            upstream_rollups.add_rows(db, tx, rows)  # routed rows only
            slots.add_late(db, tx, rows)  # rows of slots indexed already: request ids, filters
            spend.add_rows(db, tx, rows)  # to their keys and users' budgets: counted once, with the rows
    except BaseException:
        top_rollups.forget(db)  # its in-memory lists may count what was rolled back
        raise


def not_stored(db: Database, rows: Sequence[RecordRow]) -> list[RecordRow]:
    """The rows whose id the database does not hold yet (a read, outside any transaction)."""
    return _not_stored(db, None, rows)


def _not_stored(db: Database, tx: Any, rows: Sequence[RecordRow]) -> list[RecordRow]:
    stored: set[str] = set()
    for i in range(0, len(rows), 500):
        chunk = rows[i : i + 500]
        marks, params = in_list("i", [r["id"] for r in chunk])
        # the time span: PostgreSQL looks in the chunk's days' partitions only
        params |= {"lo": min(r["start_us"] for r in chunk), "hi": max(r["start_us"] for r in chunk)}
        query = f"SELECT id FROM records WHERE id IN ({marks}) AND start_us >= :lo AND start_us <= :hi"
        found = db.fetchall(query, params) if tx is None else tx.execute(db.sql(query), params).fetchall()
        stored.update(r[0] for r in found)
    return [r for r in rows if r["id"] not in stored]


_CHUNK = 200  # rows per statement: 34 columns x 200 stays far below SQLite's 32,766 variables
_ONE_ROW = f"({', '.join('?' * len(RECORD_COLUMNS))})"
_VALUES = operator.itemgetter(*RECORD_COLUMNS)


def _insert_records_sqlite(tx: Any, rows: Sequence[RecordRow]) -> None:
    """Many rows per INSERT statement. sqlite3 lets go of the GIL while a statement runs and takes
    it back after: one statement per row meant a GIL hand-over with the finisher thread per row.
    Measured through the recorder (300,000 records, 2 cores): 19,900-21,100 records/s one row a
    statement, 22,800-23,800 with 200."""
    for i in range(0, len(rows), _CHUNK):
        chunk = rows[i : i + _CHUNK]
        tx.execute(
            f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) VALUES "
            f"{', '.join([_ONE_ROW] * len(chunk))} ON CONFLICT DO NOTHING",
            list(chain.from_iterable(map(_VALUES, chunk))),
        )


def _insert(db: Database, tx: Any, rows: Sequence[RecordRow]) -> None:
    bodies = [
        {
            "id": r["id"],
            "start_us": r["start_us"],  # PostgreSQL: the day's partition (storage.partitions)
            "request": r["request"],
            "response": r["response"],
            "upstream_request": r.get("upstream_request"),
            "upstream_response": r.get("upstream_response"),
        }
        for r in rows
        if r["request"] is not None or r["response"] is not None or r.get("upstream_request") is not None
    ]
    tags = [
        {"deployment": r["deployment"], "tag": t, "start_us": r["start_us"], "id": r["id"]}
        for r in rows
        if r["tags"]
        for t in dict.fromkeys(orjson.loads(r["tags"]))
    ]
    suffix = " ON CONFLICT DO NOTHING"
    if db.dialect == "sqlite":
        _insert_records_sqlite(tx, rows)
    elif pg_copy.copy_batch(tx, rows, bodies, tags):
        return
    else:  # a row was there already (see storage.pg_copy): the INSERTs skip it
        db.executemany(tx, _INSERT_RECORD + suffix, rows)
    if bodies:
        db.executemany(tx, _INSERT_BODY + suffix, bodies)
    if tags:
        db.executemany(tx, _INSERT_TAG + suffix, tags)
