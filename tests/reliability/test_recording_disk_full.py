"""A full disk, for real (#18.2): the SQLite database and its spool on a 2 MiB tmpfs that fills up
under load. The gateway keeps answering, /readyz says 503 with the reason and /metrics shows the
records held in memory; when the disk grows again (no restart), everything answered is stored;
SIGTERM ends the server cleanly. Needs root (mount); skipped otherwise."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import http_json, sqlite_url
from tests.reliability.support import Req, count_records, metric, run_load

pytestmark = pytest.mark.timeout(240)

BIG = "word " * 4000  # ~20 KB of prompt: each record's stored request body fills the disk fast


def big_chat(i: int) -> Req:
    return Req(
        "/v1/chat/completions",
        {"model": "chat", "max_tokens": 3, "messages": [{"role": "user", "content": f"{i} {BIG}"}]},
        "chat",
    )


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)], capture_output=True, check=False
        ).returncode
        != 0
    ):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def grow(mnt: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True, capture_output=True)


def fill(server: Any) -> tuple[int, Any]:
    """Load until the disk is full and the recorder says so; (calls answered, /readyz's body)."""
    answered = 0
    ready: Any = None
    for round_ in range(30):
        load = asyncio.run(run_load(server.url, 200, big_chat, concurrency=20, run_id=f"fill{round_}", timeout=20))
        assert len(load.ok) == 200, load.summary()
        answered += 200
        status, ready = http_json("GET", server.url + "/readyz")
        if status == 503 and ready["recorder"]["held_in_memory"] > 0:
            return answered, ready
    raise AssertionError(f"the disk never filled: {ready}")


def start(tiny_disk: Path, fake_upstream: FakeUpstream, make_config: Any, start_server: Any) -> Any:
    config = make_config(
        deployments=[
            {"name": "chat", "model": "gpt-4o-mini", "provider": "openai", "api_base": fake_upstream.base_url}
        ],
        database=sqlite_url(tiny_disk / "mm.db"),
        queue_size=200,
        batch_size=50,
    )
    return start_server(config)


def test_full_disk_keeps_serving_says_so_and_resumes(
    tiny_disk: Path, fake_upstream: FakeUpstream, make_config: Any, start_server: Any
) -> None:
    db = tiny_disk / "mm.db"
    server = start(tiny_disk, fake_upstream, make_config, start_server)
    answered, ready = fill(server)
    assert ready["status"] == "not ready" and "held in memory" in ready["reason"], ready
    assert ready["recorder"]["spool_failing"] and ready["recorder"]["lost"] == 0, ready
    metrics = server.api("GET", "/metrics")[1]
    assert metric(metrics, "modelmeter_recorder_held_records") > 0
    assert metric(metrics, "modelmeter_recorder_storage_failing") == 1
    # Still full: the gateway keeps answering at full speed.
    load = asyncio.run(run_load(server.url, 400, big_chat, concurrency=20, run_id="full", timeout=20))
    assert len(load.ok) == 400 and load.duration < 20, load.summary()
    answered += 400
    stored_while_full = count_records(str(db))
    assert stored_while_full < answered

    grow(tiny_disk, "256m")  # space returns; nobody restarts anything
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, ready = http_json("GET", server.url + "/readyz")
        if status == 200 and count_records(str(db)) == answered:
            break
        time.sleep(0.2)
    assert status == 200 and count_records(str(db)) == answered, (ready, count_records(str(db)), answered)
    assert ready["recorder"]["lost"] == 0 and ready["recorder"]["held_in_memory"] == 0
    t0 = time.monotonic()
    assert server.stop() == 0
    print(
        f"\n[disk full] answered={answered} stored_while_full={stored_while_full} "
        f"stored_after={count_records(str(db))} stop_s={time.monotonic() - t0:.2f}"
    )


def test_sigterm_while_the_disk_stays_full_ends_cleanly(
    tiny_disk: Path, fake_upstream: FakeUpstream, make_config: Any, start_server: Any
) -> None:
    """The recorder waits its 30 s for the database (space may come back), then exits 0 and says
    how many records nothing could take."""
    server = start(tiny_disk, fake_upstream, make_config, start_server)
    answered, _ = fill(server)
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait(60) == 0, server.stderr[-3000:]
    took = time.monotonic() - t0
    stored = count_records(str(tiny_disk / "mm.db"))
    assert took < 45, took
    assert "RECORDS LOST" in server.stderr, server.stderr[-3000:]
    print(f"\n[disk full at SIGTERM] answered={answered} stored={stored} exit_s={took:.1f}")
