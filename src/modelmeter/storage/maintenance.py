"""Storage upkeep in the background: on PostgreSQL create the coming days' partitions
(storage/partitions.py), index the request ids and log filters of the time that is
settled (storage/slots.py), and apply the retention policy (storage/retention.py) in small batches.

It runs where the records are written: in the recorder process under ``serve`` (an idle-class
process, so the minute's indexing, ~10 µs a record, never takes the gateway's core from a
request), else in a thread of the gateway's process.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from modelmeter.storage import partitions, slots
from modelmeter.storage.database import Database
from modelmeter.storage.retention import Retention, prune

log = logging.getLogger("modelmeter")

INDEX_INTERVAL_S = 60.0


def maintain(db: Database, retention: Retention, prune_interval_s: float, stop: threading.Event) -> None:
    """Until ``stop`` is set: index now and every minute; prune every ``prune_interval_s``."""
    last_prune = -math.inf
    while not stop.is_set():
        try:
            partitions.ensure_ahead(db)
        except Exception:  # (a day without its partitions still stores, in the DEFAULT one)
            log.exception("creating the coming days' partitions failed")
        try:
            slots.index_slots(db)
        except Exception:  # the database may be briefly away; try again next time
            log.exception("indexing the settled time failed")
        if retention.enabled and time.monotonic() - last_prune >= prune_interval_s:
            last_prune = time.monotonic()
            try:
                removed = prune(db, retention, pause=0.01)
                if any(removed.values()):
                    log.info("retention removed %s", removed)
            except Exception:
                log.exception("retention pass failed")
        stop.wait(min(INDEX_INTERVAL_S, prune_interval_s))


class Upkeep:
    """``maintain`` in a daemon thread. Stop it before the database is closed: closing a SQLite
    connection from another thread while its query runs can crash the process (it did, in a test
    whose app shut down during the first pass)."""

    def __init__(self, db: Database, retention: Retention, prune_interval_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=maintain,
            args=(db, retention, prune_interval_s, self._stop),
            name="modelmeter-maintenance",
            daemon=True,
        )
        self._thread.start()

    def set(self) -> None:
        """Stop after the pass under way (not waiting for it)."""
        self._stop.set()

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop, and wait for the pass under way; False if it is still running after ``timeout``."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()


def start(db: Database, retention: Retention, prune_interval_s: float) -> Upkeep:
    return Upkeep(db, retention, prune_interval_s)
