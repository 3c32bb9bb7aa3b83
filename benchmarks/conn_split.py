"""How a server's open client connections are split over its worker processes (Linux /proc).

For benchmarks/overhead.py's ``--workers 2`` runs: the split is what the listening sockets decide
(one shared socket: whichever worker wakes first accepts; SO_REUSEPORT: the kernel hashes each
connection to a worker), and unlike requests/s it does not depend on what else the machine runs.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _established_inodes(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:  # ESTABLISHED, server side
                found.add(f[9])
    return found


def _socket_inodes(pid: int) -> set[str]:
    out: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def split(port: int, pids: list[int]) -> list[int]:
    """Client connections to ``port`` held by each of ``pids``, largest first (zeros left out)."""
    conns = _established_inodes(port)
    counts = [len(_socket_inodes(pid) & conns) for pid in pids]
    return sorted((c for c in counts if c), reverse=True)


def sample_later(delay: float, port: int, pids: list[int]) -> tuple[threading.Timer, list[list[int]]]:
    """Take ``split`` once, ``delay`` seconds from now, in a timer thread; the result lands in the list."""
    out: list[list[int]] = []
    timer = threading.Timer(delay, lambda: out.append(split(port, pids)))
    timer.daemon = True
    timer.start()
    return timer, out
