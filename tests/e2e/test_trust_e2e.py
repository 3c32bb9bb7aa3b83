"""Trust, end to end against the real server: the generated admin key, --no-auth, virtual keys with
their limits and revocation, and the backlog shown while records wait."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ROOT, ServerProcess, http_json, run_cli, wait_for


def test_first_start_generates_a_key_prints_its_url_and_stores_only_its_hash(
    make_config: Any, start_server: Any, tmp_path: Path
) -> None:
    config = make_config(deployments=[])
    server = ServerProcess(config, log_dir=tmp_path / "s1")
    os_env = os.environ.pop("MODELMETER_ADMIN_KEY")  # no key given: the server must make one
    try:
        server.start()
        printed = wait_for(lambda: re.search(r"/\?token=(mm-admin-[\w-]+)", server.stderr), 10)
        key = printed.group(1)
        assert http_json("GET", f"{server.url}/api/deployments")[0] == 401
        status, _ = http_json("GET", f"{server.url}/api/deployments", headers={"authorization": f"Bearer {key}"})
        assert status == 200
        server.stop()
        stored = (
            sqlite3.connect(make_config.db_path)
            .execute("SELECT value FROM server_settings WHERE name LIKE 'admin%'")
            .fetchall()
        )
        assert len(stored) == 1 and key not in stored[0][0]  # a hash, not the key
        # The next start reuses the stored hash and prints no key.
        again = ServerProcess(config, log_dir=tmp_path / "s2").start()
        assert "token=" not in again.stderr
        assert http_json("GET", f"{again.url}/api/deployments", headers={"authorization": f"Bearer {key}"})[0] == 200
        again.stop()
    finally:
        os.environ["MODELMETER_ADMIN_KEY"] = os_env


def test_no_auth_refuses_a_non_loopback_address(make_config: Any) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelmeter.cli.main",
            "serve",
            "--config",
            str(make_config(deployments=[])),
            "--host",
            "0.0.0.0",
            "--no-auth",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--no-auth" in done.stderr and "loopback" in done.stderr


def test_no_auth_on_loopback_opens_the_api(make_config: Any, start_server: Any) -> None:
    server = start_server(make_config(deployments=[]), args=["--no-auth"])
    assert server.api("GET", "/api/deployments", auth=False)[0] == 200


@pytest.fixture
def keyed(make_config: Any, start_server: Any, fake_upstream: FakeUpstream) -> ServerProcess:
    config = make_config(
        require_keys=True,
        deployments=[{"name": "gpt", "model": "gpt-4o-mini", "provider": "openai", "api_base": fake_upstream.base_url}],
    )
    server: ServerProcess = start_server(config)
    return server


def _key(server: ServerProcess, *args: str) -> str:
    done = run_cli("keys", "create", *args, "--url", server.url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_virtual_keys_limits_and_revocation(keyed: ServerProcess) -> None:
    chat = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    anonymous = openai.OpenAI(base_url=keyed.base_url, api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.chat.completions.create(**chat)

    key = _key(keyed, "team-a", "--rpm", "2")
    listed = run_cli("keys", "list", "--json", "--url", keyed.url)
    assert key not in listed.stdout and "team-a" in listed.stdout  # the key is shown once only
    client = openai.OpenAI(base_url=keyed.base_url, api_key=key, max_retries=0)
    client.chat.completions.create(**chat)
    client.chat.completions.create(**chat)
    with pytest.raises(openai.RateLimitError) as over:
        client.chat.completions.create(**chat)
    assert "requests per minute" in over.value.message
    assert int(over.value.response.headers["retry-after"]) >= 1

    rows = keyed.wait_for_records("gpt", 4)
    by_status = sorted((r["http_status"], r["key_alias"]) for r in rows)
    assert by_status == [(200, "team-a"), (200, "team-a"), (401, None), (429, "team-a")]
    only_a = keyed.records("gpt", key_alias="team-a")  # the Usage tab's key filter
    assert len(only_a) == 3 and {r["key_alias"] for r in only_a} == {"team-a"}

    other = _key(keyed, "team-b")
    good = openai.OpenAI(base_url=keyed.base_url, api_key=other, max_retries=0)
    good.chat.completions.create(**chat)
    assert run_cli("keys", "revoke", "team-b", "--url", keyed.url).returncode == 0
    with pytest.raises(openai.AuthenticationError):  # refused at once
        good.chat.completions.create(**chat)


def test_budget_is_enforced_from_recorded_spend(keyed: ServerProcess) -> None:
    key = _key(keyed, "tiny", "--budget", "0.0000001")
    client = openai.OpenAI(base_url=keyed.base_url, api_key=key, max_retries=0)
    chat = {"model": "gpt", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 5}
    client.chat.completions.create(**chat)  # spends more than the budget
    wait_for(lambda: keyed.api("GET", "/api/keys")[1]["data"][0]["spent_usd"] > 0, 10)
    with pytest.raises(openai.RateLimitError) as over:
        client.chat.completions.create(**chat)
    assert "budget" in over.value.message
