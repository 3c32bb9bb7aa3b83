"""Deployment definitions are validated by one schema wherever they come from (issue #18.15): the
config file, ``POST /api/deployments`` and ``modelmeter deploy add``. NaN or negative timeouts, absurd
retry counts and names that shadow the API's routes are refused with a clear 400 (or exit 2 for the
config); rows stored by an older version that are no longer valid can still be deleted and re-added."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.conftest import ConfigWriter
from tests.helpers import ServerProcess, closed_port_url, run_cli

BASE = closed_port_url()

BAD = [
    (b'{"name": "n1", "api_base": "%s", "timeout": NaN}', "timeout"),
    (b'{"name": "n2", "api_base": "%s", "timeout": Infinity}', "timeout"),
    (b'{"name": "n3", "api_base": "%s", "timeout": -1}', "timeout"),
    (b'{"name": "n4", "api_base": "%s", "max_retries": 1000000}', "max_retries"),
    (b'{"name": "n5", "api_base": "%s", "max_retries": true}', "max_retries"),
    (b'{"name": "n6", "api_base": "%s", "connect_timeout": 0}', "connect_timeout"),
    (b'{"name": "n7", "api_base": "%s", "chunk_timeout": NaN}', "chunk_timeout"),
    (b'{"name": "n8", "api_base": "%s", "store_bodies": "yes"}', "store_bodies"),
    (b'{"name": "n9", "api_base": "%s", "cache_ttl": "forever"}', "cache_ttl"),
    (b'{"name": "x/usage", "api_base": "%s"}', "name"),
    (b'{"name": "x/requests", "api_base": "%s"}', "name"),
    (b'{"name": "x/events", "api_base": "%s"}', "name"),
    (b'{"name": "x/usage/timeseries", "api_base": "%s"}', "name"),
    (b'{"name": "a/../b", "api_base": "%s"}', "name"),
    (b'{"name": "a\\u0001b", "api_base": "%s"}', "name"),
    (b'{"name": "' + b"a" * 129 + b'", "api_base": "%s"}', "name"),
]


@pytest.fixture
def server(make_config: ConfigWriter, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(make_config(deployments=[{"name": "chat", "model": "gpt-4o-mini", "api_base": BASE}]))


def _names(server: ServerProcess) -> set[str]:
    status, body = server.api("GET", "/api/deployments")
    assert status == 200, body
    return {d["name"] for d in body["data"]}


@pytest.mark.parametrize(("raw", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_definitions_are_refused_over_http(server: ServerProcess, raw: bytes, field: str) -> None:
    status, body = server.api("POST", "/api/deployments", raw % BASE.encode())
    assert status == 400, body
    assert f"'{field}'" in body["error"]["message"], body
    assert isinstance(body["error"]["code"], str | None)
    assert _names(server) == {"chat"}


def test_good_definition_with_limits_at_the_edges_is_kept(server: ServerProcess) -> None:
    status, body = server.api(
        "POST",
        "/api/deployments",
        {
            "name": "org/model-1",
            "api_base": BASE,
            "timeout": 86400,
            "max_retries": 10,
            "connect_timeout": 0.5,
            "cache_ttl": "10m",
        },
    )
    assert status == 201, body
    assert server.api("DELETE", "/api/deployments/org/model-1")[0] == 204


def test_bad_config_values_stop_serve_with_one_clear_line(make_config: ConfigWriter) -> None:
    cfg = make_config(deployments=[{"name": "chat", "api_base": BASE, "timeout": float("nan")}])
    done = run_cli("serve", "--config", str(cfg), timeout=30)
    assert done.returncode == 2, done.stderr
    assert "'timeout' must be" in done.stderr and "deployment 'chat'" in done.stderr, done.stderr
    cfg = make_config(deployments=[{"name": "x/requests", "api_base": BASE}])
    done = run_cli("serve", "--config", str(cfg), timeout=30)
    assert done.returncode == 2 and "'name' must be" in done.stderr, done.stderr


def test_cli_deploy_add_refuses_route_like_names(server: ServerProcess) -> None:
    done = run_cli("deploy", "add", "mine/usage", "--api-base", BASE, "--url", server.url)
    assert done.returncode == 1, done.stdout
    assert "400" in done.stderr and "'name' must be" in done.stderr, done.stderr
    assert _names(server) == {"chat"}


def _store(db_path: object, name: str, definition: bytes) -> None:
    with sqlite3.connect(str(db_path)) as conn:
        conn.execute(
            "INSERT INTO deployments (name, definition, created_us) VALUES (?, ?, ?)",
            (name, definition.decode(), int(time.time() * 1e6)),
        )


def test_stored_definitions_no_longer_valid_can_be_deleted_and_re_added(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments=[{"name": "chat", "model": "gpt-4o-mini", "api_base": BASE}]))
    ghosts: dict[str, Any] = {
        "ghost": {"name": "ghost", "api_base": BASE, "timeout": -1},
        "g/usage": {"name": "g/usage", "api_base": BASE},
        "retry": {"name": "retry", "api_base": BASE, "max_retries": 1000000},
    }
    for name, definition in ghosts.items():
        _store(make_config.db_path, name, orjson.dumps(definition))
    time.sleep(1.1)  # the registry re-reads stored deployments at most once a second
    assert _names(server) == {"chat"}  # not served
    # re-adding is a conflict that says what to do, not a 500
    status, body = server.api("POST", "/api/deployments", {"name": "ghost", "api_base": BASE})
    assert status == 409 and "remove it first" in body["error"]["message"], body
    for name in ghosts:
        status, body = server.api("DELETE", f"/api/deployments/{name}")
        assert status == 204, (name, body)
    with sqlite3.connect(str(make_config.db_path)) as conn:
        assert conn.execute("SELECT count(*) FROM deployments").fetchone() == (0,)
    assert server.api("DELETE", "/api/deployments/ghost")[0] == 404
    status, body = server.api("POST", "/api/deployments", {"name": "ghost", "api_base": BASE, "timeout": 30})
    assert status == 201, body
    assert "ghost" in _names(server)
