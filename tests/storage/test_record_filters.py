"""The log filtered by API key, session and end user (``storage.record_filters``): indexed a
quarter hour at a time, the newest records read from the raw rows, late records indexed by the
writer; the same pages, Live rows and export wherever the indexer's mark is, on both databases."""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from modelmeter.storage import migrations, slots
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.usage import records as records_q
from modelmeter.usage.window import Window

from .test_storage import make_row

N = 360  # one call every 30 s over the last 3 hours


def _rows(now: float) -> list[dict[str, Any]]:
    rows = []
    for i in range(N):
        row = make_row(now - 3 * 3600 + i * 30, status="error" if i % 9 == 0 else "success")
        row["key_alias"] = f"key-{i % 4}" if i % 5 else None
        row["session_id"] = f"sess-{i % 7}" if i % 3 else None
        row["call_type"] = ("chat", "messages", "responses")[i % 3]
        if i % 2:
            row["metadata"] = orjson.dumps({"user": f"user-{i % 6}"}).decode()
        elif i % 10 == 4:
            row["metadata"] = orjson.dumps({"user": 7}).decode()  # not a string: no user
        elif i % 10 == 6:  # a NUL (PostgreSQL's jsonb refuses it): no user, and the indexer goes on
            row["metadata"] = orjson.dumps({"user": "user-1", "note": "a\x00b"}).decode()
        rows.append(row)
    return rows


def _user(row: dict[str, Any]) -> str | None:
    if not row["metadata"] or "\\u0000" in row["metadata"]:
        return None
    user = orjson.loads(row["metadata"]).get("user")
    return user if isinstance(user, str) else None


def _expected(rows: list[dict[str, Any]], **f: str) -> list[str]:
    got = {
        "key_alias": lambda r: r["key_alias"],
        "session": lambda r: r["session_id"],
        "end_user": _user,
        "status": lambda r: r["status"],
        "call_type": lambda r: r["call_type"],
    }
    kept = [r for r in rows if all(got[name](r) == value for name, value in f.items())]
    return [r["id"] for r in sorted(kept, key=lambda r: (r["start_us"], r["id"]), reverse=True)]


def _paged(db: Database, window: Window, **f: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = records_q.page(db, "gpt", window, limit=7, cursor=cursor, **f)  # type: ignore[arg-type]
        ids += [r["id"] for r in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            return ids


CASES = [
    {"key_alias": "key-1"},
    {"session": "sess-3"},
    {"end_user": "user-5"},
    {"key_alias": "key-2", "session": "sess-2"},
    {"session": "sess-4", "end_user": "user-1"},
    {"key_alias": "key-3", "status": "error"},
    {"end_user": "user-3", "call_type": "responses"},
    {"session": "sess-1", "status": "success", "call_type": "messages"},
    {"end_user": "7"},
    {"key_alias": "no-such-key"},
]


def _check_every_filter(db: Database, rows: list[dict[str, Any]], window: Window) -> None:
    oldest = records_q.encode_cursor(window.start_us - 1, "")
    inside = [r for r in rows if window.start_us <= r["start_us"] < window.end_us]
    for f in CASES:
        want = _expected(inside, **f)
        assert _paged(db, window, **f) == want, f
        newer = records_q.newer(db, "gpt", window, oldest, limit=1000, **f)  # type: ignore[arg-type]
        assert [r["id"] for r in newer] == want, f
        assert [r["id"] for r in records_q.export(db, "gpt", window, batch=5, **f)] == want, f  # type: ignore[arg-type]


def _indexed(db: Database) -> int:
    return db.fetchone("SELECT COUNT(*) FROM record_filters")[0]  # type: ignore[index]


def test_pages_are_the_same_before_and_after_the_indexer(db: Database) -> None:
    now = time.time()
    rows = _rows(now)
    mark = slots.initial_until(int((now - 3600) * 1e6))  # the last ~hour is not indexed yet
    with db.transaction() as tx:
        slots.set_until(db, tx, mark)
    insert_rows(db, rows)
    late = [r for r in rows if r["start_us"] < mark]
    assert 0 < len(late) < N
    # The writer indexed the rows of slots already indexed (the late path), nothing newer.
    newest = db.fetchone("SELECT MAX(start_us) FROM record_filters")[0]  # type: ignore[index]
    assert newest < mark
    assert _indexed(db) == sum(len([v for v in (r["key_alias"], r["session_id"], _user(r)) if v]) for r in late)

    whole = Window(int((now - 4 * 3600) * 1e6), int((now + 60) * 1e6), ZoneInfo("UTC"))
    across = Window(int((now - 5400) * 1e6), int((now - 600) * 1e6), ZoneInfo("UTC"))  # both sides
    old_only = Window(int((now - 4 * 3600) * 1e6), mark - 1, ZoneInfo("UTC"))
    for window in (whole, across, old_only):
        _check_every_filter(db, rows, window)

    assert slots.index_slots(db, int((now + 3600) * 1e6)) >= 4  # an hour on: every slot indexed
    assert db.fetchone("SELECT MAX(start_us) FROM record_filters")[0] == max(r["start_us"] for r in rows)  # type: ignore[index]
    for window in (whole, across, old_only):
        _check_every_filter(db, rows, window)


def test_retention_removes_the_entries_of_pruned_records(db: Database) -> None:
    now = time.time()
    rows = _rows(now)
    insert_rows(db, rows)
    slots.index_slots(db, int((now + 3600) * 1e6))
    prune(db, Retention(records_days=1.5 / 24), now=now)  # keeps the last hour and a half
    kept = [r for r in rows if r["start_us"] >= int((now - 5400) * 1e6)]
    assert len(kept) < N
    stale = db.fetchone("SELECT COUNT(*) FROM record_filters f LEFT JOIN records r ON r.id = f.id WHERE r.id IS NULL")
    assert stale == (0,)
    _check_every_filter(db, kept, Window(int((now - 4 * 3600) * 1e6), int((now + 60) * 1e6), ZoneInfo("UTC")))


@pytest.mark.parametrize("mark_back_s", [3600, None])
def test_upgrade_to_0019_indexes_the_records_before_the_mark(db: Database, mark_back_s: int | None) -> None:
    now = time.time()
    rows = _rows(now)
    insert_rows(db, rows)
    mark = slots.initial_until(int((now - mark_back_s) * 1e6)) if mark_back_s else 0
    with db.transaction() as tx:  # back to 0018: the two indexes, no record_filters
        tx.execute("DROP TABLE record_filters")
        tx.execute("CREATE INDEX records_page_key ON records (deployment, key_alias, start_us, id)")
        tx.execute("CREATE INDEX records_page_session ON records (deployment, session_id, start_us, id)")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0019_record_filters'")
        slots.set_until(db, tx, mark)
    assert migrations.migrate(db) == ["0019_record_filters"]
    late = [r for r in rows if r["start_us"] < mark]
    assert _indexed(db) == sum(len([v for v in (r["key_alias"], r["session_id"], _user(r)) if v]) for r in late)
    _check_every_filter(db, rows, Window(int((now - 4 * 3600) * 1e6), int((now + 60) * 1e6), ZoneInfo("UTC")))
    slots.index_slots(db, int((now + 3600) * 1e6))
    _check_every_filter(db, rows, Window(int((now - 4 * 3600) * 1e6), int((now + 60) * 1e6), ZoneInfo("UTC")))
    if db.dialect == "sqlite":
        names = {r[0] for r in db.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")}
    else:
        names = {r[0] for r in db.fetchall("SELECT indexname FROM pg_indexes WHERE tablename = 'records'")}
    assert "records_page_key" not in names and "records_page_session" not in names
