"""``modelmeter serve`` checks and binds its port before anything else (issue #11.14).

A bad port (out of range, not a number in the config) or a port in use is a one-line error with exit
code 2, quickly, before an embedded model starts or a sign-in link is printed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.helpers import ROOT, http_json, run_cli

# The embedded models are the default deployments: a late port check would start them first.
_STARTED_A_MODEL = "starting the embedded"


def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    try:
        done = run_cli("serve", *args, timeout=30, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"serve kept running instead of refusing the port: {exc.stderr!r}")
    return done, time.monotonic() - began


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert _STARTED_A_MODEL not in done.stderr and "?token=" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_port_out_of_range_is_refused(make_config: ConfigWriter) -> None:
    done, took = _serve("--config", str(make_config()), "--port", "99999")
    _one_line_error(done, "port", "99999", "65535")
    assert took < 10


def test_port_that_is_not_a_number_in_the_config_is_refused(make_config: ConfigWriter) -> None:
    done, took = _serve("--config", str(make_config(port="abc")))
    _one_line_error(done, "port", "'abc'", "whole number")
    assert took < 10


def test_port_in_use_fails_before_models_start_or_links_print(make_config: ConfigWriter, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A fresh database: a late bind would generate a key and print its sign-in link first.
        cfg = make_config(database=f"sqlite:///{tmp_path}/fresh.db")
        done, took = _serve("--config", str(cfg), "--port", str(port), env={"MODELMETER_ADMIN_KEY": ""})
    _one_line_error(done, f"127.0.0.1:{port}", "in use")
    assert took < 10
    assert not (tmp_path / "fresh.db").exists()  # nothing was started, not even the database


def test_port_zero_serves_on_the_port_it_prints(make_config: ConfigWriter, tmp_path: Path) -> None:
    """What is printed is where it listens (the printed port used to differ from the real one)."""
    command = [
        sys.executable,
        "-m",
        "modelmeter.cli.main",
        "serve",
        "--config",
        str(make_config(deployments=[])),
        "--port",
        "0",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "gateway at http://127.0.0.1:" in first, first
        port = int(first.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        assert port != 0
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_json("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "not serving on the printed port"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
