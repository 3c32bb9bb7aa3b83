"""Recording off the hot path: a bounded queue and one writer thread that stores batches.

The request path only puts a ``CallRecord`` on the queue. When the queue is full the gateway waits
(it slows down) rather than dropping a record. The writer finishes each record (prices, redaction,
JSON), writes a batch in one transaction, retries a failed batch until it lands, and on ``stop``
drains everything before returning.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows

log = logging.getLogger("modelmeter.recorder")
_STOP = object()

Listener = Callable[[list[dict[str, Any]]], None]


class Recorder:
    def __init__(self, db: Database, *, maxsize: int = 10_000, batch_size: int = 500,
                 store_bodies: bool = True, pricer: Pricer | None = None) -> None:
        self._db = db
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._batch_size = batch_size
        self._store_bodies = store_bodies
        self._pricer = pricer or Pricer()
        self._finished: queue.Queue[Any] = queue.Queue(maxsize=4)  # finished batches awaiting the store
        self._threads: list[threading.Thread] = []
        self._listeners: list[Listener] = []
        self.written = 0
        self.failed_batches = 0
        self.last_error: str | None = None
        self.last_lag_s = 0.0  # how long the newest written record waited in the queue

    # -- the request path ------------------------------------------------------------------
    def submit_nowait(self, rec: CallRecord) -> bool:
        try:
            self._queue.put_nowait(rec)
            return True
        except queue.Full:
            return False

    async def submit(self, rec: CallRecord) -> None:
        """Queue a record; when the queue is full, wait for room (back-pressure, no loss)."""
        delay = 0.001
        while not self.submit_nowait(rec):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    @property
    def depth(self) -> int:
        """Records not yet stored (queued, or finished and waiting for the database)."""
        return self._queue.qsize() + self._finished.qsize() * self._batch_size

    def add_listener(self, listener: Listener) -> None:
        """Called from the writer thread with each batch of finished rows, after they are stored."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- the writer thread -----------------------------------------------------------------
    def start(self) -> None:
        # Two threads in a pipeline: one finishes records (Python: prices, JSON), the other stores
        # them (SQLite and psycopg release the GIL while they work), so the two overlap.
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, name="modelmeter-finisher", daemon=True),
                threading.Thread(target=self._store_loop, name="modelmeter-writer", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the writer."""
        if not self._threads:
            return
        self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        self._threads = []

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[CallRecord] = []
            if item is _STOP:
                stopping = True
            else:
                batch.append(item)
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            if batch:
                rows = [finish(rec, self._pricer, self._store_bodies) for rec in batch]
                self._finished.put((rows, batch[-1].end))
        self._finished.put(_STOP)

    def _store_loop(self) -> None:
        while True:
            item = self._finished.get()
            if item is _STOP:
                return
            rows, newest_end = item
            self._write(rows, newest_end)

    def _write(self, rows: list[dict[str, Any]], newest_end: float) -> None:
        delay = 0.05
        retry = False
        while True:
            try:
                insert_rows(self._db, rows, retry=retry)
                break
            except Exception as exc:  # the database is down or busy: keep the batch, retry
                self.failed_batches += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("record batch of %d not written yet (%s); retrying", len(rows),
                            self.last_error)
                self._db.reset_connection()
                retry = True
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.written += len(rows)
        self.last_lag_s = max(time.time() - newest_end, 0.0)
        for listener in list(self._listeners):
            try:
                listener(rows)
            except Exception:  # a listener's fault must not stop the writer
                log.exception("record listener failed")
