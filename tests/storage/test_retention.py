"""Retention: old bodies and raw rows go, in batches; rollup totals of old windows stay right."""

from __future__ import annotations

import time

from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import parse_window

from .test_storage import make_row

DAY = 86400.0


def test_prune_bodies_then_records_keeps_rollup_totals(db: Database) -> None:
    now = time.time()
    old = [make_row(now - 20 * DAY + i * 60, tags=["bench:old"]) for i in range(250)]
    mid = [make_row(now - 5 * DAY + i * 60) for i in range(40)]
    new = [make_row(now - 3600 + i) for i in range(30)]
    insert_rows(db, old + mid + new)
    window = parse_window("30d", now=now)
    before = summary_q.summary(db, "gpt", window)
    assert before["requests"] == 320

    removed = prune(db, Retention(bodies_days=3), now=now, batch=100)
    assert removed == {"bodies": 290, "records": 0, "rollups": 0}
    gone = records_q.one(db, mid[0]["id"])
    assert gone is not None and gone["request"] is None and "retention" in gone["bodies_note"]
    kept = records_q.one(db, new[0]["id"])
    assert kept is not None and kept["request"] == {"messages": []}

    removed = prune(db, Retention(records_days=10), now=now, batch=64)
    assert removed["records"] == 250
    assert db.fetchone("SELECT COUNT(*) FROM records")[0] == 70
    assert db.fetchone("SELECT COUNT(*) FROM record_tags")[0] == 0
    assert records_q.one(db, old[0]["id"]) is None
    after = summary_q.summary(db, "gpt", window)
    for key in ("requests", "succeeded", "prompt_tokens", "completion_tokens", "spend", "p95_latency_ms"):
        assert after[key] == before[key], key

    removed = prune(db, Retention(rollups_days=10), now=now)
    assert removed["rollups"] > 0
    assert summary_q.summary(db, "gpt", window)["requests"] == 70
