"""No storage error stops recording (#18.2): with the database and the spool both failing (a full
disk), the gateway keeps handing records over, they are held in memory up to a bound (beyond it,
counted as lost), the recorder says so, and it stores everything by itself once space returns."""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelmeter.recording.recorder import Recorder
from modelmeter.recording.spool import Spool
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from tests.recording.test_recorder import count, rec


class FullDisk:
    """One switch for a disk that is full: the database and the spool refuse every write."""

    full = False


class FullDatabase(Database):
    def __init__(self, url: str, disk: FullDisk) -> None:
        super().__init__(url)
        self.disk = disk

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self.disk.full:
            raise sqlite3.OperationalError("database or disk is full")  # what SQLite says
        with super().transaction() as tx:
            yield tx


def full_spool(spool: Spool, disk: FullDisk, monkeypatch: pytest.MonkeyPatch) -> None:
    real = spool.append

    def append(rows: list[Any]) -> None:
        if disk.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(rows)

    monkeypatch.setattr(spool, "append", append)


def submit_all(recorder: Recorder, n: int, start: int = 0) -> None:
    """As the gateway does; fails if handing a record over waits more than 5 s (requests would hang)."""
    for i in range(start, start + n):
        deadline = time.monotonic() + 5
        while not recorder.submit_nowait(rec(i)):
            assert time.monotonic() < deadline, f"recording is stuck: {recorder.backlog}"
            time.sleep(0.001)


def wait_for(what: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def recorder_threads_cpu(seconds: float) -> float:
    """CPU seconds this process used over ``seconds`` of wall time (the test thread sleeps)."""
    t0 = time.process_time()
    time.sleep(seconds)
    return time.process_time() - t0


def test_disk_full_holds_records_then_stores_them_when_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    db = FullDatabase(f"sqlite:///{tmp_path}/r.db", disk)
    migrate(db)
    recorder = Recorder(db, maxsize=100, batch_size=20, spool_dir=tmp_path / "spool", linger=0.01)
    full_spool(recorder.spool, disk, monkeypatch)
    recorder.start()
    try:
        submit_all(recorder, 50)
        wait_for(lambda: count(db) == 50)
        disk.full = True
        submit_all(recorder, 1000, start=50)  # far more than the queue holds: the gateway never waits
        wait_for(lambda: recorder.held.rows > 0)
        assert all(t.is_alive() for t in recorder._threads), "a recorder thread died"
        assert recorder.problem is not None and "held in memory" in recorder.problem
        assert recorder.backlog["spool_failing"] is True and recorder.backlog["database_failing"] is True
        assert recorder.depth >= 900  # every record not stored is counted somewhere
        assert recorder_threads_cpu(1.0) < 0.5, "the recorder spins while the disk is full"
        disk.full = False  # space returns: no restart, no signal
        wait_for(lambda: count(db) == 1050, timeout=20)
        wait_for(lambda: recorder.problem is None)
        assert recorder.lost == 0 and recorder.held.rows == 0 and recorder.depth == 0
        submit_all(recorder, 10, start=1050)  # and recording goes on as before
        wait_for(lambda: count(db) == 1060)
    finally:
        t0 = time.monotonic()
        recorder.stop(timeout=10)
        assert time.monotonic() - t0 < 10
    assert recorder.lost == 0


def test_memory_is_bounded_and_what_does_not_fit_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk()
    db = FullDatabase(f"sqlite:///{tmp_path}/r.db", disk)
    migrate(db)
    bound = 100 * 1100  # bytes: about 100 of these small rows
    recorder = Recorder(db, maxsize=100, batch_size=10, spool_dir=tmp_path / "spool", linger=0.01, max_held_bytes=bound)
    full_spool(recorder.spool, disk, monkeypatch)
    recorder.start()
    disk.full = True
    try:
        submit_all(recorder, 600)
        wait_for(lambda: recorder.lost + recorder.held.rows >= 500)  # (the rest: in the writer's hands)
        assert recorder.held.bytes <= bound
        assert recorder.backlog["lost"] == recorder.lost > 0
        disk.full = False
        wait_for(lambda: count(db) + recorder.lost == 600, timeout=20)
        assert count(db) >= 100  # what was held (and what the writer had) got stored
    finally:
        recorder.stop(timeout=10)


def test_stop_while_the_disk_stays_full_ends_and_counts_the_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    db = FullDatabase(f"sqlite:///{tmp_path}/r.db", disk)
    migrate(db)
    recorder = Recorder(db, maxsize=100, batch_size=10, spool_dir=tmp_path / "spool", linger=0.01)
    full_spool(recorder.spool, disk, monkeypatch)
    recorder.start()
    disk.full = True
    submit_all(recorder, 300)
    wait_for(lambda: recorder.held.rows > 0)
    done = threading.Event()
    t0 = time.monotonic()
    stopper = threading.Thread(target=lambda: (recorder.stop(timeout=1.0), done.set()))
    stopper.start()
    assert done.wait(15), "stop() hangs while the disk is full"
    print(f"\n[disk full at stop] stopped in {time.monotonic() - t0:.2f} s, lost={recorder.lost}")
    assert recorder.lost == 300  # nothing could take them, and the count says so
    assert count(db) == 0


def test_stop_stores_what_is_held_in_the_spool_when_only_the_database_is_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held in memory while the spool was full; at stop the spool has room again: nothing lost,
    and the next start stores it."""
    disk = FullDisk()
    db = FullDatabase(f"sqlite:///{tmp_path}/r.db", disk)
    migrate(db)
    recorder = Recorder(db, maxsize=100, batch_size=10, spool_dir=tmp_path / "spool", linger=0.01)
    spool_full = FullDisk()
    full_spool(recorder.spool, spool_full, monkeypatch)
    recorder.start()
    disk.full = spool_full.full = True
    submit_all(recorder, 200)
    wait_for(lambda: recorder.held.rows > 0)
    spool_full.full = False
    recorder.stop(timeout=1.0)
    assert recorder.lost == 0
    disk.full = False
    again = Recorder(db, spool_dir=tmp_path / "spool")
    again.start()
    again.stop()
    assert count(db) == 200


def test_held_records_move_to_the_spool_when_it_has_room_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database stays away, the spool's disk gets room: what memory held goes to the spool
    (it survives a crash there), and /readyz's reason says only the database is failing."""
    disk, spool_disk = FullDisk(), FullDisk()
    db = FullDatabase(f"sqlite:///{tmp_path}/r.db", disk)
    migrate(db)
    recorder = Recorder(db, maxsize=100, batch_size=10, spool_dir=tmp_path / "spool", linger=0.01)
    full_spool(recorder.spool, spool_disk, monkeypatch)
    recorder.start()
    try:
        disk.full = spool_disk.full = True
        submit_all(recorder, 200)
        wait_for(lambda: recorder.held.rows > 0)
        spool_disk.full = False
        submit_all(recorder, 100, start=200)  # the next batch to the spool takes the held ones along
        wait_for(lambda: recorder.held.rows == 0)
        assert recorder.spool.rows > 0 and recorder.lost == 0 and count(db) == 0
        assert recorder.problem == "the database refuses writes; records go to the local spool"
        disk.full = False
        wait_for(lambda: count(db) == 300, timeout=20)
    finally:
        recorder.stop(timeout=10)
    assert count(db) == 300
