"""Search by upstream request id: indexed a quarter hour at a time, the newest read from the raw
rows, late rows indexed by the writer; the same answers wherever a record sits."""

from __future__ import annotations

import time

from modelmeter.config import Deployment
from modelmeter.storage import request_ids, slots
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.usage import records as records_q
from modelmeter.usage.window import parse_window

from .test_storage import make_row

OTHER = Deployment(name="other", model="gpt-4o-mini", provider="openai", api_base="http://up/v1")


def row(start: float, rid: str, **kw: object) -> dict:
    r = make_row(start, **kw)  # type: ignore[arg-type]
    r["request_id"] = rid
    return r


def found(db: Database, rid: str, dep: str = "gpt") -> list[str]:
    page = records_q.page(db, dep, parse_window("7d"), limit=50, search=rid)
    return [r["id"] for r in page["data"]]


def indexed(db: Database) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in db.fetchall("SELECT request_id, id FROM request_ids")}


def test_found_in_indexed_hours_the_newest_hours_and_late_rows(db: Database) -> None:
    now = time.time()
    old = row(now - 3 * 86400, "chatcmpl-old")  # stored after its hour was indexed: the writer indexes it
    recent = row(now - 1, "chatcmpl-recent")  # in a slot not indexed yet: read from the raw rows
    twin = row(now - 0.5, "chatcmpl-recent", dep=OTHER)  # same request id, other deployment
    noise = [row(now - i * 600, f"chatcmpl-n{i}") for i in range(1, 100)]
    insert_rows(db, [old, recent, twin, *noise])
    assert (old["request_id"], old["id"]) in indexed(db)
    assert (recent["request_id"], recent["id"]) not in indexed(db)

    assert found(db, "chatcmpl-old") == [old["id"]]
    assert found(db, "chatcmpl-recent") == [recent["id"]]
    assert found(db, "chatcmpl-recent", "other") == [twin["id"]]
    assert found(db, recent["id"]) == [recent["id"]]  # a record id finds its record too
    assert found(db, "chatcmpl-missing") == []

    # An hour on, the indexer has copied those slots; every search gives the same answer once.
    later_us = int((now + 3600) * 1e6)
    assert slots.index_slots(db, later_us) >= 1
    assert slots.index_slots(db, later_us) == 0  # nothing left to do
    assert (recent["request_id"], recent["id"]) in indexed(db)
    assert found(db, "chatcmpl-recent") == [recent["id"]]
    assert found(db, "chatcmpl-recent", "other") == [twin["id"]]
    assert found(db, "chatcmpl-n50") == [noise[49]["id"]]


def test_retention_drops_the_index_of_pruned_hours(db: Database) -> None:
    now = time.time()
    old, new = row(now - 5 * 86400, "chatcmpl-a"), row(now - 86400, "chatcmpl-b")
    insert_rows(db, [old, new])
    assert {r for r, _ in indexed(db)} == {"chatcmpl-a", "chatcmpl-b"}
    prune(db, Retention(records_days=3), now=now)
    assert {r for r, _ in indexed(db)} == {"chatcmpl-b"}
    assert found(db, "chatcmpl-a") == []
    assert found(db, "chatcmpl-b") == [new["id"]]


def test_indexer_starts_at_the_oldest_record_when_it_has_no_mark(db: Database) -> None:
    now = time.time()
    old = row(now - 3 * 3600, "chatcmpl-x")
    db.execute("DELETE FROM server_settings WHERE name = :n", {"n": slots.SETTING})
    insert_rows(db, [old])  # no mark: nothing counts as indexed, the writer indexes nothing
    assert indexed(db) == set()
    assert found(db, "chatcmpl-x") == [old["id"]]  # found in the raw rows meanwhile
    first_slot = old["start_us"] - old["start_us"] % request_ids.SLOT_US  # not 1970
    assert slots.initial_until() - first_slot >= 11 * request_ids.SLOT_US
    assert slots.index_slots(db) == 2  # the record's ten seconds, then the rest at once
    assert slots.read_until(db) == slots.initial_until()
    assert indexed(db) == {("chatcmpl-x", old["id"])}
    assert found(db, "chatcmpl-x") == [old["id"]]
