"""A batch the database refused for its data (not for being away): store what can be stored.

``insert_rows`` sanitises rows first, so this is for what nobody foresaw. The batch is split in
halves, recursively: the rows around a bad one are stored a half at a time (a bad row in 2,000
costs ~22 transactions, not 2,000), so one odd row never slows the others much. A single row the
database refuses is tried once more without its free-form fields; if that fails too, it is lost.
"""

from __future__ import annotations

import logging
from typing import cast

from modelmeter.storage.database import Database, is_transient
from modelmeter.storage.records import insert_rows
from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")


def store_refused(db: Database, rows: list[RecordRow], exc: Exception) -> list[RecordRow] | None:
    """The rows lost (refused even bare), or None if the database itself failed meanwhile (the
    caller retries the batch: rows stored already are skipped)."""
    log.error("a batch of %d was refused (%s: %s); storing it in halves", len(rows), type(exc).__name__, exc)
    lost: list[RecordRow] = []
    if not _halves(db, rows, lost):
        return None
    for row in lost:
        log.error("record %s lost: the database refuses it even without its bodies", row["id"])
    return lost


def _halves(db: Database, rows: list[RecordRow], lost: list[RecordRow]) -> bool:
    if len(rows) == 1:
        for attempt in (rows[0], bare(rows[0])):
            try:
                insert_rows(db, [attempt], retry=True)
                return True
            except Exception as err:
                if is_transient(err):
                    return False
        lost.append(rows[0])
        return True
    mid = len(rows) // 2
    for part in (rows[:mid], rows[mid:]):
        try:
            insert_rows(db, part, retry=True)
        except Exception as err:
            if is_transient(err) or not _halves(db, part, lost):
                return False
    return True


def bare(row: RecordRow) -> RecordRow:
    """The row without anything free-form (``insert_rows`` makes its numbers and text storable)."""
    return cast(RecordRow, {**row, "metadata": None, "tags": None, "request": None, "response": None, "bodies": 0})
