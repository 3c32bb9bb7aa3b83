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


def start(db: Database, retention: Retention, prune_interval_s: float) -> threading.Event:
    """``maintain`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(
        target=maintain, args=(db, retention, prune_interval_s, stop), name="modelmeter-maintenance", daemon=True
    ).start()
    return stop
