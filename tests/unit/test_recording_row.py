"""The record row has one typed definition (#11.22): ``finish`` builds exactly its fields with their
types, and the stored column list derives from it and matches the migrated table."""

from __future__ import annotations

import types
import typing
from pathlib import Path

from tests.recording.test_recorder import rec

from modelmeter.metering.pricing import Pricer
from modelmeter.storage import records
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.row import BODY_FIELDS, FIELDS, RECORD_COLUMNS, RecordRow


def allowed(hint: object) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(a for a in typing.get_args(hint))
    assert isinstance(hint, type)
    return (hint,)


def test_finish_builds_exactly_the_typed_row() -> None:
    from modelmeter.metering.record import finish

    r = rec(0)
    r.request_body, r.response_body, r.ttft_ms, r.error = {"a": 1}, {"b": 2}, 1.5, "x"
    row = finish(r, Pricer())
    # The upstream bodies are a translated call's only (gateway/translated.py).
    assert sorted(row) == sorted(f for f in FIELDS if f not in ("upstream_request", "upstream_response"))
    r.upstream_request, r.upstream_response = {"c": 3}, {"d": 4}
    row = finish(r, Pricer())
    assert sorted(row) == sorted(FIELDS)
    hints = typing.get_type_hints(RecordRow)
    wrong = {k: (type(v).__name__, hints[k]) for k, v in row.items() if not isinstance(v, allowed(hints[k]))}
    assert not wrong, wrong


def test_columns_derive_from_the_row_and_match_the_table(tmp_path: Path) -> None:
    assert records.RECORD_COLUMNS is RECORD_COLUMNS
    assert tuple(f for f in FIELDS if f not in BODY_FIELDS) == RECORD_COLUMNS
    db = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    table = {r[1] for r in db.fetchall("PRAGMA table_info(records)")}
    assert table == set(RECORD_COLUMNS)
    bodies = {r[1] for r in db.fetchall("PRAGMA table_info(record_bodies)")}
    assert bodies == {"id", "start_us", *BODY_FIELDS}  # start_us: its record's (PostgreSQL's day partitions)
