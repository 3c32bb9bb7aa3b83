"""The recorder process's wire: length-prefixed frames over a socket, and a CallRecord as bytes.

A frame is a 4-byte big-endian length, one byte of kind, then a pickle. A record is encoded once
on the request path, so the encoding is the cheap one: the dataclass's fields as a flat list, its
``Usage`` as a tuple and its ``Deployment`` as a small integer (the deployment itself goes once, in
a frame of its own). Pickling the dataclass whole took 15-28 µs a record here, most of it the
deployment's config; this takes ~4 µs.

A record frame carries the record's id ahead of its pickle (2-byte length, then the id's bytes), so
the recorder process can name, and settle as lost, a record whose pickle it cannot decode (a
malformed frame, or a gateway and a recorder process of different versions) rather than die on it:
the gateway would replay the same frame to the next process, and that would die too.
"""

from __future__ import annotations

import dataclasses
import operator
import pickle
import socket
import struct
from collections.abc import Callable
from typing import IO, Any

from modelmeter.config import Deployment
from modelmeter.metering.record import CallRecord
from modelmeter.metering.usage import Usage

# Parent to child
CONFIG = b"C"  # the child's configuration (first frame)
DEPLOYMENT = b"D"  # (index, Deployment): what later records' index stands for
RECORD = b"R"  # a record, new
REPLAY = b"P"  # a record a dead recorder process had not settled: stored as if from the spool
REPLAYED = b"E"  # the replays are all sent (without it they would wait for the next record)
LIVE = b"L"  # the deployments someone watches live (their stored rows come back whole)
STOP = b"S"  # store everything, then exit
# Child to parent
SETTLED = b"A"  # (ids, slim rows, live rows, fresh): records stored, spooled, dropped or lost
STATUS = b"T"  # the child recorder's backlog and counters
# Finisher process to recorder process (recording/finishing.py)
FINISHED = b"F"  # (records consumed, rows, their newest end, [(id, why) lost], [ids dropped])

_HEADER = struct.Struct(">IB")
_ID = struct.Struct(">H")
_RECORDS = (RECORD[0], REPLAY[0])  # kinds whose payload is read by record_id and decode_record
_FIELDS = [f.name for f in dataclasses.fields(CallRecord)]
_get_fields = operator.attrgetter(*_FIELDS)
_DEP = _FIELDS.index("deployment")
_USAGE = _FIELDS.index("usage")
_get_usage = operator.attrgetter(*(f.name for f in dataclasses.fields(Usage)))
_dumps = pickle.dumps


def frame(kind: bytes, payload: Any) -> bytes:
    data = _dumps(payload, 5)
    return _HEADER.pack(len(data), kind[0]) + data


def encode_record(rec: CallRecord, deployment_index: int, kind: bytes = RECORD) -> bytes:
    values = list(_get_fields(rec))
    values[_DEP] = deployment_index
    values[_USAGE] = _get_usage(rec.usage)
    data = _dumps(values, 5)
    rid = rec.id.encode()
    return _HEADER.pack(_ID.size + len(rid) + len(data), kind[0]) + _ID.pack(len(rid)) + rid + data


def record_id(body: bytes) -> str:
    """The id of a record frame's payload; never raises (a mangled one is still a string)."""
    n = _ID.unpack_from(body)[0] if len(body) >= _ID.size else 0
    return body[_ID.size : _ID.size + n].decode("utf-8", "replace")


def undecodable(body: bytes, exc: Exception) -> tuple[str, str]:
    """A record frame that ``decode_record`` refused: its id, and why it is lost (the exception's
    type only: its text may quote the payload)."""
    return record_id(body), f"its frame cannot be decoded ({type(exc).__name__})"


def decode_record(body: bytes, deployments: dict[int, Deployment]) -> CallRecord:
    """The record of a record frame's payload; raises if the payload is not one (see record_id)."""
    values = pickle.loads(body[_ID.size + _ID.unpack_from(body)[0] :])
    values[_DEP] = deployments[values[_DEP]]
    values[_USAGE] = Usage(*values[_USAGE])
    return CallRecord(*values)


def read_frame(stream: IO[bytes]) -> tuple[bytes, Any] | None:
    """The next frame as (kind, payload), or None at the end of the stream (the peer is gone). A
    record's payload is left as bytes, for record_id and decode_record."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size, kind = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return bytes((kind,)), data if kind in _RECORDS else pickle.loads(data)


class FrameSocket:
    """Frames off a blocking socket, a ``recv`` at a time: ``frames`` returns every whole frame that
    has arrived (so a reader can pass a burst on in one write), as its raw bytes (``payload`` reads one)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._ready: list[bytes] = []  # received, not returned yet (after ``one``)

    def one(self) -> bytes | None:
        """The next frame alone; None at the end of the stream."""
        got = self.frames()
        if got is None:
            return None
        self._ready = got[1:]
        return got[0]

    def frames(self) -> list[bytes] | None:
        """The whole frames received so far (waiting for one at least); None at the end of the stream."""
        if self._ready:
            out, self._ready = self._ready, []
            return out
        buf = self._buf
        while True:
            out, pos = [], 0
            while len(buf) - pos >= _HEADER.size:
                end = pos + _HEADER.size + _HEADER.unpack_from(buf, pos)[0]
                if end > len(buf):
                    break
                out.append(bytes(buf[pos:end]))
                pos = end
            del buf[:pos]
            if out:
                return out
            data = self._sock.recv(1 << 20)
            if not data:
                return None
            buf += data


def payload(frame_bytes: bytes) -> Any:
    body = frame_bytes[_HEADER.size :]
    return body if frame_bytes[4] in _RECORDS else pickle.loads(body)


def replayed(frame_bytes: bytes) -> bytes:
    """The same record frame, marked as a replay."""
    return frame_bytes[:4] + REPLAY + frame_bytes[5:]


class DeploymentTable:
    """Deployments by the small integer records carry. A deployment object is kept for as long as
    the table lives, so its ``id()`` is never reused by another (config changes make new ones)."""

    def __init__(self) -> None:
        self._index: dict[int, tuple[int, Deployment]] = {}

    def index(self, dep: Deployment, announce: Callable[[bytes], None]) -> int:
        known = self._index.get(id(dep))
        if known is not None:
            return known[0]
        n = len(self._index)
        self._index[id(dep)] = (n, dep)
        announce(frame(DEPLOYMENT, (n, dep)))
        return n

    def by_index(self) -> dict[int, Deployment]:
        return dict(self._index.values())

    def frames(self) -> list[bytes]:
        """Every deployment's frame, for a new recorder process."""
        return [frame(DEPLOYMENT, (n, dep)) for n, dep in self._index.values()]
