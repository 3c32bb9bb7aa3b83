"""The storage upkeep's thread is stopped, its pass under way finished, before the database is
closed: a SQLite connection closed from another thread under a running query crashed a test run."""

from __future__ import annotations

import threading
import time
from typing import Any

from modelmeter.storage import maintenance, slots
from modelmeter.storage.database import Database
from modelmeter.storage.retention import Retention


def test_stop_waits_for_the_pass_under_way(db: Database, monkeypatch: Any) -> None:
    started, passes = threading.Event(), []
    real = slots.index_slots

    def slow_index(database: Database) -> Any:
        started.set()
        time.sleep(0.3)  # a pass that is still running when the app shuts down
        passes.append(real(database))

    monkeypatch.setattr(slots, "index_slots", slow_index)
    upkeep = maintenance.start(db, Retention(), 300.0)
    assert started.wait(5)
    t0 = time.monotonic()
    assert upkeep.stop(timeout=5)
    assert time.monotonic() - t0 >= 0.2 and len(passes) == 1  # it waited for the pass, which ended
    db.close()  # (safe now: nothing else uses the connections)


def test_stop_says_when_the_pass_outlasts_the_timeout(db: Database, monkeypatch: Any) -> None:
    release = threading.Event()
    monkeypatch.setattr(slots, "index_slots", lambda database: release.wait(5))
    upkeep = maintenance.start(db, Retention(), 300.0)
    time.sleep(0.05)
    assert upkeep.stop(timeout=0.1) is False  # the app then leaves the database open
    release.set()
    assert upkeep.stop(timeout=5)
