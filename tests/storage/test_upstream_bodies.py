"""Migration 0011: a translated call's upstream bodies are stored beside the client's and come back
from the one-record query; rows without them (pass-through calls, rows spooled before 0011) have no
such keys, and still insert."""

from __future__ import annotations

import time

from modelmeter.metering.record import finish
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows
from modelmeter.usage import records as records_q

from .test_storage import PRICER, make_row


def test_upstream_bodies_round_trip(db_url: str) -> None:
    db = Database(db_url)
    try:
        migrate(db)
        translated = make_row(time.time())
        translated["upstream_request"] = '{"model":"up","messages":[]}'
        translated["upstream_response"] = '{"object":"chat.completion","usage":{"prompt_tokens":3}}'
        plain = make_row(time.time())
        old = {**make_row(time.time()), "upstream_request": None, "upstream_response": None}  # both keys, None
        insert_rows(db, [translated, plain, old])
        got = records_q.one(db, translated["id"])
        assert got is not None and got["request"] == {"messages": []} and got["response"] == {"ok": True}
        assert got["upstream_request"] == {"model": "up", "messages": []}
        assert got["upstream_response"]["usage"] == {"prompt_tokens": 3}
        for row in (plain, old):
            other = records_q.one(db, row["id"])
            assert other is not None and other["response"] == {"ok": True} and "upstream_request" not in other
    finally:
        db.close()


def test_finish_keeps_upstream_bodies_only_when_bodies_are_stored() -> None:
    from modelmeter.metering.record import CallRecord

    from .test_storage import DEP

    rec = CallRecord(id="r1", deployment=DEP, model="m", call_type="messages", start=time.time())
    rec.upstream_request, rec.upstream_response = {"a": 1}, {"b": 2}
    row = finish(rec, PRICER)
    assert row["upstream_request"] == '{"a":1}' and row["upstream_response"] == '{"b":2}'
    assert "upstream_request" not in finish(rec, PRICER, store_bodies=False)
