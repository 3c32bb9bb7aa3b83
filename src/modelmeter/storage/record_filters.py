"""The log's filters by API key, agent session and end user, indexed ten seconds at a time.

An index on ``records (deployment, key_alias, start_us, id)`` puts each new record at its key's
place: with thousands of keys and sessions nearly every record of a batch dirties a page of its own
in each such index, which the commit then writes (measured through the recorder, 200,000 records on
a quiet machine: 17,400-19,700 records/s with the key and session indexes, 25,300-25,500 without).
So, like request ids (``storage.request_ids``), the slot indexer (``storage.slots``) copies ten
seconds of records at a time into ``record_filters`` in one sorted statement; a record stored after
its time was indexed is added by the writer that stores it.

A filtered page reads ``record_filters`` (joined to the records) for the indexed time, and the
newest records (about three minutes, not indexed yet) through the time index, filtered: ``parts``.
The end user (the request's ``user`` field, in the metadata) had no index at all before: its pages
read the window's rows until they had enough.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.top_rollups import user_of

# Beside the key: the record's status and call type, so a key's errors (say) are found in the index
# alone. Reading each record to test its status was 84 ms for a page of a heavy key's errors at 1 M
# records on PostgreSQL (1,954 records read for 50 shown).
_COLUMNS = "start_us, id, status, call_type"


_NUL = "\\u0000"  # a NUL in JSON text, as the metadata column keeps it (storage.sanitise)


def user_sql(dialect: str, column: str = "metadata") -> str:
    """The request's ``user`` in SQL when it is a string (what ``top_rollups.user_of`` reads; a
    number or an object is no user), else NULL. Metadata holding a NUL counts as no user: jsonb
    refuses it, and one such record must not stop the indexer (CASE: evaluated in this order)."""
    if dialect == "sqlite":  # LIKE has no escape character here
        return (
            f"CASE WHEN {column} LIKE '%\"user\"%' AND {column} NOT LIKE '%{_NUL}%' "
            f"AND json_type({column}, '$.user') = 'text' THEN json_extract({column}, '$.user') END"
        )
    return (  # LIKE's escape character is the backslash: doubled to match one
        f"CASE WHEN {column} NOT LIKE '%\"user\"%' OR {column} LIKE '%\\{_NUL}%' THEN NULL "
        f"WHEN jsonb_typeof(CAST({column} AS jsonb) -> 'user') = 'string' THEN CAST({column} AS jsonb) ->> 'user' END"
    )


def copy_sql(dialect: str) -> str:
    """Every filter value of the records in [:a, :b), in the table's key order (appends per key)."""
    span = "start_us >= :a AND start_us < :b"
    return (
        f"INSERT INTO record_filters (deployment, dim, value, {_COLUMNS}) "
        f"SELECT deployment, 'key', key_alias, {_COLUMNS} FROM records WHERE {span} AND key_alias IS NOT NULL "
        "UNION ALL "
        f"SELECT deployment, 'session', session_id, {_COLUMNS} FROM records WHERE {span} AND session_id IS NOT NULL "
        "UNION ALL "
        f"SELECT deployment, 'user', u, {_COLUMNS} FROM (SELECT deployment, {user_sql(dialect)} AS u, {_COLUMNS} "
        f"FROM records WHERE {span} AND metadata LIKE '%\"user\"%') AS m WHERE u IS NOT NULL "
        "ORDER BY 1, 2, 3, 4, 5 ON CONFLICT DO NOTHING"
    )


def values(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dimension, value) of one record's filters that it has."""
    out = []
    if row["key_alias"] is not None:
        out.append(("key", row["key_alias"]))
    if row["session_id"] is not None:
        out.append(("session", row["session_id"]))
    if (user := user_of(row["metadata"])) and _NUL not in row["metadata"]:
        out.append(("user", user))
    return out


def entries(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "d": r["deployment"],
            "m": dim,
            "v": value,
            "s": r["start_us"],
            "i": r["id"],
            "st": r["status"],
            "c": r["call_type"],
        }
        for r in rows
        for dim, value in values(r)
    ]


def add(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """In the writer's transaction: rows whose slot has been indexed already."""
    if found := entries(rows):
        db.executemany(
            tx,
            f"INSERT INTO record_filters (deployment, dim, value, {_COLUMNS}) "
            "VALUES (:d, :m, :v, :s, :i, :st, :c) ON CONFLICT DO NOTHING",
            found,
        )


def remove(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Retention: the entries of records being deleted (by key: no scan)."""
    if found := entries(rows):
        db.executemany(
            tx,
            "DELETE FROM record_filters "
            "WHERE deployment = :d AND dim = :m AND value = :v AND start_us = :s AND id = :i",
            found,
        )
