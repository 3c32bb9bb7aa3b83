"""Connection limits of the real server (issue #18.9): header and body read timeouts, a cap on open
connections per client address, and /healthz reachable while one client hogs connections."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.helpers import ROOT, ServerProcess, http_json, wait_for


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> tuple[float, bytes]:
    """Read (sending ``trickle`` a byte every 0.25 s meanwhile) until the server closes the
    connection; returns when that happened (seconds) and what it sent. Fails past ``seconds``."""
    began = time.monotonic()
    got = b""
    sock.settimeout(0.25)
    sent = 0
    while time.monotonic() - began < seconds:
        if sent < len(trickle):
            with contextlib.suppress(OSError):
                sock.sendall(trickle[sent : sent + 1])
            sent += 1
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - began, got
        if not chunk:
            return time.monotonic() - began, got
        got += chunk
    raise AssertionError(f"still open after {seconds} s (received {got!r})")


@contextlib.contextmanager
def _connections(port: int, n: int, source: str = "127.0.0.1") -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def _healthz_from(port: int, source: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_a_connection_that_sends_nothing_is_closed_by_default(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments=[]))
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        took, _ = _closed_within(idle, 10 + 5)  # the default header timeout is 10 s
    assert took > 9


def test_slowloris_headers_are_cut_off(make_config: ConfigWriter, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(make_config(deployments=[], header_timeout=2))
    headers = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"x-slow: " + b"a" * 200 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        took, answer = _closed_within(slow, 2 + 3, trickle=headers)
    assert took > 1.5, took
    assert answer.startswith(b"HTTP/1.1 408"), answer
    # a normal client is served all along
    assert http_json("GET", f"{server.url}/healthz")[0] == 200


def test_a_stalled_body_is_cut_off(make_config: ConfigWriter, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(make_config(deployments=[], body_timeout=2))
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"model": '
        )
        took, _ = _closed_within(slow, 2 + 3)
    assert took > 1.5, took
    # a body that keeps coming, slowly but without a long pause, is not cut off
    body = b'{"model": "nope", "messages": []}'
    with socket.create_connection(("127.0.0.1", server.port)) as steady:
        steady.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        for i in range(0, len(body), 4):
            steady.sendall(body[i : i + 4])
            time.sleep(0.15)  # 9 pauses: ~1.3 s in all, each well under the 2 s body timeout
        steady.settimeout(10)
        answer = steady.recv(4096)
    assert answer.startswith(b"HTTP/1.1 404"), answer  # answered: an unknown model


def test_one_address_cannot_take_every_connection(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments=[], max_connections_per_client=20, header_timeout=60))
    with _connections(server.port, 20):
        time.sleep(0.2)  # let the server accept them all
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            took, answer = _closed_within(extra, 5)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert took < 2, took  # refused at once, not left to time out
        # another client address is served while the first one is at its cap
        assert _healthz_from(server.port, "127.0.0.2") == 200
    assert "refusing connections from 127.0.0.1" in server.stderr  # the operator is told
    # once they are closed, the address is served again
    deadline = time.monotonic() + 5
    while _healthz_from(server.port, "127.0.0.1") != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_serve_raises_its_open_files_limit_to_the_hard_limit(make_config: ConfigWriter, free_port: int) -> None:
    """A soft limit of 512 open files would let two clients at their cap take every descriptor."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard limit here is {hard}")

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))

    command = [
        sys.executable,
        "-m",
        "modelmeter.cli.main",
        "serve",
        "--config",
        str(make_config(deployments=[])),
        "--port",
        str(free_port),
    ]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=low_soft_limit
    )
    try:
        wait_for(lambda: _answers(free_port), 60, interval=0.1, message="serving")
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
        assert soft == "unlimited" or int(soft) > 512, limits
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(port: int) -> bool:
    try:
        return http_json("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200
    except OSError:
        return False
