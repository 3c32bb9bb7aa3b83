"""``serve --workers N`` on Linux: each worker listens on a socket of its own (SO_REUSEPORT).

With one listening socket shared by the workers, whichever worker's event loop wakes first accepts
the connection, and a busy worker's loop wakes first more often than not: two workers did only
1.35-1.42x one worker on JSON (benchmarks/overhead.py, 64 keep-alive connections). With a socket
per worker in one SO_REUSEPORT group, the kernel hashes each new connection to one worker's socket:
the connections, and so the load, are split evenly.

The supervisor keeps a socket bound to the port (never listening, so no connection is handed to
it) that reserves the port while workers come and go. Each worker's socket is made in the worker
when uvicorn's spawn unpickles it (``ReusePortSocket.__reduce__``), bound there, and asyncio puts
it in listen state once the worker's app has started: a worker that is still starting is not
handed connections. Only the supervisor's user can join the group (the kernel's rule).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

BACKLOG = 2048


def available() -> bool:
    """The kernel balances SO_REUSEPORT listeners on Linux (elsewhere the option only shares)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class ReusePortSocket(socket.socket):
    """The supervisor's bound, never-listening socket; pickled into each worker as a new socket
    bound to the same address in the same SO_REUSEPORT group."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (worker_socket, (self.family, self.getsockname()))


def _bound(family: int, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def worker_socket(family: int, address: tuple[Any, ...]) -> socket.socket:
    """In a worker: its own socket on the supervisor's address (uvicorn's server listens on it)."""
    return _bound(family, address)


def reserve(probe: socket.socket) -> ReusePortSocket:
    """Turn the supervisor's probe socket (bound without SO_REUSEPORT, so a port in use by anyone,
    another modelmeter included, failed to bind) into the port's reserving socket. The probe is
    closed and the port bound again at once (OSError if another process took it in between)."""
    family, address = probe.family, probe.getsockname()
    probe.close()
    sock = ReusePortSocket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock
