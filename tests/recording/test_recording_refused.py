"""A row the database refuses for a reason nobody foresaw never slows the others much (#18.4): the
refused batch is stored in halves, not row by row, and only the bad row is stripped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelmeter.recording.recorder import Recorder
from modelmeter.storage import records
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from tests.recording.test_recorder import count, rec

N = 512


def test_one_bad_row_costs_a_few_transactions_not_one_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    batch = [rec(i) for i in range(N)]
    poison = batch[N // 3].id
    calls = [0]
    real = records._insert

    def insert(db: Database, tx: Any, rows: Any) -> None:
        calls[0] += 1
        if any(r["id"] == poison and r["metadata"] is not None for r in rows):
            raise ValueError("this database refuses that row's metadata")  # not transient: the data
        real(db, tx, rows)

    monkeypatch.setattr(records, "_insert", insert)
    for r in batch:
        r.metadata = {"n": 1}
    recorder = Recorder(db, batch_size=N, spool_dir=tmp_path / "spool", linger=0.3)
    recorder.start()
    for r in batch:
        assert recorder.submit_nowait(r)
    t0 = time.monotonic()
    recorder.stop()
    assert count(db) == N and recorder.dropped == 0
    assert calls[0] <= 2 + 2 * N.bit_length(), calls[0]  # was N + 1 (row by row)
    stripped = db.fetchall("SELECT id FROM records WHERE metadata IS NULL")
    assert stripped == [(poison,)]  # only the bad row lost its free-form fields
    print(f"\n[refused batch] {calls[0]} inserts for a batch of {N} with one bad row, {time.monotonic() - t0:.2f} s")


def test_a_row_refused_even_bare_is_lost_and_not_heard_of_as_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listeners add a stored row's spend to its key and user: a row the database refuses even
    without its free-form fields is counted lost, and they are not told of it."""
    db = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(db)
    batch = [rec(i) for i in range(40)]
    poison = batch[7].id
    real = records._insert

    def insert(db: Database, tx: Any, rows: Any) -> None:
        if any(r["id"] == poison for r in rows):
            raise ValueError("this database refuses that row whatever it holds")
        real(db, tx, rows)

    monkeypatch.setattr(records, "_insert", insert)
    recorder = Recorder(db, batch_size=40, spool_dir=tmp_path / "spool", linger=0.3)
    heard: list[str] = []
    settled: list[str] = []
    recorder.add_listener(lambda rows: heard.extend(r["id"] for r in rows))
    recorder.on_settled(settled.extend)
    recorder.start()
    for r in batch:
        assert recorder.submit_nowait(r)
    recorder.stop()
    assert count(db) == 39 and recorder.dropped == 1
    assert poison not in heard and sorted(heard) == sorted(r.id for r in batch if r.id != poison)
    assert settled == [poison]  # (the recorder process reports it so: the gateway stops holding it)
