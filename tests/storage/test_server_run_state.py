"""Issue 13: a server-side run's state in the runs table: a stop asked in another worker (its
params), and a run whose process died shown as lost, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from modelmeter.runs.manager import STALE_S, RunManager, with_status
from modelmeter.storage import runs as runs_db
from modelmeter.storage.database import Database


def _running(db: Database, run_id: str, updated_s_ago: float) -> None:
    now = time.time()
    live = {"done": 3, "failed": 0, "updated_us": int((now - updated_s_ago) * 1e6)}
    runs_db.insert_run(
        db,
        {"id": run_id, "kind": "bench", "deployment": "m", "created_us": int(now * 1e6), "params": {"load": "x"},
         "report": {"status": "running", "live": live}},
    )  # fmt: skip


def test_stop_from_another_worker_is_written_to_params(db: Database) -> None:
    _running(db, "elsewhere", 0)
    manager = RunManager(db)  # this worker does not run it
    assert manager.stop("elsewhere") is True
    stored = runs_db.get_run(db, "elsewhere")
    assert stored is not None and stored["params"] == {"load": "x", "stop_requested": True}
    assert stored["report"]["status"] == "running"  # the run's own thread writes its end
    runs_db.update_report(db, "elsewhere", {"status": "stopped"})
    assert manager.stop("elsewhere") is False and manager.stop("no-such-run") is False


def test_a_run_without_progress_is_lost(db: Database) -> None:
    _running(db, "fresh", 1)
    _running(db, "stale", STALE_S + 5)
    fresh, stale = (with_status(runs_db.get_run(db, i) or {}) for i in ("fresh", "stale"))
    assert fresh["report"]["status"] == "running" and stale["report"]["status"] == "lost"
