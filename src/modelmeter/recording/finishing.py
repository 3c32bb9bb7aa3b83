"""The finisher process: the recorder process's records decoded, priced and made rows beside it.

In the recorder process (recording/child.py) three threads shared one GIL: the frame reader
(decoding records), the finisher (pricing, JSON) and the writer (rollups, inserts), so its rate was
one over the sum of their costs, ~15,000 records/s on SQLite here. With the reading and finishing in
a process of their own, the recorder process only unpickles finished rows (~3 µs a row) before its
writer takes them, and the two run on two cores.

``python -m modelmeter.recording.finishing FD``, started by ``FinisherProcess``: it reads record and
deployment frames as the gateway sent them (forwarded unread, a burst a write) and answers each
burst with one ``FINISHED`` frame, in order. It ends at the end of its input, after answering all
of it, and ignores SIGINT and SIGTERM, as the recorder process does.

Nothing is lost if it dies: the recorder process keeps each record frame until its row is back,
and finishes what is left itself (``FinisherProcess`` then stays out of the way: the recorder
process carries on as it did before there was one). Records are never finished twice: a burst's
rows come back whole or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from modelmeter.config import Deployment
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import finish_or_strip
from modelmeter.recording import wire
from modelmeter.recording.recorder import Recorder
from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")
_RECORD, _DEPLOYMENT = wire.RECORD[0], wire.DEPLOYMENT[0]


class FinisherProcess:
    """The recorder process's side: record frames out, their rows into ``recorder``'s queue."""

    def __init__(self, recorder: Recorder, finish_here: Callable[[bytes], None], store_bodies: bool) -> None:
        self._recorder = recorder
        self._finish_here = finish_here  # a record frame's payload, to the recorder process's own finisher
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "modelmeter.recording.finishing", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._sock = ours
        # Record frames sent and not answered yet, oldest first: appended by the sender, taken by
        # the reader (deque operations are atomic), which finishes what is left once it has read
        # every answer. The lock orders a send against the reader's finding the process gone.
        self._waiting: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._alive = True
        self._sock.sendall(wire.frame(wire.CONFIG, (store_bodies, logging.getLogger().getEffectiveLevel())))
        self._reader = threading.Thread(target=self._read, name="modelmeter-finished", daemon=True)
        self._reader.start()

    def send(self, frames: list[bytes]) -> None:
        """Record and deployment frames, in order, to be finished there (or, once the process is
        gone, the records here)."""
        with self._lock:
            alive = self._alive
            if alive:
                self._waiting.extend(f for f in frames if f[4] == _RECORD)  # (before they can be answered)
        if not alive:
            for raw in frames:
                if raw[4] == _RECORD:
                    self._finish_here(wire.payload(raw))
            return
        with contextlib.suppress(OSError):  # it is gone: the reader, at the end of its answers, finishes these here
            self._sock.sendall(b"".join(frames))

    def close(self, timeout: float) -> None:
        """No more records: wait until every record sent is back (or finished here) and the process has ended."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        self._reader.join(timeout)
        if self._reader.is_alive():  # it hangs: its records are finished here instead
            self._proc.kill()
            self._reader.join()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._sock.close()

    def _read(self) -> None:
        frames = wire.FrameSocket(self._sock)
        try:
            while (got := frames.frames()) is not None:
                for raw in got:
                    consumed, rows, newest_end, lost, dropped = wire.payload(raw)
                    for _ in range(consumed):
                        self._waiting.popleft()
                    if rows:
                        self._recorder.put_finished(rows, newest_end)
                    for record_id, why in lost:
                        self._recorder.lose(record_id, why)
                    if dropped:
                        self._recorder.drop(dropped)
        except Exception:  # a broken answer: what was not answered is finished here
            log.exception("the finisher process's answer could not be read")
            self._proc.kill()
        code = self._proc.wait()
        self._gone(f"it exited with {code}")

    def _gone(self, why: str) -> None:
        """Every answer read: what the process did not answer is finished here, and from now on all."""
        with self._lock:
            self._alive = False
        if self._waiting:
            log.warning("the finisher process stopped (%s); finishing its %d records here", why, len(self._waiting))
        while True:
            try:
                raw = self._waiting.popleft()
            except IndexError:
                return
            self._finish_here(wire.payload(raw))


def finish_frames(
    got: list[bytes], deployments: dict[int, Deployment], pricer: Pricer, store_bodies: bool
) -> tuple[int, list[RecordRow], float, list[tuple[str, str]], list[str]]:
    """One burst of frames: (records consumed, their rows, the newest end, lost, dropped)."""
    rows: list[RecordRow] = []
    lost: list[tuple[str, str]] = []
    dropped: list[str] = []
    consumed, newest_end = 0, 0.0
    for raw in got:
        if raw[4] == _DEPLOYMENT:
            index, dep = wire.payload(raw)
            deployments[index] = dep
        elif raw[4] == _RECORD:
            consumed += 1
            body = wire.payload(raw)
            try:
                rec = wire.decode_record(body, deployments)
            except Exception as exc:
                lost.append(wire.undecodable(body, exc))
                continue
            row = finish_or_strip(rec, pricer, store_bodies)
            if row is None:
                dropped.append(rec.id)
            else:
                rows.append(row)
                newest_end = max(newest_end, rec.end)
    return consumed, rows, newest_end, lost, dropped


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    frames = wire.FrameSocket(sock)
    first = frames.one()
    if first is None or first[4:5] != wire.CONFIG:
        return 2
    store_bodies, level = wire.payload(first)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s[finisher]: %(message)s")
    deployments: dict[int, Deployment] = {}
    pricer = Pricer()
    try:
        while (got := frames.frames()) is not None:
            answer: Any = finish_frames(got, deployments, pricer, store_bodies)
            if answer[0]:
                sock.sendall(wire.frame(wire.FINISHED, answer))
    except OSError:  # the recorder process is gone (killed): it has nobody to answer
        return 1
    sock.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
