"""The recorder process: the gateway's records priced and stored beside it, not in it.

``python -m modelmeter.recording.child IN_FD OUT_FD``, started by ``RemoteRecorder``. It reads
frames (recording/wire.py) from IN_FD, runs the same ``Recorder`` the gateway runs in-process
(finisher and writer threads, spool, fallback), and tells the gateway on OUT_FD which records are
settled: stored (with the few columns the gateway's listeners need), or spooled, or lost. Until
then the gateway keeps each record's bytes, and replays them to a new recorder process if this
one dies.

It ignores SIGINT and SIGTERM: it ends when the gateway says STOP or goes away (end of stream),
after storing everything it was given, so a Ctrl-C or a SIGTERM to the process group never cuts
a batch in half.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from modelmeter.config import Deployment
from modelmeter.metering.record import CallRecord
from modelmeter.otel.settings import OtelSettings
from modelmeter.recording import wire
from modelmeter.recording.finishing import FinisherProcess
from modelmeter.recording.recorder import Recorder
from modelmeter.storage import maintenance
from modelmeter.storage.database import Database
from modelmeter.storage.retention import Retention
from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")

# What the gateway's listeners read of a stored row (api/metrics.py, auth/keys.py, budgets/users.py).
SLIM_KEYS = (
    "id",
    "deployment",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "spend_pusd",
    "latency_ms",
    "ttft_ms",
    "key_alias",
    "metadata",
)
_BODIES = ("request", "response", "upstream_request", "upstream_response")


@dataclass(frozen=True)
class ChildConfig:
    database: str
    queue_size: int = 20_000
    batch_size: int = 2000
    store_bodies: bool = True
    log_level: int = logging.INFO
    otel: OtelSettings = field(default_factory=OtelSettings)
    retention: Retention = field(default_factory=Retention)
    prune_interval_s: float = 300.0
    finisher_process: bool = True  # records decoded and finished in a process of their own (finishing.py)


class _Outbox:
    """Frames to the gateway, from the writer, finisher and status threads (one at a time)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.gone = False

    def send(self, kind: bytes, payload: Any) -> None:
        data = wire.frame(kind, payload)
        with self._lock:
            if self.gone:
                return
            try:
                self._sock.sendall(data)
            except OSError:  # the gateway is gone: keep storing what we have, tell nobody
                self.gone = True


class _Child:
    def __init__(self, config: ChildConfig, outbox: _Outbox) -> None:
        self.config = config
        self.db = Database(config.database)
        self.recorder = Recorder(
            self.db,
            maxsize=config.queue_size,
            batch_size=config.batch_size,
            store_bodies=config.store_bodies,
        )
        self.otel = None
        if config.otel.enabled:
            from modelmeter.otel.export import OtelExport

            self.otel = OtelExport(config.otel)
            self.recorder.on_finish(self.otel.observe)
        self._outbox = outbox
        self._live: frozenset[str] = frozenset()
        self.deployments: dict[int, Deployment] = {}
        self.recorder.add_listener(self._stored)
        self.recorder.on_found_stored(lambda rows: self._stored(rows, fresh=False))
        self.recorder.on_settled(lambda ids: outbox.send(wire.SETTLED, (ids, [], [], True)))
        self._status_stop = threading.Event()

    def _stored(self, rows: list[RecordRow], fresh: bool = True) -> None:
        """Rows stored: ``fresh`` by this process, else found stored already (the gateway counts
        those only if it replayed them: the process that stored them died before reporting them)."""
        slim = [tuple(r.get(k) for k in SLIM_KEYS) for r in rows]
        live = self._live
        whole = [{k: v for k, v in r.items() if k not in _BODIES} for r in rows if r["deployment"] in live]
        self._outbox.send(wire.SETTLED, ([r["id"] for r in rows], slim, whole, fresh))
        self._send_status()

    def _send_status(self) -> None:
        r = self.recorder
        self._outbox.send(
            wire.STATUS,
            {
                "backlog": r.backlog,
                "written": r.written,
                "failed_batches": r.failed_batches,
                "last_lag_s": r.last_lag_s,
                "problem": r.problem,
            },
        )

    def _report(self) -> None:
        while not self._status_stop.wait(0.5):
            self._send_status()

    def _decode(self, body: bytes) -> CallRecord | None:
        """The record, or None if it cannot be decoded: then it is lost, not this process (dying,
        it would be started again and given the same frame, again and again)."""
        try:
            return wire.decode_record(body, self.deployments)
        except Exception as exc:
            self.recorder.lose(*wire.undecodable(body, exc))
            return None

    def _put(self, body: bytes) -> None:
        """A record frame's payload, for this process's finisher thread."""
        if (rec := self._decode(body)) is not None:
            self.recorder.put(rec)

    def _start_finisher(self) -> FinisherProcess | None:
        """The finisher process, unless spans are exported (the export reads each record as it is
        finished, here) or it cannot be started (then this process finishes records itself)."""
        if not self.config.finisher_process or self.otel is not None:
            return None
        try:
            return FinisherProcess(self.recorder, self._put, self.config.store_bodies)
        except OSError as exc:
            log.warning("no finisher process (%s): records are finished in the recorder process", exc)
            return None

    def run(self, frames: wire.FrameSocket) -> None:
        self.recorder.start()
        upkeep = maintenance.start(self.db, self.config.retention, self.config.prune_interval_s)
        threading.Thread(target=self._report, name="modelmeter-status", daemon=True).start()
        finisher = self._start_finisher()
        replays: list[CallRecord] = []
        stop_timeout = 30.0
        stopping = False
        while not stopping and (got := frames.frames()) is not None:
            onward: list[bytes] = []  # this burst's record and deployment frames, for the finisher process
            for raw in got:
                kind = raw[4:5]
                if replays and (kind != wire.REPLAY or len(replays) >= 1000):  # (the gateway ends them with REPLAYED)
                    self.recorder.replay(replays)
                    replays = []
                if kind == wire.RECORD:
                    if finisher is not None:
                        onward.append(raw)
                    else:
                        self._put(wire.payload(raw))
                    continue
                payload = wire.payload(raw)
                if kind == wire.REPLAY:
                    if (rec := self._decode(payload)) is not None:
                        replays.append(rec)
                elif kind == wire.DEPLOYMENT:
                    self.deployments[payload[0]] = payload[1]
                    onward.append(raw)
                elif kind == wire.LIVE:
                    self._live = frozenset(payload)
                elif kind == wire.STOP:
                    stop_timeout = payload
                    stopping = True
                    break
            if onward and finisher is not None:
                finisher.send(onward)
        if replays:
            self.recorder.replay(replays)
        if finisher is not None:
            finisher.close(stop_timeout)
        upkeep.set()
        self.recorder.stop(stop_timeout)
        if self.otel is not None:
            self.otel.shutdown()  # after the recorder: every record's span is out
        self._status_stop.set()
        self._send_status()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    inbound = socket.socket(fileno=int(argv[0]))
    outbound = socket.socket(fileno=int(argv[1]))
    frames = wire.FrameSocket(inbound)
    first = frames.one()
    if first is None or first[4:5] != wire.CONFIG:
        return 2
    config: ChildConfig = wire.payload(first)
    logging.basicConfig(level=config.log_level, format="%(levelname)s %(name)s[recorder]: %(message)s")
    outbox = _Outbox(outbound)
    _Child(config, outbox).run(frames)
    outbound.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
