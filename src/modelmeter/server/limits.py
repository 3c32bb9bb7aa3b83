"""Connection limits that uvicorn lacks: header and body read timeouts, and a cap per client address.

uvicorn closes a kept-alive connection after ``timeout_keep_alive`` once a response is sent, but a
connection that never finishes its headers (a slowloris sending them byte by byte, or one that sends
nothing) or stalls in its body is kept for ever: 15,000 such connections were never closed, and at the
file-descriptor limit the gateway, the dashboard and /healthz were all unreachable (issue #18.9).

``LimitedHttpTools`` is uvicorn's httptools protocol with

- a header timeout: the headers of a request must all arrive within ``header_timeout`` seconds of its
  first byte (of the connection's opening, for the first request); else a 408 and the connection closes;
- a body timeout: while a body arrives, a pause longer than ``body_timeout`` closes the connection (the
  handler sees the client hang up, and the call is recorded as such); a pause because the app is not
  reading (flow control) does not count;
- at most ``max_connections_per_client`` open connections per client address; more are answered 503
  and closed at once, so one client cannot take every file descriptor and /healthz stays reachable.

The hot path stays cheap: a request whose headers and body come in one read arms no timer at all; a
timer is armed only when a read ends inside the headers or the body. Limits are per process.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("modelmeter.server")
_IDLE, _HEADERS, _BODY = 0, 1, 2


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # seconds from a request's first byte to the end of its headers
    body_timeout: float = 30.0  # longest pause while a body arrives, seconds
    max_connections_per_client: int = 256  # 0: no cap


def _response(status: bytes, message: bytes) -> bytes:
    body = (
        b'{"error":{"message":"'
        + message
        + b'","type":"'
        + status.split(b" ", 1)[1].lower().replace(b" ", b"_")
        + b'","param":null,"code":null}}'
    )
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


_TOO_MANY = _response(
    b"503 Service Unavailable",
    b"Too many open connections from your address (the server's max_connections_per_client).",
)
_TIMEOUT = _response(b"408 Request Timeout", b"The request's headers took too long to arrive.")


class LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with read timeouts and a per-address connection cap (see module)."""

    limits: ClassVar[Limits] = Limits()
    _open: ClassVar[Counter[str]] = Counter()  # open connections by client address, in this process
    _warned_at: ClassVar[float] = -math.inf

    @classmethod
    def configure(cls, limits: Limits) -> None:
        """Set the limits of this process (before the server starts accepting connections)."""
        cls.limits = limits

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase = _HEADERS
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase = _IDLE
        self._last_read = 0.0
        self._address = self.client[0] if self.client else ""
        cap = self.limits.max_connections_per_client
        if cap and self._open[self._address] >= cap:
            now = self.loop.time()
            if now - LimitedHttpTools._warned_at >= 10.0:  # say so, but not for every connection
                LimitedHttpTools._warned_at = now
                log.warning(
                    "refusing connections from %s: it has %d open (max_connections_per_client)", self._address, cap
                )
            self._address = None  # type: ignore[assignment]  # not counted
            self._phase = _IDLE
            transport.write(_TOO_MANY)
            transport.close()
            return
        self._open[self._address] += 1
        self._arm(_HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._address is not None:
            self._open[self._address] -= 1
            if self._open[self._address] <= 0:
                del self._open[self._address]
            self._address = None  # type: ignore[assignment]
        super().connection_lost(exc)

    # parser callbacks: where in a request the connection is
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEADERS

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = _BODY

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _IDLE

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        phase = self._phase
        if phase == _IDLE:
            if self._timer is not None:
                self._cancel()
        elif self._timer is None or self._timer_phase != phase:
            self._arm(phase)  # the headers' deadline runs from the first byte; the body's from now
        elif phase == _BODY:
            self._last_read = self.loop.time()

    def _arm(self, phase: int) -> None:
        self._cancel()
        self._timer_phase = phase
        self._last_read = self.loop.time()
        limit = self.limits.header_timeout if phase == _HEADERS else self.limits.body_timeout
        if limit > 0:
            self._timer = self.loop.call_later(limit, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_phase = _IDLE

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._phase != self._timer_phase:
            return
        if self._phase == _BODY:
            waited = self.loop.time() - self._last_read
            if waited < self.limits.body_timeout or self.flow.read_paused:
                # data came meanwhile, or the app is not reading yet: not the client's stall
                self._timer = self.loop.call_later(max(self.limits.body_timeout - waited, 0.5), self._expired)
                return
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.write(_TIMEOUT)  # no response under way: say why before closing
        self.transport.close()
