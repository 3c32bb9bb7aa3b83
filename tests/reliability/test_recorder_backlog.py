"""The recorder's backlog under steady traffic, in-process and fast (the process-level version is
test_pg_outage.py): the spool is stored while traffic goes on, and the backlog is counted in rows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from modelmeter.recording.recorder import Recorder
from modelmeter.storage.migrations import migrate
from tests.recording.test_recorder import FlakyDatabase, count, rec

RATE = 400  # records per second, steady


def _steady(recorder: Recorder, stop: threading.Event, sent: list[int]) -> None:
    """Submit records at RATE until ``stop``; never more than 20,000 (a bound, not a target)."""
    t0 = time.monotonic()
    while not stop.is_set() and sent[0] < 20_000:
        while not recorder.submit_nowait(rec(sent[0])):
            time.sleep(0.001)
        sent[0] += 1
        time.sleep(max(0.0, t0 + sent[0] / RATE - time.monotonic()))


def test_spool_is_stored_while_traffic_goes_on(tmp_path: Path) -> None:
    db = FlakyDatabase(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    recorder = Recorder(db, maxsize=10_000, batch_size=500, spool_dir=tmp_path / "spool", linger=0.02)
    recorder.start()
    stop, sent = threading.Event(), [0]
    producer = threading.Thread(target=_steady, args=(recorder, stop, sent))
    producer.start()
    try:
        time.sleep(0.5)
        db.down = True
        deadline = time.monotonic() + 10
        while recorder.spool.rows < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        spooled = recorder.spool.rows
        assert spooled >= 200, recorder.backlog
        # A handful of small batches wait in memory: the backlog counts their rows, not 500 a batch.
        assert recorder.depth < 4 * 500, recorder.backlog
        assert recorder.depth + spooled <= sent[0] - count(db) + 50, (recorder.backlog, sent[0], count(db))
        db.down = False
        back = time.monotonic()
        # Traffic goes on (a batch every ~20 ms: the writer is never idle for a second), and yet the
        # spool is stored, and the backlog empties, within a few seconds.
        deadline = back + 10
        while (recorder.spool.rows or count(db) < sent[0] - RATE) and time.monotonic() < deadline:
            time.sleep(0.05)
        caught_up = time.monotonic() - back
        assert recorder.spool.rows == 0 and count(db) >= sent[0] - RATE, (recorder.backlog, sent[0], count(db))
        assert producer.is_alive(), "the traffic stopped: this proves nothing about steady traffic"
    finally:
        stop.set()
        producer.join(10)
        recorder.stop(timeout=30)
    assert count(db) == sent[0]
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    print(f"\n[recorder] sent={sent[0]} spooled={spooled} caught_up_s={caught_up:.2f}")
