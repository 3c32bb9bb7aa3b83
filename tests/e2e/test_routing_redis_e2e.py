"""Shared upstream cooldowns (issue 15 item 7): two ``serve --workers 2`` processes with the same
``[server] redis`` (the real Redis of this machine) share which upstream is out; without Redis each
process would call the broken upstream itself."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, free_port, http_json, sqlite_url, wait_for, write_config

pytestmark = pytest.mark.timeout(180)
REDIS = "redis://127.0.0.1:6379"


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def chat(server: ServerProcess) -> int:
    """One call on a new connection (so either worker may take it)."""
    body = {"model": NAME, "messages": [{"role": "user", "content": "hi"}]}
    status, _ = http_json("POST", server.base_url + "/chat/completions", body, timeout=30)
    return int(status)


NAME = f"shared-{uuid.uuid4().hex[:8]}"  # stale state of another run never applies


@pytest.mark.skipif(not redis_up() and not os.environ.get("MODELMETER_NO_SKIP"), reason="no Redis on 6379")
def test_two_multi_worker_servers_share_cooldowns(tmp_path: Path) -> None:
    with FakeUpstream() as healthy, FakeUpstream() as broken:
        dep: dict[str, Any] = {
            "name": NAME,
            "model": "fake-model",
            "upstreams": [
                {"name": "broke", "api_base": broken.base_url, "model": "fail-402"},
                {"name": "backup", "api_base": healthy.base_url, "priority": 1},
            ],
        }
        db = sqlite_url(tmp_path / "mm.db")
        cfg1 = write_config(tmp_path / "one.toml", database=db, deployments=[dep], redis=REDIS)
        cfg2 = write_config(tmp_path / "two.toml", database=db, deployments=[dep], redis=REDIS)
        env = {"MODELMETER_HOME": str(tmp_path / "home")}
        with (
            ServerProcess(cfg1, args=("--workers", "2"), env=env) as one,
            ServerProcess(cfg2, args=("--workers", "2"), env=env) as two,
        ):
            assert chat(one) == 200  # the 402 takes "broke" out, here and (through Redis) everywhere
            assert broken.stats()["models"].get("fail-402") == 1
            time.sleep(0.3)
            for server in (one, two, one, two) * 10:
                assert chat(server) == 200
            assert broken.stats()["models"].get("fail-402") == 1  # no other worker called it
            for server in (one, two):
                for _ in range(4):  # whichever worker answers knows
                    status, body = server.api("GET", "/api/upstreams")
                    (mine,) = [d for d in body["data"] if d["deployment"] == NAME]
                    assert {u["name"]: u["state"] for u in mine["upstreams"]}["broke"] == "out"
            status, _ = two.api("POST", "/api/upstreams/reset", {"deployment": NAME, "upstream": "broke"})
            assert status == 200
            time.sleep(0.3)
            assert chat(one) == 200  # back in service everywhere: called (and out) again
            wait_for(lambda: broken.stats()["models"].get("fail-402") == 2, 5)


def test_redis_away_routes_per_process(tmp_path: Path) -> None:
    """A Redis that cannot be reached: the server starts, routes and cools per process, and says so once."""
    port = free_port()  # nothing listens there
    with FakeUpstream() as healthy, FakeUpstream() as broken:
        dep: dict[str, Any] = {
            "name": NAME,
            "model": "fake-model",
            "upstreams": [
                {"name": "broke", "api_base": broken.base_url, "model": "fail-402"},
                {"name": "backup", "api_base": healthy.base_url, "priority": 1},
            ],
        }
        cfg = write_config(
            tmp_path / "mm.toml",
            database=sqlite_url(tmp_path / "mm.db"),
            deployments=[dep],
            redis=f"redis://127.0.0.1:{port}",
        )
        with ServerProcess(cfg) as server:
            for _ in range(3):
                assert chat(server) == 200
            assert broken.stats()["models"].get("fail-402") == 1
            assert server.stderr.count("Redis unreachable") == 1, server.stderr
