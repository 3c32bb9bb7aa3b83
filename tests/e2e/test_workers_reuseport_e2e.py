"""``modelmeter serve --workers 2`` on Linux: each worker accepts on a listening socket of its own
(SO_REUSEPORT, so the kernel spreads connections), the supervisor listens on none, and a second
server on the same port is still refused instead of silently sharing it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, wait_for

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's"),
]


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets in LISTEN state on ``port`` (IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
            found.add(fields[9])
    return found


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_each_worker_listens_on_its_own_socket(make_config: Any, start_server: Any, tmp_path: Path) -> None:
    config = make_config(deployments=[], database=f"sqlite:///{tmp_path}/mm.db")
    server = start_server(config, args=("--workers", "2"))
    wait_for(lambda: server.stderr.count("Application startup complete.") >= 2, timeout=60, message="both workers")
    listening = _listening_inodes(server.port)
    assert len(listening) == 2, listening  # one listening socket per worker, not one shared
    owners = {kid: _socket_inodes(kid) & listening for kid in _children(server.proc.pid)}
    assert sorted(len(v) for v in owners.values() if v) == [1, 1], owners  # each its own
    assert not _socket_inodes(server.proc.pid) & listening  # the supervisor's socket only holds the port

    # A second server on the port is refused (it would otherwise join the group and share it).
    done = run_cli("serve", "--config", str(config), "--port", str(server.port), "--workers", "2", timeout=30)
    assert done.returncode == 2, done.stderr
    assert "in use" in done.stderr

    assert server.stop() == 0, server.stderr[-3000:]
    assert server.stderr.count("Application shutdown complete.") == 2, server.stderr[-3000:]
