"""PostgreSQL: a batch's records, bodies and tags sent with COPY instead of one INSERT per row.

COPY streams the rows in one statement per table (psycopg formats them in C), where ``executemany``
sent and planned 2,000 INSERTs: the writer's records/s about doubled (README, benchmarks/scale.py).

COPY has no ``ON CONFLICT DO NOTHING``, so the three COPYs run in a savepoint: a row already there
(a spooled batch replayed, a duplicate id) fails them all, and the batch goes through the INSERTs,
which skip such rows as before. The caller's transaction (rollups, request ids) goes on either way,
so what is stored and counted is exactly what the INSERT path stores and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from modelmeter.storage.row import RECORD_COLUMNS

_BODY_COLUMNS = ("id", "start_us", "request", "response", "upstream_request", "upstream_response")
_TAG_COLUMNS = ("deployment", "tag", "start_us", "id")
_record_values = itemgetter(*RECORD_COLUMNS)
_body_values = itemgetter(*_BODY_COLUMNS)
_tag_values = itemgetter(*_TAG_COLUMNS)


def copy_batch(
    tx: Any,
    rows: Sequence[Any],
    bodies: Sequence[Any],
    tags: Sequence[Any],
) -> bool:
    """COPY the rows (and their bodies and tags) inside ``tx``'s transaction. False if any row
    was there already: then nothing of these three tables was written (the savepoint is rolled
    back) and the caller inserts them with ``ON CONFLICT DO NOTHING`` instead."""
    from psycopg import errors

    try:
        with tx.connection.transaction():  # a savepoint: the outer transaction survives a conflict
            _copy(tx, "records", RECORD_COLUMNS, map(_record_values, rows))
            if bodies:
                _copy(tx, "record_bodies", _BODY_COLUMNS, map(_body_values, bodies))
            if tags:
                _copy(tx, "record_tags", _TAG_COLUMNS, map(_tag_values, tags))
    except errors.UniqueViolation:
        return False
    return True


def _copy(tx: Any, table: str, columns: Sequence[str], values: Any) -> None:
    with tx.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        write = copy.write_row
        for v in values:
            write(v)
