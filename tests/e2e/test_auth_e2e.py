"""Issue #18 against the real server: cross-site writes refused (item 8) and the response cache kept
per virtual key (item 16)."""

from __future__ import annotations

import http.client
import os
import re
import stat
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, free_port, run_cli, wait_for

NEW_DEP = {"name": "added", "model": "fake-model", "api_base": "http://127.0.0.1:9/v1"}


def request(
    server: ServerProcess, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request as a browser would send it (no redirects followed); (status, headers, JSON)."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        conn.request(method, path, body=data, headers=headers or {})
        res = conn.getresponse()
        raw = res.read()
        parsed = orjson.loads(raw) if raw[:1] in (b"{", b"[") else raw
        return res.status, {k.lower(): v for k, v in res.getheaders()}, parsed
    finally:
        conn.close()


def session_cookie(server: ServerProcess) -> str:
    status, headers, _ = request(server, "GET", f"/?token={ADMIN_KEY}")
    assert status == 303
    return headers["set-cookie"].split(";")[0]


def test_cross_site_writes_are_refused_with_a_cookie(make_config: Any, start_server: Any) -> None:
    server = start_server(make_config(deployments=[]))
    cookie = session_cookie(server)
    evil = {"cookie": cookie, "origin": "http://evil.example"}
    other_port = {"cookie": cookie, "origin": f"http://127.0.0.1:{free_port()}", "sec-fetch-site": "same-site"}
    attempts = [
        ("POST", "/api/deployments", {**evil, "content-type": "text/plain"}),  # a plain form/fetch
        ("POST", "/api/deployments", {**evil, "content-type": "application/json"}),
        ("POST", "/api/deployments", {**other_port, "content-type": "application/json"}),
        (
            "POST",
            "/api/deployments",
            {"cookie": cookie, "sec-fetch-site": "cross-site", "content-type": "application/json"},
        ),
        ("POST", "/api/deployments", {"cookie": cookie, "origin": "null", "content-type": "application/json"}),
        ("POST", "/api/keys", {**evil, "content-type": "application/json"}),
        ("DELETE", "/api/keys/team", {**evil}),
    ]
    for method, path, headers in attempts:
        body = {"alias": "team"} if path == "/api/keys" else NEW_DEP
        status, _, answer = request(server, method, path, body if method == "POST" else None, headers)
        assert status == 403, (method, path, headers, status, answer)
        assert answer["error"]["code"] == "cross_site_request" and answer["error"]["type"] == "permission_error"
    assert "added" not in {d["name"] for d in server.api("GET", "/api/deployments")[1]["data"]}
    assert server.api("GET", "/api/keys")[1]["data"] == []

    # The page itself (same origin) and API clients without an Origin (bearer token) are let in.
    same = {"cookie": cookie, "origin": server.url, "sec-fetch-site": "same-origin", "content-type": "application/json"}
    status, _, answer = request(server, "POST", "/api/deployments", NEW_DEP, same)
    assert status == 201, answer
    status, _, answer = request(
        server,
        "POST",
        "/api/keys",
        {"alias": "team"},
        {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
    )
    assert status == 201, answer
    status, _, _ = request(server, "DELETE", "/api/keys/team", None, {"authorization": f"Bearer {ADMIN_KEY}"})
    assert status == 204
    # Reads are not writes: a cross-site GET is answered (the browser keeps the answer from the page).
    assert request(server, "GET", "/api/deployments", None, evil)[0] == 200


def test_cross_site_writes_are_refused_without_auth_too(make_config: Any, start_server: Any) -> None:
    server = start_server(make_config(deployments=[]), args=["--no-auth"])
    status, _, answer = request(
        server,
        "POST",
        "/api/deployments",
        NEW_DEP,
        {"origin": "http://evil.example", "content-type": "application/json"},
    )
    assert status == 403, answer
    status, _, answer = request(server, "POST", "/api/deployments", NEW_DEP, {"content-type": "application/json"})
    assert status == 201, answer


@pytest.fixture
def keyed_cache(make_config: Any, start_server: Any, fake_upstream: FakeUpstream) -> ServerProcess:
    config = make_config(
        require_keys=True,
        deployments=[{"name": "cached", "model": "fake-model", "api_base": fake_upstream.base_url, "cache_ttl": "10m"}],
    )
    server: ServerProcess = start_server(config)
    return server


def test_the_response_cache_is_kept_per_virtual_key(keyed_cache: ServerProcess) -> None:
    keys = {}
    for alias in ("team-a", "team-b"):
        status, created = keyed_cache.api("POST", "/api/keys", {"alias": alias})
        assert status == 201, created
        keys[alias] = created["key"]
    chat = {"model": "cached", "messages": [{"role": "user", "content": "the same question"}], "max_tokens": 3}

    def ask(alias: str) -> str:
        status, headers, answer = request(
            keyed_cache,
            "POST",
            "/v1/chat/completions",
            chat,
            {"authorization": f"Bearer {keys[alias]}", "content-type": "application/json"},
        )
        assert status == 200, answer
        return headers["x-modelmeter-cache"]

    assert ask("team-a") == "miss"
    assert ask("team-a") == "hit"
    assert ask("team-b") == "miss"  # another key's answer is not served to this one
    assert ask("team-b") == "hit"


def test_rotating_the_admin_key_ends_sessions(make_config: Any, tmp_path: Any) -> None:
    """Item 6: `modelmeter keys rotate-admin` gives a new key and a new session secret; after the
    restart the old key and every old session cookie are refused, the new key works."""
    config = make_config(deployments=[])
    saved = os.environ.pop("MODELMETER_ADMIN_KEY")  # the server's own (stored) key, as by default
    try:
        first = ServerProcess(config, log_dir=tmp_path / "s1").start()
        old_key = wait_for(lambda: re.search(r"/\?token=(mm-admin-[\w-]+)", first.stderr), 10)
        status, headers, _ = request(first, "GET", f"/?token={old_key.group(1)}")
        assert status == 303
        cookie = headers["set-cookie"].split(";")[0]
        assert request(first, "GET", "/api/deployments", None, {"cookie": cookie})[0] == 200
        first.stop()

        done = run_cli("keys", "rotate-admin", "--config", str(config))
        assert done.returncode == 0, done.stderr
        new_key = done.stdout.strip()
        assert new_key.startswith("mm-admin-") and new_key != old_key.group(1)

        second = ServerProcess(config, log_dir=tmp_path / "s2").start()
        assert request(second, "GET", "/api/deployments", None, {"cookie": cookie})[0] == 401
        assert (
            request(second, "GET", "/api/deployments", None, {"authorization": f"Bearer {old_key.group(1)}"})[0] == 401
        )
        assert request(second, "GET", "/api/deployments", None, {"authorization": f"Bearer {new_key}"})[0] == 200
        second.stop()
        # Files holding secrets are the owner's alone.
        assert stat.S_IMODE(make_config.db_path.stat().st_mode) == 0o600
    finally:
        os.environ["MODELMETER_ADMIN_KEY"] = saved
