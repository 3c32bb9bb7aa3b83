"""The log filtered by agent session and by call type (#12.5, #12.6), on SQLite and PostgreSQL:
keyset pages, Live's newer rows and the export, each on its own index."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.usage import records as records_q
from modelmeter.usage.window import Window

from .test_storage import make_row

T0 = 1_780_000_000.0
WINDOW = Window(int((T0 - 10) * 1e6), int((T0 + 10_000) * 1e6), ZoneInfo("UTC"))
SESSIONS = 100
CALLS = 2000


def _rows() -> list[Any]:
    rows = []
    for i in range(CALLS):
        row = make_row(T0 + i)
        row["session_id"] = f"sess-{i % SESSIONS}"
        row["call_type"] = ("chat", "messages", "responses", "count_tokens")[i % 4]
        rows.append(row)
    return rows


@pytest.fixture
def filled(db: Database) -> Database:
    insert_rows(db, _rows())
    db.execute("ANALYZE")
    return db


def test_session_filter_pages_the_whole_session_newest_first(filled: Database) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = records_q.page(filled, "gpt", WINDOW, limit=7, cursor=cursor, session="sess-3")
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == CALLS // SESSIONS
    assert {r["session_id"] for r in seen} == {"sess-3"}
    starts = [r["start_time"] for r in seen]
    assert starts == sorted(starts, reverse=True) and len(set(starts)) == len(starts)


def test_call_type_and_session_filters_combine(filled: Database) -> None:
    # session 3 holds calls 3, 103, 203, ...: i % 4 == 3 for odd hundreds is "count_tokens" ...
    page = records_q.page(filled, "gpt", WINDOW, limit=200, session="sess-3", call_type="count_tokens")
    expected = [i for i in range(CALLS) if i % SESSIONS == 3 and i % 4 == 3]
    assert len(page["data"]) == len(expected) > 0
    assert {r["call_type"] for r in page["data"]} == {"count_tokens"}
    only_type = records_q.page(filled, "gpt", WINDOW, limit=200, call_type="messages")
    assert len(only_type["data"]) == 200 and {r["call_type"] for r in only_type["data"]} == {"messages"}
    assert records_q.page(filled, "gpt", WINDOW, session="no-such")["data"] == []


def test_newer_and_export_honour_the_filters(filled: Database) -> None:
    first = records_q.page(filled, "gpt", WINDOW, limit=1, session="sess-7")["data"]
    oldest = records_q.encode_cursor(int((T0 - 1) * 1e6), "")
    newer = records_q.newer(filled, "gpt", WINDOW, oldest, session="sess-7")
    assert len(newer) == CALLS // SESSIONS and newer[0]["id"] == first[0]["id"]
    exported = list(records_q.export(filled, "gpt", WINDOW, session="sess-7", call_type="responses", batch=3))
    assert len(exported) == len([i for i in range(CALLS) if i % SESSIONS == 7 and i % 4 == 2])
    assert all(r["session_id"] == "sess-7" and r["call_type"] == "responses" for r in exported)


def _plan(db: Database, monkeypatch: pytest.MonkeyPatch, **filters: str) -> str:
    """The query plan of the page query the filters build."""
    captured: list[tuple[str, Any]] = []
    real = db.fetchall

    def spy(text: str, params: Any = None) -> list[tuple[Any, ...]]:
        captured.append((text, params))
        return real(text, params)

    monkeypatch.setattr(db, "fetchall", spy)
    records_q.page(db, "gpt", WINDOW, limit=50, **filters)
    monkeypatch.setattr(db, "fetchall", real)
    sql, params = captured[-1]
    if db.dialect == "sqlite":
        rows = db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
    else:
        rows = db.fetchall("EXPLAIN " + sql, params)
    return "\n".join(" ".join(str(c) for c in r) for r in rows)


@pytest.mark.parametrize(
    ("filters", "index"),
    [({"session": "sess-5"}, "record_filters"), ({"call_type": "messages"}, "records_page_call_type")],
)
def test_each_filter_reads_its_own_index(
    filled: Database, monkeypatch: pytest.MonkeyPatch, filters: dict[str, str], index: str
) -> None:
    plan = _plan(filled, monkeypatch, **filters)
    # record_filters' primary key is the only index it has (SQLite names it so in the plan; on
    # PostgreSQL it is a partition's: record_filters_default_pkey, record_filters_d20260528_pkey).
    shown = {"sqlite": r"SEARCH f USING PRIMARY KEY", "postgresql": r"Scan.* using record_filters_\w+_pkey"}
    wanted = shown[filled.dialect] if index == "record_filters" else index
    # A call type is a quarter of the rows here: PostgreSQL rightly walks the time index instead.
    if index == "record_filters" or filled.dialect == "sqlite":
        assert re.search(wanted, plan), plan
    if index == "record_filters" and filled.dialect == "postgresql":
        return  # 2,000 records: PostgreSQL rightly hashes them whole (at 1 M: a nested loop by id)
    assert "Index Scan" in plan or "USING INDEX" in plan or "USING COVERING INDEX" in plan or "PRIMARY KEY" in plan, (
        plan
    )
    assert "SCAN records" not in plan and "Seq Scan" not in plan and "TEMP B-TREE" not in plan, plan
