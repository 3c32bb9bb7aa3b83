"""Where finished batches go while the database cannot take them: the spool file; if that fails
too, memory; if that is full, nowhere (counted and said loudly).

A full disk fails the database and the spool at once. The gateway keeps serving; its records wait
in memory, oldest first, up to a bound in bytes (a row's size is estimated from its text, bodies
included). A batch that does not fit is lost: counted in ``lost``, logged as an error (at most one
line per 10 s), shown on /readyz and /metrics. The newest go rather than the oldest: what is held is
stored first-come when the database is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from modelmeter.recording.spool import Spool
from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")
MAX_HELD_BYTES = 256 * 1024 * 1024

_ROW_OVERHEAD = 1000  # bytes: a row's dict and its numbers, roughly


def row_size(row: RecordRow) -> int:
    return _ROW_OVERHEAD + sum(len(row[k] or "") for k in ("request", "response", "metadata", "error", "tags"))


class Held:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._batches: deque[tuple[list[RecordRow], int]] = deque()
        self._lock = threading.Lock()
        self.rows = 0
        self.bytes = 0

    def add(self, rows: list[RecordRow]) -> bool:
        """Hold a batch; False if it does not fit (nothing of it is held)."""
        size = sum(map(row_size, rows))
        with self._lock:
            if self.bytes + size > self.max_bytes:
                return False
            self._batches.append((rows, size))
            self.rows += len(rows)
            self.bytes += size
        return True

    def pop(self) -> list[RecordRow] | None:
        """The oldest batch, taken out (``put_back`` it if it could not be stored)."""
        with self._lock:
            if not self._batches:
                return None
            rows, size = self._batches.popleft()
            self.rows -= len(rows)
            self.bytes -= size
        return rows

    def put_back(self, rows: list[RecordRow]) -> None:
        """Return a popped batch to the front; always fits (it was held a moment ago)."""
        size = sum(map(row_size, rows))
        with self._lock:
            self._batches.appendleft((rows, size))
            self.rows += len(rows)
            self.bytes += size

    def __bool__(self) -> bool:
        return self.rows > 0


class Fallback:
    def __init__(self, spool: Spool, max_held_bytes: int = MAX_HELD_BYTES) -> None:
        self.spool = spool
        self.held = Held(max_held_bytes)
        self.spooled = 0  # rows that went through the spool file
        self.lost = 0  # rows lost because nothing could take them
        self.spool_error: str | None = None  # the spool's last write error, until a write succeeds
        self._last_loss_log = 0.0
        # Told the ids of every batch kept here (spooled, held or lost): the recorder process
        # (recording/child.py) settles them with the gateway, which then lets go of its copies.
        self.on_keep: Callable[[list[str]], None] | None = None

    def keep(self, rows: list[RecordRow]) -> None:
        """To the spool; if it fails, held in memory; if that is full, lost. Never raises."""
        if not rows:
            return
        try:
            self._keep(rows)
        finally:
            if self.on_keep is not None:
                self.on_keep([r["id"] for r in rows])

    def _keep(self, rows: list[RecordRow]) -> None:
        try:
            self.spool.append(rows)
        except Exception as exc:
            if self.spool_error is None:
                log.error(
                    "the spool refuses writes (%s: %s); holding records in memory (up to %d MB)",
                    type(exc).__name__,
                    exc,
                    self.held.max_bytes // 2**20,
                )
            self.spool_error = f"{type(exc).__name__}: {exc}"
            if not self.held.add(rows):
                self.lose(len(rows), "the database, the spool and the memory bound are all full")
            return
        if self.spool_error is not None:
            log.warning("the spool takes writes again")
            self.spool_error = None
        self.spooled += len(rows)
        self.spool_held()  # the spool has room again: memory is the worse place to wait

    def spool_held(self) -> None:
        """What is held in memory to the spool, while it takes it."""
        while self.held:
            rows = self.held.pop()
            if rows is None:
                return
            try:
                self.spool.append(rows)
            except Exception:
                self.held.put_back(rows)
                return
            self.spooled += len(rows)

    def lose_record(self, record_id: str, why: str) -> None:
        """One record lost before it could be finished (recording/child.py): counted, and settled."""
        self.lose(1, f"record {record_id}: {why}")
        if self.on_keep is not None:
            self.on_keep([record_id])

    def lose(self, n: int, why: str) -> None:
        self.lost += n
        now = time.monotonic()
        if now - self._last_loss_log > 10:  # loud, but not a line per batch
            self._last_loss_log = now
            log.error("RECORDS LOST: %d records could not be stored (%s); %d lost so far", n, why, self.lost)
