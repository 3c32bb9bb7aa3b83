"""Recording off the hot path: a bounded queue, and writer threads that store batches.

The request path only puts a ``CallRecord`` on the queue. When the queue is full the gateway waits
(it slows down) rather than dropping a record. A finisher thread prices and serialises each record;
a writer thread stores each batch in one transaction and retries a failed one until it lands.
While the database is unreachable, finished batches that do not fit in memory go to a local spool
file, so the gateway keeps serving; the writer stores the spool when the database is back. ``stop``
drains everything (to the database, or to the spool if it is still down) before returning.

No storage error stops recording (a full disk fails the database and the spool at once): batches
the spool cannot take are held in memory, up to ``max_held_bytes``; beyond that a batch is lost,
counted in ``lost`` and logged as an error (the newest go: what is held is already in order for
the database). While anything is held or the database refuses writes, ``problem`` says so
(/readyz answers 503 with it, /metrics has gauges). The writer retries by itself, so recording
resumes when space returns, and the held batches are stored first-come.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish_or_strip
from modelmeter.recording import batch as batches
from modelmeter.recording.backlog import Backlog
from modelmeter.recording.batch import Finished
from modelmeter.recording.checkpointer import Checkpointer
from modelmeter.recording.fallback import MAX_HELD_BYTES, Fallback
from modelmeter.recording.listeners import Listener, Listeners
from modelmeter.recording.refused import store_refused
from modelmeter.recording.sink import submit_when_room
from modelmeter.recording.spool import Spool, database_key, default_spool_dir
from modelmeter.storage.database import Database, is_transient
from modelmeter.storage.records import insert_rows, not_stored
from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")
_STOP = batches.STOP

FinishHook = Callable[[CallRecord, RecordRow], None]  # must not raise; runs in the finisher thread


class Recorder:
    def __init__(
        self,
        db: Database,
        *,
        maxsize: int = 10_000,
        batch_size: int = 500,
        store_bodies: bool = True,
        pricer: Pricer | None = None,
        spool_dir: Path | None = None,
        linger: float = 0.02,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self._db = db
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._batch_size = batch_size
        # After the first record of a batch, let more arrive before finishing and storing them:
        # one transaction (and one wake-up of the threads) per batch rather than per record.
        # Measured (benchmarks/overhead.py): without it, at ~2,500 calls/s the threads took each
        # record alone and recording cost ~190 µs of the process's one core per call; ~50 with it.
        # It is also what a crash (kill -9) can lose: records wait in memory this long plus their
        # batch's write. 20 ms, not 50: the recorder threads' CPU per record at 2,500/s went from
        # 35 to 42 µs (in-process, 10,000 records, twice each), the loss window from 107-200 ms
        # to 14-116 ms (tests/reliability/test_recording_kill9.py, 4 and 7 runs, shared machine).
        self._linger = linger
        self._store_bodies = store_bodies
        self._pricer = pricer or Pricer()
        self._finished: queue.Queue[Any] = queue.Queue(maxsize=4)  # finished batches awaiting the store
        # Rows handed to the writer (counted by the finisher) and done with by it (stored or spooled;
        # counted by the writer): each written by one thread only, so no lock is needed.
        self._handed_rows = 0
        self._done_rows = 0
        self._finishing = 0  # records the finisher has taken off the queue and not handed over yet
        self._rows_put = 0  # rows queued finished (by the one thread that puts them)
        self._rows_taken = 0  # and taken off the queue (by the finisher)
        self._threads: list[threading.Thread] = []
        self._listeners = Listeners()
        self._finish_hook: FinishHook | None = None
        self.written = 0
        self.failed_batches = 0
        self.dropped = 0  # records the database refused even stripped to their numbers (a bug if ever > 0)
        self.last_error: str | None = None
        self.last_lag_s = 0.0  # how long the newest written record waited in the queue
        self.refused_batches = 0  # batches the database refused for their data (stored row by row)
        self._fallback = Fallback(Spool(spool_dir or default_spool_dir(db), database_key(db)), max_held_bytes)
        self.spool = self._fallback.spool
        self.held = self._fallback.held  # batches neither the database nor the spool took
        self._checkpointer: Checkpointer | None = None
        self._backlog = Backlog(self._fallback, self._write)  # held batches and the spool, caught up
        self._failing = threading.Event()  # set while the database refuses writes
        self._aborting = threading.Event()  # stop() gave up waiting for the database

    # -- the request path ------------------------------------------------------------------
    def submit_nowait(self, rec: CallRecord) -> bool:
        try:
            self._queue.put_nowait(rec)
            return True
        except queue.Full:
            return False

    async def submit(self, rec: CallRecord) -> None:
        """Queue a record; when the queue is full, wait for room (back-pressure, no loss)."""
        await submit_when_room(self.submit_nowait, rec)

    def put(self, rec: CallRecord) -> None:
        """Queue a record, blocking while the queue is full (the recorder process's reader)."""
        self._queue.put(rec)

    def put_finished(self, rows: list[RecordRow], newest_end: float) -> None:
        """Rows finished elsewhere (the finisher process, recording/finishing.py), queued after the
        records put before them; blocks while the queue is full."""
        self._rows_put += len(rows)
        self._queue.put(Finished(rows, newest_end))

    def replay(self, records: list[CallRecord]) -> None:
        """Records another recorder may have stored before it died: finished and spooled, so the
        writer stores them the way it stores a spool (skipping any already stored)."""
        self._fallback.keep([r for r in map(self._finish, records) if r is not None])

    def lose(self, record_id: str, why: str) -> None:
        """A record the recorder process could not decode: counted as lost, and settled."""
        self._fallback.lose_record(record_id, why)

    @property
    def depth(self) -> int:
        """Records not yet stored: queued, being finished, or finished and waiting for the database
        (a record handed over is counted twice for a moment rather than not at all), or held in
        memory because neither the database nor the spool takes them."""
        return (
            self._queue.qsize()
            + max(self._rows_put - self._rows_taken, 0)
            + self._finishing
            + max(self._handed_rows - self._done_rows, 0)
            + self.held.rows
        )

    @property
    def lost(self) -> int:
        """Rows lost because neither the database, the spool nor memory could take them."""
        return self._fallback.lost

    @property
    def spool_error(self) -> str | None:
        return self._fallback.spool_error

    @property
    def problem(self) -> str | None:
        """Why recording is not safe right now (for /readyz), or None. No error text: /readyz is open."""
        if self.held:
            return (
                f"storage failing: the database and the spool refuse writes; {self.held.rows} records "
                f"held in memory, {self.lost} lost"
            )
        if self._failing.is_set():
            return "the database refuses writes; records go to the local spool"
        return None

    @property
    def backlog(self) -> dict[str, Any]:
        return {
            "queued": self.depth,
            "spooled": self.spool.rows,
            "database_failing": self._failing.is_set(),
            "held_in_memory": self.held.rows,
            "spool_failing": self.spool_error is not None,
            "lost": self.lost,
            "last_error": self.last_error,
        }

    def add_listener(self, listener: Listener, *, whole: bool = False) -> None:
        """Called from the writer thread with each batch of finished rows, after they are stored.
        (``whole`` matters to the recorder process's stand-in, RemoteRecorder: rows are whole here.)"""
        self._listeners.fresh.append(listener)

    def on_settled(self, hook: Callable[[list[str]], None]) -> None:
        """Called with the ids of records that went to the spool, to memory, or were lost or
        dropped rather than stored (stored ones reach the listeners)."""
        self._fallback.on_keep = hook

    def on_found_stored(self, hook: Listener) -> None:
        """Called from the writer thread with rows of the spool (or memory) that were stored already,
        rather than the listeners (recording/listeners.py)."""
        self._listeners.found_stored = hook

    def on_finish(self, hook: FinishHook) -> None:
        """Called in the finisher thread with each record and its finished row, before it is stored:
        the OpenTelemetry export (otel/export.py) builds its span there, off the request path."""
        self._finish_hook = hook

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
        if self._db.dialect == "sqlite" and self._checkpointer is None:
            self._checkpointer = Checkpointer(self._db).start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the writer."""
        if not self._threads:
            return
        deadline = time.monotonic() + timeout
        while True:  # (never a blocking put: a full queue must not hang the shutdown)
            try:
                self._queue.put(_STOP, timeout=0.5)
                break
            except queue.Full:
                if time.monotonic() > deadline or not self._threads[0].is_alive():
                    break
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        if any(t.is_alive() for t in self._threads):
            # The database is still away: everything left goes to the spool, for the next start.
            self._aborting.set()
            for thread in self._threads:
                thread.join(30.0)
        self._threads = []
        self._spool_everything_left()  # batches handed over after the writer gave up
        if self.held:
            self._fallback.lose(self.held.rows, "at shutdown: neither the database nor the spool took them")
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = batches.take(self._queue, self._batch_size, self._linger, self._waiting, self._taking)
            if batch:
                rows, newest_end, finished_elsewhere = batches.rows_of(batch, self._finish)
                self._rows_taken += finished_elsewhere
                try:
                    self._hand_over(rows, newest_end)
                except Exception:  # a bug here must not stop the finisher (the gateway would wait forever)
                    log.exception("could not hand over a batch of %d records", len(rows))
                    self._fallback.keep(rows)
            self._finishing = 0
        while not self._aborting.is_set():  # (an aborting stop() collects what is left itself)
            with contextlib.suppress(queue.Full):
                self._finished.put(_STOP, timeout=0.5)
                return

    def _waiting(self) -> int:
        return self._queue.qsize() + self._rows_put - self._rows_taken

    def _taking(self, n: int) -> None:
        self._finishing = n

    def _finish(self, rec: CallRecord) -> RecordRow | None:
        row = self._finish_row(rec)
        if row is not None and self._finish_hook is not None:
            try:
                self._finish_hook(rec, row)
            except Exception:  # an export's fault must not cost the record
                log.exception("the finish hook failed on record %s", rec.id)
        return row

    def _finish_row(self, rec: CallRecord) -> RecordRow | None:
        row = finish_or_strip(rec, self._pricer, self._store_bodies)
        if row is None:
            self.drop([rec.id])
        return row

    def drop(self, record_ids: list[str]) -> None:
        """Records that could not be finished (a bug if ever): counted, and settled."""
        self.dropped += len(record_ids)
        if self._fallback.on_keep is not None:
            self._fallback.on_keep(record_ids)

    def _hand_over(self, rows: list[RecordRow], newest_end: float) -> None:
        """To the writer; while the database is failing and the writer is full, to the spool."""
        while True:
            failing = self._failing.is_set() or self._aborting.is_set()
            try:
                # (No wait while failing: the queue keeps draining at the finisher's pace.)
                self._finished.put((rows, newest_end), timeout=0.001 if failing else 0.2)
                self._handed_rows += len(rows)
                return
            except queue.Full:
                if failing:
                    self._fallback.keep(rows)
                    return

    def _store_loop(self) -> None:
        if self._db.dialect == "sqlite":
            with contextlib.suppress(Exception):  # (the database may be away at start)
                self._db.defer_checkpoints()  # the checkpointer thread does most of them
        step: Callable[[], bool] = self._backlog.drain_spool  # first the spool left by processes that died
        while True:
            try:
                if not step():
                    return
                step = self._store_next
            except Exception:  # a bug or a storage error nobody expected: the writer must go on
                log.exception("the record writer failed; going on in a second")
                self._backlog.forget_drain()
                time.sleep(1.0)

    def _store_next(self) -> bool:
        """Store what comes next; False when the writer is done."""
        try:
            item = self._finished.get(timeout=1.0)
        except queue.Empty:
            return self._backlog.catch_up()
        if item is _STOP:
            if not self._aborting.is_set():
                self._backlog.catch_up()
            self._fallback.spool_held()
            return False
        rows, newest_end = item
        stored = self._write(rows, newest_end)
        self._done_rows += len(rows)  # stored, or spooled by an aborting stop()
        if not stored:
            return False
        # Under steady traffic the writer is never idle for a second: store the spool and what is
        # held a batch at a time between live batches, rather than waiting for a lull that may never come.
        return self._failing.is_set() or self._backlog.catch_up(batches=1)

    def _write(self, rows: list[RecordRow], newest_end: float, from_spool: bool = False, held: bool = False) -> bool:
        """Store one batch, retrying until it lands; False if stop() gave up (rows spooled)."""
        delay = 0.05
        # Rows of the spool, or held in memory, may be stored already (recording/listeners.py):
        # asked once, before any attempt here stores them (a commit that fails may still land).
        fresh: list[RecordRow] | None = None if from_spool or held else rows
        retry = fresh is None
        lost: list[RecordRow] | None = None  # rows the database refuses even bare (recording/refused.py)
        while True:
            try:
                if fresh is None:
                    fresh = not_stored(self._db, rows)
                if fresh:
                    insert_rows(self._db, fresh, retry=retry)
                break
            except Exception as exc:
                if not is_transient(exc):  # this data, not the database, may be the problem: store what can be
                    self.refused_batches += 1
                    if (lost := store_refused(self._db, rows if fresh is None else fresh, exc)) is not None:
                        self.dropped += len(lost)
                        break  # (None: the database itself failed meanwhile; retried, stored rows skipped)
                # The database is down, busy or full: keep the batch, retry.
                self.failed_batches += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not self._failing.is_set():
                    log.warning("record batch of %d not written yet (%s); retrying", len(rows), self.last_error)
                self._failing.set()
                self._db.reset_connection()
                retry = True
                if self._aborting.is_set():
                    if held:
                        self.held.put_back(rows)
                    elif not from_spool:  # (spooled rows are still in their file)
                        self._fallback.keep(rows)
                    self._spool_everything_left()
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        if self._failing.is_set():
            log.warning("the database takes records again")
        self._failing.clear()
        self.last_error = None
        fresh = rows if fresh is None else fresh  # (None: refused, and stored in halves, before the read)
        if lost:  # refused even bare: not stored, so not heard of as stored (their spend), but settled
            gone = {r["id"] for r in lost}
            rows, fresh = [r for r in rows if r["id"] not in gone], [r for r in fresh if r["id"] not in gone]
            if self._fallback.on_keep is not None:
                self._fallback.on_keep(list(gone))
        self.written += len(fresh)
        self.last_lag_s = max(time.time() - newest_end, 0.0)
        self._listeners.stored(rows, fresh)
        return True

    def _spool_everything_left(self) -> None:
        while True:
            try:
                item = self._finished.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._fallback.keep(item[0])
                self._done_rows += len(item[0])
        self._fallback.spool_held()
