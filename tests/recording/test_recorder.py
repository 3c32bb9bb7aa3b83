"""The recorder: batches, back-pressure, and nothing lost while the database refuses writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelmeter.config import Deployment
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.recording.recorder import Recorder
from modelmeter.recording.spool import Spool, database_key
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows

DEP = Deployment(name="d", model="gpt-4o-mini", provider="openai", api_base="http://x/v1")


class FlakyDatabase(Database):
    """A real SQLite database whose write transactions fail while ``down`` is set."""

    down = False

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self.down:
            raise ConnectionError("database is unreachable")
        with super().transaction() as tx:
            yield tx


def rec(i: int) -> CallRecord:
    now = time.time()
    r = CallRecord(id=new_record_id(now), deployment=DEP, model="d", call_type="chat", start=now)
    r.end = now + 0.01
    r.latency_ms = 10.0
    r.usage = Usage(3, 4, 7, reported=True)
    return r


def count(db: Database) -> int:
    return int(db.fetchone("SELECT COUNT(*) FROM records")[0])


def test_every_record_is_stored_in_batches(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    batches: list[int] = []
    recorder = Recorder(db, maxsize=100, batch_size=50, spool_dir=tmp_path / "spool")
    recorder.add_listener(lambda rows: batches.append(len(rows)))
    recorder.start()

    async def produce() -> None:
        for i in range(1000):
            await recorder.submit(rec(i))  # waits when the queue is full; never drops

    asyncio.run(produce())
    recorder.stop()
    assert count(db) == 1000
    assert sum(batches) == 1000
    assert max(batches) <= 50


def test_outage_spools_then_stores_everything(tmp_path: Path) -> None:
    db = FlakyDatabase(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    recorder = Recorder(db, maxsize=50, batch_size=10, spool_dir=tmp_path / "spool")
    recorder.start()
    db.down = True
    for i in range(500):  # far more than the queue holds: the rest must go to the spool, not block
        deadline = time.monotonic() + 5
        while not recorder.submit_nowait(rec(i)):
            assert time.monotonic() < deadline, "the gateway would have been blocked by the outage"
            time.sleep(0.001)
    deadline = time.monotonic() + 5
    while recorder.spool.rows == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert recorder.backlog["database_failing"] is True
    assert recorder.spool.rows > 0
    assert count(db) == 0
    db.down = False
    recorder.stop(timeout=30)
    assert count(db) == 500
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_stop_during_outage_keeps_records_for_the_next_start(tmp_path: Path) -> None:
    db = FlakyDatabase(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    recorder = Recorder(db, maxsize=1000, batch_size=25, spool_dir=tmp_path / "spool")
    recorder.start()
    db.down = True
    for i in range(200):
        assert recorder.submit_nowait(rec(i))
    recorder.stop(timeout=1.0)  # the database never came back: all of it is spooled
    assert count(db) == 0
    db.down = False
    again = Recorder(db, spool_dir=tmp_path / "spool")
    again.start()
    again.stop()
    assert count(db) == 200


def test_a_row_the_database_refuses_does_not_stop_recording(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    recorder = Recorder(db, batch_size=10, spool_dir=tmp_path / "spool")
    recorder.start()
    bad = rec(0)
    bad.retries = 2**70  # no SQLite INTEGER holds this: the insert of the batch fails
    recorder.submit_nowait(bad)
    for i in range(1, 20):
        recorder.submit_nowait(rec(i))
    recorder.stop()
    assert count(db) == 20  # the odd one stored with its numbers clamped, the rest as they were
    assert recorder.dropped == 0
    stored = db.fetchone("SELECT retries FROM records WHERE id = :i", {"i": bad.id})
    assert stored == (2**15 - 1,)  # clamped into its SMALLINT column


def test_depth_counts_a_record_the_finisher_is_holding(tmp_path: Path) -> None:
    """/readyz and /metrics report depth: a record taken off the queue but not stored yet counts."""
    db = Database(f"sqlite:///{tmp_path}/mm.db")
    migrate(db)
    recorder = Recorder(db, spool_dir=tmp_path / "spool", linger=0.5)  # holds the first record 0.5 s
    recorder.start()
    try:
        assert recorder.submit_nowait(rec(0))
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # in the queue, then in the finisher's hands
            assert recorder.depth == 1
            time.sleep(0.01)
    finally:
        recorder.stop()
    assert recorder.depth == 0
    assert recorder.written == 1


def test_spooled_rows_stored_already_do_not_reach_the_listeners_again(tmp_path: Path) -> None:
    """A process stored its spool and died before removing the file: the next one skips those rows,
    and its listeners (this process's copy of a key's spend, metrics) must not count them again."""
    db = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    rows = [finish(rec(i), Pricer(), True) for i in range(5)]
    insert_rows(db, rows[:3])
    Spool(tmp_path / "spool", database_key(db)).append(rows)
    seen: list[str] = []
    found: list[str] = []
    recorder = Recorder(db, spool_dir=tmp_path / "spool")
    recorder.add_listener(lambda batch: seen.extend(r["id"] for r in batch))
    recorder.on_found_stored(lambda batch: found.extend(r["id"] for r in batch))
    recorder.start()
    recorder.stop()
    assert seen == [r["id"] for r in rows[3:]] and found == [r["id"] for r in rows[:3]]
    assert count(db) == 5 and recorder.written == 2
