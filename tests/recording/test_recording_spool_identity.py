"""Spool files are stored only into the database they were written for, and a claim left by a
process that died is taken back (#18.10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelmeter.recording.recorder import Recorder
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from tests.recording.test_recorder import FlakyDatabase, count, rec


def spool_during_outage(db: FlakyDatabase, n: int) -> list[Path]:
    """A gateway on ``db`` stops while its database is away: its records stay in the spool."""
    recorder = Recorder(db, maxsize=1000, batch_size=25)  # the default spool directory
    recorder.start()
    db.down = True
    for i in range(n):
        assert recorder.submit_nowait(rec(i))
    recorder.stop(timeout=1.0)
    db.down = False
    files = sorted(recorder.spool.dir.glob("*.jsonl"))
    assert files, "nothing was spooled"
    return files


def start_and_stop(db: Database) -> None:
    recorder = Recorder(db)
    recorder.start()
    recorder.stop()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_spool_goes_only_into_its_own_database(tmp_path: Path) -> None:
    """Two SQLite files side by side share the spool directory; the second never gets the first's records."""
    mm = FlakyDatabase(f"sqlite:///{tmp_path}/mm.db")
    mm2 = Database(f"sqlite:///{tmp_path}/mm2.db")
    migrate(mm)
    migrate(mm2)
    spool_during_outage(mm, 200)
    start_and_stop(mm2)
    assert count(mm2) == 0, "another database's spool was stored here"
    assert count(mm) == 0
    start_and_stop(mm)
    assert count(mm) == 200
    assert not list((tmp_path / ".modelmeter-spool").glob("*.jsonl"))


def test_a_claim_left_by_a_dead_process_is_taken_back(tmp_path: Path) -> None:
    db = FlakyDatabase(f"sqlite:///{tmp_path}/mm.db")
    migrate(db)
    (spooled,) = spool_during_outage(db, 120)
    # A gateway claimed this file to store it, then died (kill -9) before it was done.
    spooled.rename(spooled.with_name(f"claimed-{dead_pid()}-{spooled.name}"))
    start_and_stop(db)
    assert count(db) == 120
    assert not list(spooled.parent.glob("*.jsonl"))


def test_a_claim_of_a_live_process_is_left_alone(tmp_path: Path) -> None:
    db = FlakyDatabase(f"sqlite:///{tmp_path}/mm.db")
    migrate(db)
    (spooled,) = spool_during_outage(db, 30)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            claimed = spooled.with_name(f"claimed-{other.pid}-{spooled.name}")
            spooled.rename(claimed)
            start_and_stop(db)
            assert count(db) == 0 and claimed.exists()  # the other gateway is storing it
        finally:
            other.kill()
    start_and_stop(db)
    assert count(db) == 30


def test_the_spool_name_holds_no_password(tmp_path: Path) -> None:
    from modelmeter.recording.spool import database_key

    one = database_key(Database("postgresql://mm:s3cret-one@db.example:5432/usage"))
    two = database_key(Database("postgresql://mm:other-pass@db.example:5432/usage"))
    assert one == two  # the same database, whatever the password
    assert one != database_key(Database("postgresql://mm:s3cret-one@db.example:5432/usage2"))
    recorder = Recorder(Database("postgresql://mm:s3cret-one@db.example:5432/usage"), spool_dir=tmp_path)
    assert "s3cret" not in recorder.spool.path.name
