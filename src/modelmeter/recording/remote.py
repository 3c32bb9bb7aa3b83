"""The gateway's side of the recorder process (recording/child.py).

Pricing, serialising and storing records used to run in threads of the gateway's own process, and
so competed with the event loop for the GIL and, on a core shared with it, for the CPU: a batch of
a few milliseconds delayed whatever request arrived meanwhile (the p99 at concurrency 1). Now the
request path encodes each record once (recording/wire.py, ~4 µs) and the event loop writes the
turn's records to a socket in one send; a process of its own does the rest, in the idle CPU class
while it keeps up (recording/priority.py).

Nothing is lost when that process dies: the gateway keeps each record's bytes until the process
says it is settled (stored, or in its spool), starts another and replays what was not settled
(the new one stores replays the way it stores a spool, skipping any already stored). At shutdown
whatever the process did not settle is stored by an in-process ``Recorder`` before the gateway
exits. Back-pressure is as before: past the in-process recorder's capacity ``submit`` waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any, cast

from modelmeter.metering.record import CallRecord
from modelmeter.recording import priority, wire
from modelmeter.recording.child import SLIM_KEYS, ChildConfig
from modelmeter.recording.listeners import Listener
from modelmeter.recording.recorder import Recorder
from modelmeter.recording.sink import submit_when_room
from modelmeter.storage.database import Database
from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")

# Unsettled records past which an idle-class recorder is moved to the normal class, and below which
# it goes back (~0.8 s and ~0.1 s of calls at 2,500/s; a batch is whatever arrived in 20 ms). It is
# also moved when a record has waited STALLED_S: any busy process starves an idle-class task, and
# at a few calls a second next to an embedded model that keeps every core busy, or a browser, the
# count alone would take minutes to rise.
BOOST_ABOVE = 2000
IDLE_BELOW = 200
STALLED_S = 0.25
# How long a replayed record may still be reported as found stored (and counted, see _settled): a
# replay waits in the new process's spool for as long as the database is away.
OWED_S = 86400.0
_SOCKET_BUFFER = 4 << 20


class RemoteRecorder:
    def __init__(self, config: ChildConfig, *, idle: bool | None = None) -> None:
        self._config = config
        # As many as the in-process recorder takes before it slows the gateway down: its queue, the
        # batch being finished, four finished batches and the one being written. Fewer, and a
        # failing database would hold them all in the process's pipeline, none reaching its spool.
        self._maxsize = config.queue_size + 6 * config.batch_size
        self._idle = priority.can_switch() if idle is None else idle
        self._unsettled: dict[str, bytes] = {}  # record id -> its frame, in arrival order
        # Replayed records the listeners have not seen (id -> when replayed): a process that died
        # may have stored one without reporting it, and then its next one finds it stored.
        self._owed: dict[str, float] = {}
        self._pending: list[bytes] = []  # frames of this loop turn
        self._out = bytearray()  # frames the socket has not taken yet
        self._flush_soon = False
        self._writing = False  # the loop watches the socket for room
        self._deployments = wire.DeploymentTable()
        self._live: list[str] = []
        self._listeners: list[tuple[Listener, bool]] = []
        self._status: dict[str, Any] = {}
        self._written_before = 0  # by recorder processes that have exited
        self._boosted = False
        self._boost_lock = threading.Lock()
        self._oldest: str | None = None  # the oldest unsettled record at the stall watch's last look
        self._oldest_since = 0.0  # since when it has been the oldest (monotonic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._stopping = False
        self._restarts: list[float] = []
        self.restarted = 0

    # -- the request path ------------------------------------------------------------------
    def submit_nowait(self, rec: CallRecord) -> bool:
        if len(self._unsettled) >= self._maxsize:
            return False
        index = self._deployments.index(rec.deployment, self._pending.append)
        try:
            data = wire.encode_record(rec, index)
        except Exception:  # e.g. a body nested too deep to pickle (RecursionError): keep the call
            data = _encode_stripped(rec, index)
        self._unsettled[rec.id] = data
        self._queue(data)
        if self._idle and not self._boosted and len(self._unsettled) > BOOST_ABOVE:
            self._set_boost(True)
        return True

    async def submit(self, rec: CallRecord) -> None:
        """Queue a record; when too many wait, wait for room (back-pressure, no loss)."""
        await submit_when_room(self.submit_nowait, rec)

    def _queue(self, frame: bytes) -> None:
        """Out with this loop turn's other frames, in one write at the end of the turn."""
        self._pending.append(frame)
        if not self._flush_soon:
            self._flush_soon = True
            cast(asyncio.AbstractEventLoop, self._loop).call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if self._pending:
            self._out += b"".join(self._pending)
            self._pending.clear()
        self._send()

    def _send(self) -> None:
        sock = self._sock
        if sock is None or not self._out:
            return
        try:
            sent = sock.send(self._out)
        except BlockingIOError:
            sent = 0
        except OSError:  # the process is gone: its reader restarts it and replays
            self._out.clear()
            sent = 0
        del self._out[:sent]
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        if self._out and not self._writing:
            loop.add_writer(sock.fileno(), self._send)
            self._writing = True
        elif not self._out and self._writing:
            loop.remove_writer(sock.fileno())
            self._writing = False

    # -- what the API and /metrics read ----------------------------------------------------
    @property
    def depth(self) -> int:
        """Records not settled yet (queued, being stored, or in flight to the recorder process),
        plus what the recorder holds in memory because neither the database nor its spool takes it."""
        return len(self._unsettled) + self.backlog["held_in_memory"]

    @property
    def written(self) -> int:
        return self._written_before + int(self._status.get("written", 0))

    @property
    def failed_batches(self) -> int:
        return int(self._status.get("failed_batches", 0))

    @property
    def last_lag_s(self) -> float:
        return float(self._status.get("last_lag_s", 0.0))

    @property
    def lost(self) -> int:
        return int(self.backlog["lost"])

    @property
    def problem(self) -> str | None:
        if not self._stopping and (self._proc is None or self._proc.poll() is not None):
            return f"the recorder process is not running; {len(self._unsettled)} records wait in memory"
        return cast(str | None, self._status.get("problem"))

    @property
    def backlog(self) -> dict[str, Any]:
        child = self._status.get("backlog") or {}
        return {
            "queued": len(self._unsettled),
            "spooled": child.get("spooled", 0),
            "database_failing": child.get("database_failing", False),
            "held_in_memory": child.get("held_in_memory", 0),
            "spool_failing": child.get("spool_failing", False),
            "lost": child.get("lost", 0),
            "last_error": child.get("last_error"),
        }

    def add_listener(self, listener: Listener, *, whole: bool = False) -> None:
        """Called in a reader thread with each stored batch: rows with the columns in
        ``child.SLIM_KEYS``, or, with ``whole``, the whole rows (no bodies) of the deployments
        named by ``watch``."""
        self._listeners.append((listener, whole))

    def watch(self, deployments: list[str]) -> None:
        """The deployments whose stored rows come back whole (Live mode's subscribers). Loop only."""
        self._live = sorted(deployments)
        self._queue(wire.frame(wire.LIVE, self._live))

    # -- the process -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the recorder process; call on the event loop."""
        self._loop = asyncio.get_running_loop()
        self._spawn()
        self._send()
        if self._idle:
            self._loop.call_later(STALLED_S / 4, self._watch_stall)

    def _watch_stall(self) -> None:
        """Boost the recorder when one record has waited STALLED_S (loop only)."""
        if self._stopping:
            return
        oldest, now = next(iter(self._unsettled), None), time.monotonic()
        if oldest is None or oldest != self._oldest:
            self._oldest, self._oldest_since = oldest, now
        elif not self._boosted and now - self._oldest_since > STALLED_S:
            self._set_boost(True)
        cast(asyncio.AbstractEventLoop, self._loop).call_later(STALLED_S / 4, self._watch_stall)

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        settled_ours, settled_theirs = socket.socketpair()
        for s in (ours, theirs, settled_ours, settled_theirs):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        fds = (theirs.fileno(), settled_theirs.fileno())
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelmeter.recording.child", *map(str, fds)], pass_fds=fds, stdin=subprocess.DEVNULL
        )
        theirs.close()
        settled_theirs.close()
        ours.setblocking(False)
        self._proc, self._sock, self._writing = proc, ours, False
        self._boosted = False
        if self._idle:  # now, while it has one thread: those it starts inherit the class
            priority.set_idle(proc.pid, True)
        self._out = bytearray(wire.frame(wire.CONFIG, self._config))
        self._out += b"".join(self._deployments.frames())
        if self._live:
            self._out += wire.frame(wire.LIVE, self._live)
        stream = settled_ours.makefile("rb", buffering=1 << 20)
        self._reader = threading.Thread(
            target=self._read, args=(stream, settled_ours, proc), name="modelmeter-settled", daemon=True
        )
        self._reader.start()

    def _read(self, stream: IO[bytes], sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        while (item := wire.read_frame(stream)) is not None:
            kind, payload = item
            if kind == wire.SETTLED:
                self._settled(*payload)
            elif kind == wire.STATUS:
                self._status = payload
        stream.close()
        sock.close()
        code = proc.wait()
        if not self._stopping and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: stop() stores the rest
                self._loop.call_soon_threadsafe(self._restart, proc, code)

    def _settled(self, ids: list[str], slim: list[tuple[Any, ...]], whole: list[RecordRow], fresh: bool) -> None:
        """Records settled; those stored reach the listeners once: when stored (``fresh``), or, if
        found stored already, when replayed here and so never reported (recording/listeners.py)."""
        pop = self._unsettled.pop
        for record_id in ids:
            pop(record_id, None)
        if self._boosted and len(self._unsettled) < IDLE_BELOW:
            self._set_boost(False)
        if self._owed:
            owed = self._owed
            counted = {t[0] for t in slim if owed.pop(t[0], None) is not None}  # (SLIM_KEYS[0]: the id)
            if not fresh:
                slim = [t for t in slim if t[0] in counted]
                whole = [r for r in whole if r["id"] in counted]
        elif not fresh:
            return
        rows = cast(list[RecordRow], [dict(zip(SLIM_KEYS, t, strict=True)) for t in slim])
        for listener, wants_whole in self._listeners:
            batch = whole if wants_whole else rows
            if not batch:
                continue
            try:
                listener(batch)
            except Exception:  # a listener's fault must not stop the settling
                log.exception("record listener failed")

    def _set_boost(self, on: bool) -> None:
        with self._boost_lock:
            proc = self._proc
            if self._boosted == on or proc is None:
                return
            self._boosted = on
            priority.set_idle(proc.pid, not on)

    def _restart(self, old: subprocess.Popen[bytes], code: int) -> None:
        if self._stopping or old is not self._proc:
            return
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60] + [now]
        if len(self._restarts) > 5:  # dying at once, again and again: wait rather than spin
            log.error("the recorder process keeps exiting; trying again in 5 s")
            cast(asyncio.AbstractEventLoop, self._loop).call_later(5, self._respawn, old, code)
            return
        self._respawn(old, code)

    def _respawn(self, old: subprocess.Popen[bytes], code: int) -> None:
        if self._stopping or old is not self._proc:
            return
        log.error(
            "the recorder process exited (code %s); starting another and replaying %d records it had not settled",
            code,
            len(self._unsettled),
        )
        if self._sock is not None:
            if self._writing:
                cast(asyncio.AbstractEventLoop, self._loop).remove_writer(self._sock.fileno())
            self._sock.close()
        self._written_before += int(self._status.get("written", 0))
        self._status = {}
        now = time.monotonic()
        self._owed = {k: t for k, t in self._owed.items() if now - t < OWED_S} | dict.fromkeys(self._unsettled, now)
        self.restarted += 1
        self._spawn()
        self._pending.clear()  # (records in it are among the unsettled; deployments are re-sent)
        self._out += b"".join(map(wire.replayed, list(self._unsettled.values())))
        self._out += wire.frame(wire.REPLAYED, None)
        self._send()

    def stop(self, timeout: float = 30.0) -> None:
        """Hand over everything and let the process store it and exit (it waits up to ``timeout``
        for a database that is away, then spools, as the in-process recorder does); what it did
        not settle is stored here. Call from a thread other than the loop's (the app does)."""
        if self._proc is None or self._stopping:
            return
        self._stopping = True
        proc = self._proc
        sent = threading.Event()

        def send_stop() -> None:
            self._pending.append(wire.frame(wire.STOP, timeout))
            self._flush()
            sent.set()

        try:
            cast(asyncio.AbstractEventLoop, self._loop).call_soon_threadsafe(send_stop)
            sent.wait(5.0)
        except RuntimeError:  # the loop is closed
            pass
        if self._idle:
            priority.set_idle(proc.pid, False)  # finish at the normal priority
        try:
            proc.wait(timeout + min(timeout, 15.0))  # its own wait for the database, then its spooling
        except subprocess.TimeoutExpired:
            log.error("the recorder process did not finish; storing the rest here")
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(5.0)
        self._store_here()

    def _store_here(self) -> None:
        """What no recorder process settled, stored by one in this process (or its spool)."""
        if not self._unsettled:
            return
        deployments = self._deployments.by_index()
        frames = list(self._unsettled.values())  # (a reader that did not end may still pop)
        records: list[CallRecord] = []
        for body in map(wire.payload, frames):
            try:
                records.append(wire.decode_record(body, deployments))
            except Exception as exc:  # (a frame the recorder process never read, or died reading)
                log.error("record %s lost: its frame cannot be decoded (%s)", wire.record_id(body), type(exc).__name__)
        log.warning("storing %d records the recorder process did not settle", len(records))
        c = self._config
        recorder = Recorder(
            Database(c.database), maxsize=c.queue_size, batch_size=c.batch_size, store_bodies=c.store_bodies
        )
        # None of these was reported: each reaches the listeners once, whether stored here or found
        # stored by the process that hung (its spend went into the database with it: storage.spend).
        # Not Live mode's, which needs the event loop, closed by now.
        counted = [listener for listener, wants_whole in self._listeners if not wants_whole]
        for listener in counted:
            recorder.add_listener(listener)

        def found_stored(rows: list[RecordRow]) -> None:
            for listener in counted:
                listener(rows)

        recorder.on_found_stored(found_stored)
        recorder.start()
        recorder.replay(records)  # as a spool: any the process stored after all are skipped
        recorder.stop(timeout=5.0)  # (the process has waited for the database already)
        self._unsettled.clear()


def _encode_stripped(rec: CallRecord, index: int) -> bytes:
    """The record with what failed to encode dropped, as the in-process finisher does with what
    fails to serialise: the bodies first, then the metadata (the call's facts are always kept)."""
    log.warning("record %s: its bodies cannot be encoded (nested too deep?); stored without them", rec.id)
    rec.request_body = rec.response_body = rec.upstream_request = rec.upstream_response = None
    rec.response_text = None
    try:
        return wire.encode_record(rec, index)
    except Exception:
        rec.metadata = None
        rec.attempts = None
        return wire.encode_record(rec, index)
